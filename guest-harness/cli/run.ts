/**
 * `snpsim run`: runs scenarios on the reference model and on one or more targets, diffs them step
 * by step and writes the reports. Exit codes: 0 no differences, 1 differences, 2 usage or input
 * error (nothing ran), 3 infrastructure failure (the reports of a partial run are still written).
 */
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseArgs } from 'node:util';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import { DEFAULT_POLICY, DEFAULT_PROFILE } from '../model-guest/index.js';
import type { ExpectationsFile } from '../runner/expectations.js';
import { loadExpectations } from '../runner/expectations.js';
import { loadFixture } from '../runner/fixture.js';
import { FixtureTarget, staleScenarios } from '../runner/fixture-target.js';
import { renderJunit } from '../runner/junit.js';
import { createProgress } from '../runner/progress.js';
import { REPORT_SCHEMA_PATH, type Report } from '../runner/report.js';
import { runDifferential } from '../runner/run.js';
import type { ReferenceModel, ScenarioTarget } from '../runner/target.js';
import { parseTargetSpec, type TargetSpec } from '../runner/target-spec.js';
import { renderTerminal } from '../runner/terminal.js';
import { type LoadedScenario, loadScenarios } from '../scenario/index.js';
import { DEFAULT_STEP_TIMEOUT_MS } from '../targets/ssh-target.js';
import type { CliCommand, CliIo } from './command.js';
import { SSH_PARSE_OPTIONS, type SshCliOptions, sshOptionsFromArgs, sshUsage } from './ssh-options.js';

/** What `snpsim run` needs from the layers below; tests substitute their own. */
export interface RunEnvironment {
  readonly version: string;
  readonly defaultPolicy: string;
  readonly defaultProfile: string;
  /** Preset names `expectPolicy` in scenario files may use. */
  readonly policyNames: readonly string[];
  /** Resolves a --policy value (preset name or JSON file) to its display name; throws SnpsimError. */
  resolvePolicy(value: string): Promise<string>;
  /** Resolves a --profile value (profile name or JSON file) to its display name; throws SnpsimError. */
  resolveProfile(value: string): Promise<string>;
  reference(): ReferenceModel;
  /** A target for model / sim / ssh specs (fixtures are built by the command). */
  target(
    spec: Exclude<TargetSpec, { kind: 'fixture' }>,
    options: { readonly policy: string; readonly profile: string; readonly ssh: SshCliOptions },
  ): ScenarioTarget;
}

export const RUN_USAGE = `usage: snpsim run [paths...] [options]

Runs each scenario (files, or directories of *.json) on the model (the reference) and on each
target, and reports every difference, step by step.

targets (--target, repeatable for a fleet; default sim):
  model[:POLICY[:PROFILE]]   the model in-process (by default with --policy / --profile)
  sim[:POLICY[:PROFILE]]     the built-in simulated guest over a loopback SSH connection
  ssh://user@host[:port]     a real SNP guest running the snpsim agent and kernel module
  fixture:FILE               replay observations recorded with --record

options:
  --policy P           host policy of the reference model: a preset or a JSON file (default ${DEFAULT_POLICY})
  --profile F          firmware/CPU profile of the reference model: a preset or a JSON file (default ${DEFAULT_PROFILE})
  --json FILE          write the report as JSON (schema: ${REPORT_SCHEMA_PATH})
  --junit FILE         write the report as JUnit XML
  --record FILE        save the target's observations and platform details as a fixture
  --expectations FILE  known divergences (reviewed, with reasons) to accept
  --platform K=V       declare a platform detail of the target (host_kernel=6.11.0, firmware=1.55.25 ...);
                       recorded in fixtures and usable in expectations conditions (repeatable)
  --verbose            list passing scenarios too
  --quiet              no progress output

${sshUsage(`${DEFAULT_STEP_TIMEOUT_MS}; sim targets use it too`)}
exit codes: 0 no differences, 1 differences, 2 usage or input error (nothing ran),
            3 infrastructure failure (reports of the partial run are still written)
`;

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, message);
}

/** Writes a file atomically (temporary file, then rename), creating its directory. */
async function writeAtomic(file: string, text: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, text);
  await rename(tmp, file);
}

interface ParsedRun {
  readonly paths: string[];
  readonly targets: TargetSpec[];
  readonly policy?: string;
  readonly profile?: string;
  readonly json?: string;
  readonly junit?: string;
  readonly record?: string;
  readonly expectations?: string;
  readonly platform: Record<string, string>;
  readonly verbose: boolean;
  readonly quiet: boolean;
  readonly ssh: SshCliOptions;
}

const OPTIONS = {
  ...SSH_PARSE_OPTIONS,
  target: { type: 'string', multiple: true },
  policy: { type: 'string' },
  profile: { type: 'string' },
  json: { type: 'string' },
  junit: { type: 'string' },
  record: { type: 'string' },
  expectations: { type: 'string' },
  platform: { type: 'string', multiple: true },
  verbose: { type: 'boolean' },
  quiet: { type: 'boolean' },
} as const;

export function parseRunArgs(argv: readonly string[]): ParsedRun {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], allowPositionals: true, strict: true, options: OPTIONS });
  } catch (error) {
    throw usage(`${(error as Error).message} (see snpsim run --help)`);
  }
  const v = parsed.values;
  const targets = (v.target !== undefined && v.target.length > 0 ? v.target : ['sim']).map(parseTargetSpec);
  const seen = new Set<string>();
  for (const t of targets) {
    if (seen.has(t.text)) throw usage(`--target ${t.text} is given twice`);
    seen.add(t.text);
  }
  const platform: Record<string, string> = {};
  for (const pair of v.platform ?? []) {
    const m = /^([a-z][a-z0-9_]*)=([A-Za-z0-9._:+-]{1,64})$/.exec(pair);
    if (!m)
      throw usage(
        `--platform ${pair}: expected key=value (key: lower-case letters, digits, _; value: no spaces)`,
      );
    platform[m[1]!] = m[2]!;
  }
  const record = v.record;
  if (record !== undefined && targets.length !== 1) {
    throw usage('--record saves one target: give exactly one --target');
  }
  if (record !== undefined && targets[0]?.kind === 'fixture')
    throw usage('--record cannot record a fixture replay');
  const ssh = sshOptionsFromArgs(v);
  const paths = parsed.positionals.length > 0 ? [...parsed.positionals] : ['scenarios'];
  return {
    paths,
    targets,
    ...(v.policy !== undefined ? { policy: v.policy } : {}),
    ...(v.profile !== undefined ? { profile: v.profile } : {}),
    ...(v.json !== undefined ? { json: v.json } : {}),
    ...(v.junit !== undefined ? { junit: v.junit } : {}),
    ...(record !== undefined ? { record } : {}),
    ...(v.expectations !== undefined ? { expectations: v.expectations } : {}),
    platform,
    verbose: v.verbose === true,
    quiet: v.quiet === true,
    ssh,
  };
}

/** Runs `snpsim run` with an environment; returns the exit code. Input errors throw (exit 2). */
export async function runCommand(
  argv: readonly string[],
  io: CliIo,
  env: RunEnvironment,
  signal?: AbortSignal,
): Promise<number> {
  const args = parseRunArgs(argv);
  // Everything that can be wrong with the input is checked before anything runs.
  const referenceSpec = {
    policy: args.policy ?? env.defaultPolicy,
    profile: args.profile ?? env.defaultProfile,
  };
  const policy = await env.resolvePolicy(referenceSpec.policy);
  const profile = await env.resolveProfile(referenceSpec.profile);
  const scenarios: LoadedScenario[] = await loadScenarios(args.paths, { knownPolicies: env.policyNames });
  let expectations: { file: string; doc: ExpectationsFile } | undefined;
  if (args.expectations !== undefined) {
    expectations = { file: args.expectations, doc: await loadExpectations(args.expectations) };
  }
  const targets: ScenarioTarget[] = [];
  for (const spec of args.targets) {
    if (spec.kind === 'fixture') {
      const fixture = await loadFixture(spec.file);
      const stale = staleScenarios(fixture, spec.file, scenarios);
      if (stale.length > 0) {
        throw new SnpsimError(
          SnpsimErrorCode.FIXTURE_INVALID,
          `the fixture is stale; nothing was run:\n  ${stale.join('\n  ')}`,
        );
      }
      targets.push(new FixtureTarget(spec.text, fixture));
    } else {
      if (spec.kind !== 'ssh') {
        if (spec.policy !== undefined) await env.resolvePolicy(spec.policy);
        if (spec.profile !== undefined) await env.resolveProfile(spec.profile);
      }
      targets.push(env.target(spec, { ...referenceSpec, ssh: args.ssh }));
    }
  }

  const progress = createProgress(io.stderr, scenarios.length * targets.length, { quiet: args.quiet });
  const outcome = await runDifferential({
    scenarios,
    targets,
    reference: env.reference(),
    policy,
    profile,
    referenceSpec,
    ...(expectations !== undefined ? { expectations } : {}),
    declaredPlatform: args.platform,
    record: args.record !== undefined,
    progress,
    ...(signal !== undefined ? { signal } : {}),
    snpsimVersion: env.version,
  });
  let report: Report = outcome.report;
  const writeFailures: string[] = [];
  const write = async (what: string, file: string | undefined, text: () => string) => {
    if (file === undefined) return;
    try {
      await writeAtomic(file, text());
    } catch (error) {
      writeFailures.push(`cannot write the ${what} ${file}: ${(error as Error).message}`);
    }
  };
  await write('fixture', args.record, () => `${JSON.stringify(outcome.fixtures[0], null, 2)}\n`);
  if (writeFailures.length > 0)
    report = {
      ...report,
      exitCode: ExitCode.INFRASTRUCTURE,
      warnings: [...report.warnings, ...writeFailures],
    };
  await write('JSON report', args.json, () => `${JSON.stringify(report, null, 2)}\n`);
  await write('JUnit report', args.junit, () => renderJunit(report));
  io.stdout.write(renderTerminal(report, { verbose: args.verbose }));
  for (const failure of writeFailures) io.stderr.write(`snpsim run: ${failure}\n`);
  return writeFailures.length > 0 ? ExitCode.INFRASTRUCTURE : report.exitCode;
}

/** The `run` command; `environment` is loaded on first use so `snpsim --help` stays fast. */
export function createRunCommand(environment: () => Promise<RunEnvironment>): CliCommand {
  return {
    name: 'run',
    summary: 'run scenarios on the model and on targets (sim, ssh://, fixture:) and report every difference',
    usage: RUN_USAGE,
    async run(argv, io) {
      const env = await environment();
      const controller = new AbortController();
      const onSignal = () => {
        io.stderr.write(
          '\nsnpsim run: interrupted; finishing the current scenario and writing the reports\n',
        );
        controller.abort();
      };
      process.once('SIGINT', onSignal);
      try {
        return await runCommand(argv, io, env, controller.signal);
      } finally {
        process.removeListener('SIGINT', onSignal);
      }
    },
  };
}

/** `snpsim run` with the default environment (the model, the sim, SSH), loaded on first use. */
export const runCliCommand: CliCommand = createRunCommand(async () =>
  (await import('../runner/environment.js')).defaultRunEnvironment(),
);
