/**
 * `snpsim experiment`: a scenario corpus under every host policy × platform profile of the model,
 * printed as a matrix of where the configurations diverge (and as JSON with --json).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import {
  combinations,
  describeSwitches,
  parsePolicySpec,
  parseProfileSpec,
  parseSpecList,
  renderMatrix,
  runMatrix,
} from '../experiment/index.js';

import { DEFAULT_POLICY, DEFAULT_PROFILE, policyNames } from '../model-guest/index.js';
import { createProgress } from '../runner/index.js';
import { loadScenarios } from '../scenario/index.js';
import type { CliCommand, CliIo } from './command.js';

export const EXPERIMENT_USAGE = `usage: snpsim experiment [paths...] --policies P,... [--profiles F,...] [options]

Runs every scenario (files, or directories of *.json; default scenarios/) on the model under every
policy × profile and prints where the configurations diverge: per scenario, configurations with
identical runs share a class letter (A = the first configuration, the baseline), and each other
class shows its first differing observation.

  --policies P,...   host policies: a preset, a policy JSON file, or PRESET+knob=value[+...]
                     (value * sweeps every value of the knob) (default ${DEFAULT_POLICY})
  --profiles F,...   platform profiles: genoa, milan, a variant, a profile JSON file, or
                     BASE+field=value[+...] for CPU/firmware switches (default ${DEFAULT_PROFILE})
  --compare guest|model  guest-observable observations only (default), or also the model's
                     internal state (mp_state, pv_unhalted, VMSA pointer, RMP bits)
  --json FILE        write the matrix as JSON
  --all              list agreeing scenarios too
  --list             list presets, profile variants and every switch, then exit
  --quiet            no progress output

examples:
  snpsim experiment --policies linux-6.11,linux-6.15,linux-6.16
  snpsim experiment scenarios/ --policies rfc-v4 --profiles genoa,genoa-vmsa-2m-erratum
  snpsim experiment --policies 'linux-6.16+rejectCreateWhenOnline=*' --compare model

exit codes: 0 every configuration agrees, 1 some diverge, 2 usage or input error,
            3 the model failed on some scenario`;

const OPTIONS = {
  policies: { type: 'string' },
  profiles: { type: 'string' },
  compare: { type: 'string' },
  json: { type: 'string' },
  all: { type: 'boolean' },
  list: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, `${message} (see snpsim experiment --help)`);
}

async function runExperiment(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (values.list === true) {
    io.stdout.write(describeSwitches());
    return ExitCode.OK;
  }
  const compared = values.compare ?? 'guest';
  if (compared !== 'guest' && compared !== 'model') {
    throw usage(`--compare ${compared}: expected guest or model`);
  }
  const policies = parseSpecList(values.policies ?? DEFAULT_POLICY, '--policies', parsePolicySpec);
  const profiles = parseSpecList(values.profiles ?? DEFAULT_PROFILE, '--profiles', parseProfileSpec);
  const configs = combinations(policies, profiles);
  if (configs.length < 2) {
    throw usage('an experiment compares at least two configurations: give several --policies or --profiles');
  }
  const scenarios = await loadScenarios(positionals.length > 0 ? positionals : ['scenarios'], {
    knownPolicies: policyNames(),
  });
  const progress = createProgress(io.stderr, scenarios.length * configs.length, {
    quiet: values.quiet === true,
  });
  const report = runMatrix(scenarios, configs, { compared, progress });
  io.stdout.write(renderMatrix(report, { all: values.all === true }));
  if (values.json !== undefined) {
    try {
      await mkdir(dirname(values.json), { recursive: true });
      await writeFile(values.json, `${JSON.stringify(report, null, 2)}\n`);
    } catch (error) {
      io.stderr.write(`snpsim experiment: cannot write ${values.json}: ${(error as Error).message}\n`);
      return ExitCode.INFRASTRUCTURE;
    }
  }
  if (report.summary.errors > 0) return ExitCode.INFRASTRUCTURE;
  return report.summary.diverging > 0 ? ExitCode.DIFFERENCES : ExitCode.OK;
}

export const experimentCommand: CliCommand = {
  name: 'experiment',
  summary: 'run scenarios under several host policies × platform profiles and show where they diverge',
  usage: EXPERIMENT_USAGE,
  run: runExperiment,
};
