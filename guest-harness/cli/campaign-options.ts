/**
 * Options of the campaign commands (`snpsim search`, `snpsim fuzz`): whole-number flags, `--seed` /
 * `--path`, and the replay command line a finding prints. Each takes the command's own usage-error
 * builder, so an error points at that command's help.
 */
import type { SnpsimError } from '../errors.js';
import { REPLAY_PATTERN } from '../experiment/index.js';

/** Builds a command's USAGE SnpsimError (exit 2) from a message. */
export type UsageError = (message: string) => SnpsimError;

/** A whole number in [min, max]; undefined when absent. */
export function intOption(
  flag: string,
  text: string | undefined,
  min: number,
  max: number,
  usage: UsageError,
): number | undefined {
  if (text === undefined) return undefined;
  const v = /^-?[0-9]{1,10}$/.test(text) ? Number(text) : Number.NaN;
  if (!Number.isSafeInteger(v) || v < min || v > max)
    throw usage(`${flag} ${JSON.stringify(text)}: expected a whole number in ${min}..${max}`);
  return v;
}

/**
 * `--seed` (default: a fresh 32-bit seed, printed so the run can be replayed) and `--path` (a replay
 * token a run printed; only with the seed it belongs to).
 */
export function seedAndPath(
  seedText: string | undefined,
  path: string | undefined,
  usage: UsageError,
): { readonly seed: number; readonly path?: string } {
  const seed =
    intOption('--seed', seedText, -0x8000_0000, 0xffff_ffff, usage) ??
    (Date.now() ^ Math.floor(Math.random() * 0x1_0000_0000)) | 0;
  if (path === undefined) return { seed };
  if (!REPLAY_PATTERN.test(path))
    throw usage(
      `--path ${path}: expected the token a run printed (numbers separated by ':', then @ and the commands' path)`,
    );
  if (seedText === undefined) throw usage('--path replays a run of a given --seed');
  return { seed, path };
}

/** The command line again, as a shell would take it back. */
export function shellLine(args: readonly string[]): string {
  return args.map((a) => (/^[A-Za-z0-9_./:=,@+-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/**
 * The command that replays a finding: `argv` without the `drop` flags (as `--flag value` or
 * `--flag=value`), then `--seed SEED --path PATH`.
 */
export function replayLine(
  command: string,
  argv: readonly string[],
  drop: readonly string[],
  seed: number,
  path: string,
): string {
  const dropped = (arg: string) => drop.some((flag) => arg === flag || arg.startsWith(`${flag}=`));
  const keep = argv.filter((arg, i) => !dropped(arg) && !drop.includes(argv[i - 1] ?? ''));
  return `snpsim ${command} ${shellLine([...keep, '--seed', String(seed), '--path', path])}`;
}
