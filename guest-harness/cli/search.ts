/**
 * `snpsim search`: generates random AP Creation sequences, runs each on two sides (two host
 * policies of the model, or the model and a target), and shrinks the first divergence to a minimal
 * scenario. The scenario file goes to stdout (redirect it into scenarios/); the report, the seed and
 * the replay command go to stderr.
 */
import { parseArgs } from 'node:util';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import {
  createCampaignProgress,
  describeDifference,
  modelSide,
  parsePolicySpec,
  parseProfileSpec,
  type SearchSide,
  searchDivergence,
  targetSide,
} from '../experiment/index.js';
import { DEFAULT_PROFILE, type NamedPolicy, type NamedProfile } from '../model-guest/index.js';
import { parseInteger, parseTargetSpec, type ScenarioTarget, type TargetSpec } from '../runner/index.js';
import { DEFAULT_STEP_TIMEOUT_MS } from '../targets/ssh-target.js';
import { intOption, replayLine, seedAndPath } from './campaign-options.js';
import type { CliCommand, CliIo } from './command.js';
import { SSH_PARSE_OPTIONS, type SshCliOptions, sshOptionsFromArgs, sshUsage } from './ssh-options.js';

export const SEARCH_USAGE = `usage: snpsim search --a POLICY (--b POLICY | --target SPEC) [options]

Generates random AP Creation sequences (CREATE, CREATE_ON_INIT, DESTROY with malformed fields,
RMPADJUST, PVALIDATE, INIT-SIPI, CPU offline/online, PV kick, KVM_SET_MP_STATE, concurrent
requests ...) with fast-check, runs each as a scenario on side A and side B, and shrinks the first
divergence to a minimal sequence. The scenario file is printed on stdout; save it into scenarios/
(snpsim search ... > scenarios/found.json). The report and the replay command go to stderr.

  --a POLICY          side A: the model with this host policy (preset, JSON file, PRESET+knob=value)
  --b POLICY          side B: the model with this host policy
  --target SPEC       side B: a target instead (model[:P[:F]], sim[:P[:F]], ssh://user@host[:port])
  --profile F         platform profile of the model sides (default ${DEFAULT_PROFILE})
  --b-profile F       platform profile of side B when it is the model (default: --profile)
  --runs N            sequences to try (default 100)
  --max-commands N    commands per sequence at most (default 10)
  --seed N            fast-check seed (default: random, printed)
  --path P            replay the shrink path P of --seed (printed with a divergence)
  --compare guest|model  compare guest-observable observations (default), or the model state too
  --quiet             no progress output

${sshUsage(`${DEFAULT_STEP_TIMEOUT_MS}; sim targets use it too`)}
A real target must be a throw-away guest: generated sequences can stop its VM, and a real guest
does not come back (the search then ends with exit 3).

exit codes: 0 no divergence, 1 divergence found (scenario on stdout), 2 usage error,
            3 target failure`;

const OPTIONS = {
  ...SSH_PARSE_OPTIONS,
  a: { type: 'string' },
  b: { type: 'string' },
  target: { type: 'string' },
  profile: { type: 'string' },
  'b-profile': { type: 'string' },
  runs: { type: 'string' },
  'max-commands': { type: 'string' },
  seed: { type: 'string' },
  path: { type: 'string' },
  compare: { type: 'string' },
  quiet: { type: 'boolean' },
} as const;

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, `${message} (see snpsim search --help)`);
}

function one<T>(items: readonly T[], flag: string, text: string): T {
  if (items.length !== 1) throw usage(`${flag} '${text}' names ${items.length} configurations; give one`);
  return items[0]!;
}

/** A parsed `snpsim search` command line (policies and profiles are resolved by the command). */
export interface SearchArgs {
  readonly a: string;
  /** Side B: a policy of the model, or a target. */
  readonly b: { readonly policy: string } | { readonly target: Exclude<TargetSpec, { kind: 'fixture' }> };
  readonly profile?: string;
  readonly bProfile?: string;
  readonly runs: number;
  readonly maxCommands: number;
  readonly seed: number;
  readonly path?: string;
  readonly compared: 'guest' | 'model';
  readonly quiet: boolean;
  readonly ssh: SshCliOptions;
}

/** Parses `snpsim search` arguments; throws a USAGE SnpsimError naming what is wrong. */
export function parseSearchArgs(argv: readonly string[]): SearchArgs {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: false, strict: true });
  } catch (error) {
    throw usage((error as Error).message);
  }
  const v = parsed.values;
  if (v.a === undefined) throw usage('--a POLICY is required');
  if ((v.b === undefined) === (v.target === undefined))
    throw usage('give exactly one of --b POLICY or --target SPEC');
  if (v.target !== undefined && v['b-profile'] !== undefined)
    throw usage('--b-profile applies to --b, not --target');
  const compared = v.compare ?? 'guest';
  if (compared !== 'guest' && compared !== 'model')
    throw usage(`--compare ${compared}: expected guest or model`);
  const runs = intOption('--runs', v.runs, 1, 1_000_000, usage) ?? 100;
  const maxCommands = intOption('--max-commands', v['max-commands'], 1, 64, usage) ?? 10;
  const { seed, path } = seedAndPath(v.seed, v.path, usage);
  let ssh: SshCliOptions;
  try {
    ssh = sshOptionsFromArgs(v);
  } catch (error) {
    throw SnpsimError.is(error) ? usage(error.message) : error;
  }
  let b: SearchArgs['b'];
  if (v.target !== undefined) {
    const target = parseTargetSpec(v.target);
    if (target.kind === 'fixture')
      throw usage('--target fixture: replays recorded scenarios; a search needs a live target');
    b = { target };
  } else b = { policy: v.b! };
  return {
    a: v.a,
    b,
    ...(v.profile !== undefined ? { profile: v.profile } : {}),
    ...(v['b-profile'] !== undefined ? { bProfile: v['b-profile'] } : {}),
    runs,
    maxCommands,
    seed,
    ...(path !== undefined ? { path } : {}),
    compared,
    quiet: v.quiet === true,
    ssh,
  };
}

async function runSearch(argv: readonly string[], io: CliIo): Promise<number> {
  const args = parseSearchArgs(argv);
  const { runs, maxCommands, seed, path, compared } = args;
  const policyA: NamedPolicy = one(parsePolicySpec(args.a), '--a', args.a);
  const profileText = args.profile ?? DEFAULT_PROFILE;
  const profile: NamedProfile = one(parseProfileSpec(profileText), '--profile', profileText);
  const bProfile =
    args.bProfile === undefined
      ? profile
      : one(parseProfileSpec(args.bProfile), '--b-profile', args.bProfile);
  // A side is named by its policy, and by its profile too when the two sides' profiles differ.
  const named = (p: NamedPolicy, f: NamedProfile) =>
    profile.name === bProfile.name ? p.name : `${p.name} · ${f.name}`;

  let target: ScenarioTarget | undefined;
  let b: SearchSide;
  let a: SearchSide;
  if ('target' in args.b) {
    const spec = args.b.target;
    const { defaultRunEnvironment } = await import('../runner/environment.js');
    target = defaultRunEnvironment().target(spec, { policy: args.a, profile: profileText, ssh: args.ssh });
    let platform: Readonly<Record<string, string>>;
    try {
      platform = await target.open();
    } catch (error) {
      await target.close().catch(() => undefined);
      throw error;
    }
    const sevStatus = platform.sev_status === undefined ? undefined : parseInteger(platform.sev_status);
    const possible = platform.possible_cpus === undefined ? Number.NaN : Number(platform.possible_cpus);
    a = modelSide(policyA, profile, {
      name: named(policyA, profile),
      ...(sevStatus !== undefined ? { sevStatus } : {}),
      ...(Number.isInteger(possible) ? { vcpus: possible } : {}),
    });
    b = targetSide(target, spec.kind === 'model' || platform.host_steps === '1');
  } else {
    const policyB = one(parsePolicySpec(args.b.policy), '--b', args.b.policy);
    a = modelSide(policyA, profile, { name: named(policyA, profile) });
    b = modelSide(policyB, bProfile, { name: named(policyB, bProfile) });
  }

  const progress = createCampaignProgress(io.stderr, { label: 'search', runs, quiet: args.quiet });
  io.stderr.write(
    `snpsim search: ${a.name} vs ${b.name}${profile.name === DEFAULT_PROFILE ? '' : ` (profile ${profile.name})`}, ${path !== undefined ? `replaying path ${path} of` : `up to ${runs} sequences,`} seed ${seed}\n`,
  );
  let result: Awaited<ReturnType<typeof searchDivergence>>;
  try {
    result = await searchDivergence({
      a,
      b,
      seed,
      runs,
      maxCommands,
      compared,
      ...(path !== undefined ? { path } : {}),
      onRun: (steps, shrinking) => progress.run(steps, shrinking),
    });
  } catch (error) {
    progress.done();
    if (SnpsimError.is(error)) throw error;
    io.stderr.write(`snpsim search: the search stopped: ${(error as Error).message}\n`);
    return ExitCode.INFRASTRUCTURE;
  } finally {
    await target?.close().catch(() => undefined);
  }
  progress.done();
  const f = result.finding;
  if (f === undefined) {
    io.stderr.write(`no divergence in ${result.runs} sequences (seed ${seed})\n`);
    return ExitCode.OK;
  }
  const first = f.differences[0]!;
  io.stderr.write(
    [
      `divergence in sequence ${f.runsBefore}, shrunk ${f.shrinks} times to ${f.scenario.steps.length} steps from ${f.commands.length} command${f.commands.length === 1 ? '' : 's'}:`,
      ...f.commands.map((c) => `  ${c}`),
      `first difference: ${describeDifference(first, f.differences.length - 1, [a.name, b.name])}`,
      `reproduced by the scenario on stdout: ${f.reproduced ? 'yes' : 'NO (the target answered differently when run again)'}`,
      `replay: ${replayLine('search', argv, ['--seed', '--path', '--runs'], seed, f.path)}`,
      '',
    ].join('\n'),
  );
  io.stdout.write(`${JSON.stringify(f.document, null, 2)}\n`);
  return ExitCode.DIFFERENCES;
}

export const searchCommand: CliCommand = {
  name: 'search',
  summary:
    'search random AP Creation sequences for one where two policies (or the model and a target) diverge',
  usage: SEARCH_USAGE,
  run: runSearch,
};
