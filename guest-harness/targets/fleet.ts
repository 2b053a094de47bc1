/**
 * Several targets in one run: per-target work runs concurrently up to a limit, and each target keeps
 * its own outcome (a failure on one guest never hides another guest's results).
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { Limiter } from '../ssh/limiter.js';

export type FleetOutcome<T> =
  | { readonly target: string; readonly ok: true; readonly value: T }
  | { readonly target: string; readonly ok: false; readonly error: SnpsimError };

export interface FleetOptions {
  /** Targets worked on at once (default 4). */
  readonly concurrency?: number;
}

/**
 * Runs `work` for every target, at most `concurrency` at a time. SnpsimErrors become that target's
 * outcome; any other exception is a programming error and is rethrown once all targets settled.
 * Outcomes are in the order of `targets`.
 */
export async function runFleet<Target extends { readonly id: string }, T>(
  targets: readonly Target[],
  work: (target: Target) => Promise<T>,
  options: FleetOptions = {},
): Promise<FleetOutcome<T>[]> {
  const ids = new Set<string>();
  for (const target of targets) {
    if (ids.has(target.id))
      throw new SnpsimError(SnpsimErrorCode.USAGE, `target ${target.id} is listed twice`, {
        target: target.id,
      });
    ids.add(target.id);
  }
  const limiter = new Limiter(options.concurrency ?? 4);
  const settled = await Promise.allSettled(targets.map((target) => limiter.run(() => work(target))));
  const outcomes: FleetOutcome<T>[] = [];
  let bug: unknown;
  settled.forEach((result, i) => {
    const target = (targets[i] as Target).id;
    if (result.status === 'fulfilled') outcomes.push({ target, ok: true, value: result.value });
    else if (SnpsimError.is(result.reason)) outcomes.push({ target, ok: false, error: result.reason });
    else bug ??= result.reason;
  });
  if (bug !== undefined) throw bug;
  return outcomes;
}
