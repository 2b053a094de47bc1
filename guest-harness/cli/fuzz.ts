/**
 * `snpsim fuzz`: random host and guest operations against the model, checking the SNP security
 * invariants after every one; a violation is shrunk to a minimal sequence and ends with exit 1.
 */
import { parseArgs } from 'node:util';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import {
  createCampaignProgress,
  INVARIANT_NAMES,
  INVARIANTS,
  MUTANTS,
  type MutantName,
  parsePolicySpec,
  parseProfileSpec,
  runFuzz,
} from '../experiment/index.js';
import { DEFAULT_POLICY, DEFAULT_PROFILE } from '../model-guest/index.js';
import { intOption, replayLine, seedAndPath } from './campaign-options.js';
import type { CliCommand, CliIo } from './command.js';

const DEFAULT_RUNS = 200;
const DEFAULT_SECONDS = 60;

export const FUZZ_USAGE = `usage: snpsim fuzz [--policy P] [--profile F] [--runs N] [--seconds S] [--seed N] [options]

Runs random sequences of host and guest operations on the model (each on a fresh VM): the AP
Creation family (CREATE / CREATE_ON_INIT / DESTROY with malformed fields, RMPADJUST, PVALIDATE,
INIT-SIPI, CPU offline/online, PV kick, KVM_SET_MP_STATE, KVM_RUN), guest reads and writes of its
own pages, page state changes, and a hostile host's writes, RMPUPDATEs, PSMASHes, firmware DBG and
PAGE_RECLAIM commands and NMIs. After every operation it checks:
${INVARIANT_NAMES.map((n) => `  ${n}: ${INVARIANTS[n]}`).join('\n')}
A violation is shrunk to a minimal sequence of operations and printed with the replay command.

  --policy P         host policy (preset, JSON file or PRESET+knob=value; default ${DEFAULT_POLICY})
  --profile F        platform profile (preset, variant, JSON file or BASE+field=value; default ${DEFAULT_PROFILE})
  --runs N           sequences at most (default ${DEFAULT_RUNS})
  --seconds S        time budget (default ${DEFAULT_SECONDS}); the campaign ends at whichever comes first
  --seed N           fast-check seed (default: random, printed)
  --path P           replay the shrink path P of --seed (printed with a violation)
  --max-commands N   operations per sequence at most (default 30)
  --mutant NAME      check the checker: break the model on purpose; the campaign must fail
${Object.entries(MUTANTS)
  .map(([n, s]) => `                     ${n}: ${s}`)
  .join('\n')}
  --quiet            no progress output

exit codes: 0 every invariant held, 1 a violation (counterexample printed), 2 usage error`;

const OPTIONS = {
  policy: { type: 'string' },
  profile: { type: 'string' },
  runs: { type: 'string' },
  seconds: { type: 'string' },
  seed: { type: 'string' },
  path: { type: 'string' },
  'max-commands': { type: 'string' },
  mutant: { type: 'string' },
  quiet: { type: 'boolean' },
} as const;

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, `${message} (see snpsim fuzz --help)`);
}

async function runFuzzCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: false, strict: true });
  } catch (error) {
    throw usage((error as Error).message);
  }
  const v = parsed.values;
  const runs = intOption('--runs', v.runs, 1, 100_000_000, usage) ?? DEFAULT_RUNS;
  const seconds = intOption('--seconds', v.seconds, 1, 31_536_000, usage) ?? DEFAULT_SECONDS;
  const maxCommands = intOption('--max-commands', v['max-commands'], 1, 1000, usage);
  const { seed, path } = seedAndPath(v.seed, v.path, usage);
  if (v.mutant !== undefined && !Object.hasOwn(MUTANTS, v.mutant)) {
    throw usage(`--mutant ${v.mutant}: unknown; one of ${Object.keys(MUTANTS).join(', ')}`);
  }
  const policies = parsePolicySpec(v.policy ?? DEFAULT_POLICY);
  const profiles = parseProfileSpec(v.profile ?? DEFAULT_PROFILE);
  if (policies.length !== 1 || profiles.length !== 1)
    throw usage('--policy and --profile name one configuration each (no *)');
  const policy = policies[0]!;
  const profile = profiles[0]!;
  const mutant = v.mutant as MutantName | undefined;

  io.stdout.write(
    `snpsim fuzz: policy ${policy.name}, profile ${profile.name}${mutant ? `, MUTANT ${mutant}` : ''}, seed ${seed}, ${path !== undefined ? `replaying path ${path}` : `up to ${runs} runs / ${seconds} s`}, ${INVARIANT_NAMES.length} invariants\n`,
  );
  const progress = createCampaignProgress(io.stderr, {
    label: 'fuzz',
    runs,
    seconds,
    quiet: v.quiet === true,
  });
  const result = runFuzz({
    policy,
    profile,
    seed,
    runs,
    seconds,
    ...(path !== undefined ? { path } : {}),
    ...(maxCommands !== undefined ? { maxCommands } : {}),
    ...(mutant !== undefined ? { mutant } : {}),
    onRun: (steps, shrinking) => progress.run(steps, shrinking),
  });
  progress.done();
  const seconds_ = result.elapsedMs / 1000;
  const rate = seconds_ > 0 ? Math.round(result.steps / seconds_) : 0;
  const stats = `${result.runs} runs, ${result.steps} steps in ${seconds_.toFixed(1)} s (${rate} steps/s)`;
  const x = result.violation;
  if (x === undefined) {
    io.stdout.write(
      `passed: ${stats}${result.interrupted ? ' (time budget reached)' : ''}; every invariant held; seed ${seed}\n`,
    );
    return ExitCode.OK;
  }
  io.stdout.write(
    [
      `VIOLATION of ${x.invariant}: ${INVARIANTS[x.invariant]}`,
      `  ${x.detail.split('\n').join('\n  ')}`,
      `found in run ${x.runsBefore} after ${stats}; shrunk ${x.shrinks} times to ${x.operations.length} operation${x.operations.length === 1 ? '' : 's'}:`,
      ...x.operations.map((o, i) => `  ${i + 1}. ${o}`),
      `replay: ${replayLine('fuzz', argv, ['--seed', '--path', '--runs', '--seconds'], seed, x.path)}`,
      '',
    ].join('\n'),
  );
  return ExitCode.DIFFERENCES;
}

export const fuzzCommand: CliCommand = {
  name: 'fuzz',
  summary: 'random host and guest operations against the model, checking the SNP security invariants',
  usage: FUZZ_USAGE,
  run: runFuzzCommand,
};
