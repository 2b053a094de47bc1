/**
 * The interleaving scheduler. The model is single-threaded, so concurrency is explicit: each
 * activity (an issuer's KVM_RUN with its VMGEXIT handling, a target's request processing and VMRUN,
 * a guest's RMPADJUST ...) is a generator of atomic steps that yields what its next step needs (a
 * mutex, a condition such as KVM_REQUEST_WAIT). An order names which activity takes each step.
 *
 * Generators cannot be copied, so every order is replayed from a fresh world built by `setup()`;
 * `enumerate` walks every order (depth first) and groups them by the resulting state.
 */
import type { Steps, StepYield } from './steps.js';

/** One concurrent activity, started against a fresh world. */
export interface Activity<W> {
  readonly name: string;
  start(world: W): Steps<unknown>;
}

/** A small concurrent experiment: a world factory, its activities and what to compare at the end. */
export interface Interleaving<W> {
  setup(): W;
  readonly activities: readonly Activity<W>[];
  /**
   * What the run ended in, as JSON-able data; runs with equal observations are one distinct outcome.
   * Default: each activity's result.
   */
  observe?(world: W, results: readonly ActivityResult[]): unknown;
}

export type ActivityResult =
  | { readonly status: 'done'; readonly value: unknown }
  /** Never finished: blocked on a lock or a wait nobody satisfied (a deadlock), or never scheduled. */
  | { readonly status: 'stuck'; readonly waitingFor: string };

export interface TraceStep {
  readonly activity: string;
  /** The step's label (what it was about to do when it yielded before). */
  readonly label: string;
}

export interface ScheduleRun<W> {
  /** Activity index of every step taken. */
  readonly order: readonly number[];
  readonly trace: readonly TraceStep[];
  readonly results: readonly ActivityResult[];
  /** True when some activity could not finish (all remaining ones blocked). */
  readonly deadlock: boolean;
  readonly world: W;
  readonly observation: unknown;
  /** Canonical JSON of the observation. */
  readonly fingerprint: string;
}

export interface DistinctOutcome<W> {
  readonly fingerprint: string;
  readonly observation: unknown;
  /** How many orders end here. */
  readonly count: number;
  /** The first order (in depth-first order) that ends here, replayable with `runOrder`. */
  readonly example: ScheduleRun<W>;
}

export interface Enumeration<W> {
  readonly runs: number;
  /** True when maxRuns stopped the walk before every order was tried. */
  readonly truncated: boolean;
  readonly outcomes: readonly DistinctOutcome<W>[];
}

interface Live {
  readonly gen: Steps<unknown>;
  pending: StepYield | undefined;
  started: boolean;
  done: boolean;
  value: unknown;
}

/** JSON with bigints as `0x…n` strings and sorted keys, so equal states print equally. */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v === 'bigint') return `0x${v.toString(16)}n`;
    if (v !== null && typeof v === 'object' && !Array.isArray(v)) {
      return Object.fromEntries(
        Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
    }
    return v;
  });
}

function enabled(live: Live): boolean {
  if (live.done) return false;
  const y = live.pending;
  if (y === undefined || y.kind === 'point') return true;
  if (y.kind === 'lock') return !y.mutex.locked;
  return y.ready();
}

function label(live: Live, name: string): string {
  const y = live.pending;
  if (!live.started) return `${name}: start`;
  return y === undefined ? `${name}: continue` : y.label;
}

/** Replays the steps of `order` on a fresh world; the prefix must be feasible (else throws). */
class Replay<W> {
  readonly world: W;
  readonly lives: Live[];
  readonly trace: TraceStep[] = [];
  readonly order: number[] = [];

  constructor(readonly spec: Interleaving<W>) {
    this.world = spec.setup();
    this.lives = spec.activities.map((a) => ({
      gen: a.start(this.world),
      pending: undefined,
      started: false,
      done: false,
      value: undefined,
    }));
  }

  enabledIndexes(): number[] {
    const out: number[] = [];
    this.lives.forEach((l, i) => {
      if (enabled(l)) out.push(i);
    });
    return out;
  }

  step(i: number): void {
    const live = this.lives[i];
    const activity = this.spec.activities[i];
    if (live === undefined || activity === undefined) throw new RangeError(`no activity ${i}`);
    if (!enabled(live)) {
      throw new Error(`activity ${activity.name} cannot take a step now (${label(live, activity.name)})`);
    }
    this.trace.push({ activity: activity.name, label: label(live, activity.name) });
    this.order.push(i);
    if (live.pending?.kind === 'lock') live.pending.mutex.locked = true;
    live.started = true;
    const next = live.gen.next();
    if (next.done === true) {
      live.done = true;
      live.pending = undefined;
      live.value = next.value;
    } else {
      live.pending = next.value;
    }
  }

  finish(): ScheduleRun<W> {
    const results: ActivityResult[] = this.lives.map((l, i) =>
      l.done
        ? { status: 'done', value: l.value }
        : { status: 'stuck', waitingFor: label(l, this.spec.activities[i]?.name ?? String(i)) },
    );
    const observation = this.spec.observe ? this.spec.observe(this.world, results) : results;
    return {
      order: [...this.order],
      trace: [...this.trace],
      results,
      deadlock: results.some((r) => r.status === 'stuck'),
      world: this.world,
      observation,
      fingerprint: canonicalJson(observation),
    };
  }
}

/**
 * Runs the steps of `order` (activity indexes), then lets the remaining activities run to the end,
 * lowest index first among those able to step. Throws if `order` names an activity that cannot
 * step at that point (an infeasible order is a caller error).
 */
export function runOrder<W>(spec: Interleaving<W>, order: readonly number[]): ScheduleRun<W> {
  const replay = new Replay(spec);
  for (const i of order) replay.step(i);
  for (;;) {
    const next = replay.enabledIndexes()[0];
    if (next === undefined) return replay.finish();
    replay.step(next);
  }
}

/**
 * A random-walk run for fuzzing: at step i the scheduler takes the (choices[i] mod n)-th of the n
 * activities able to step (lowest index first once `choices` is used up). Always feasible.
 */
export function runChoices<W>(spec: Interleaving<W>, choices: readonly number[]): ScheduleRun<W> {
  const replay = new Replay(spec);
  for (let i = 0; ; i++) {
    const able = replay.enabledIndexes();
    if (able.length === 0) return replay.finish();
    const c = choices[i];
    const pick = c === undefined ? able[0] : able[Math.abs(Math.trunc(c)) % able.length];
    replay.step(pick ?? 0);
  }
}

/**
 * Every feasible order of the activities' steps (depth first, each prefix replayed from scratch),
 * grouped by observation. `maxRuns` bounds the number of complete orders tried.
 */
export function enumerate<W>(
  spec: Interleaving<W>,
  options: { readonly maxRuns?: number } = {},
): Enumeration<W> {
  const maxRuns = options.maxRuns ?? 20_000;
  const groups = new Map<string, { observation: unknown; count: number; example: ScheduleRun<W> }>();
  let runs = 0;
  let truncated = false;
  const explore = (prefix: number[]): void => {
    if (runs >= maxRuns) {
      truncated = true;
      return;
    }
    const replay = new Replay(spec);
    for (const i of prefix) replay.step(i);
    const choices = replay.enabledIndexes();
    if (choices.length === 0) {
      const run = replay.finish();
      runs++;
      const g = groups.get(run.fingerprint);
      if (g === undefined)
        groups.set(run.fingerprint, { observation: run.observation, count: 1, example: run });
      else g.count++;
      return;
    }
    for (const i of choices) explore([...prefix, i]);
  };
  explore([]);
  return {
    runs,
    truncated,
    outcomes: [...groups].map(([fingerprint, g]) => ({
      fingerprint,
      observation: g.observation,
      count: g.count,
      example: g.example,
    })),
  };
}

/** An activity made of one atomic step: `fn` runs when the scheduler gives it its turn. */
export function atomic<W>(name: string, fn: (world: W) => unknown): Activity<W> {
  return {
    name,
    start: function* (world: W): Steps<unknown> {
      yield { kind: 'point', label: `${name}` };
      return fn(world);
    },
  };
}

/** Activities run one after the other as a single activity (program order on one vCPU). */
export function sequence<W>(name: string, parts: readonly Activity<W>[]): Activity<W> {
  return {
    name,
    start: function* (world: W): Steps<unknown> {
      const results: unknown[] = [];
      for (const part of parts) results.push(yield* part.start(world));
      return results;
    },
  };
}
