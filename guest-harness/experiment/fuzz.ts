/**
 * `snpsim fuzz`: a campaign of random host and guest operations against the model, checking the SNP
 * security invariants after every one (invariants.ts, fuzz-world.ts). fast-check generates the
 * operation sequences (the AP Creation family of steps.ts plus raw guest accesses, PVALIDATE,
 * RMPADJUST, page state changes, host writes, RMPUPDATE, PSMASH, firmware DBG and reclaim, NMIs)
 * and shrinks a violating sequence to a minimal one. Bounded by runs and by time; the seed and the
 * replay token (`--path`) replay a campaign's failure exactly.
 */
import fc from 'fast-check';
import type { NamedPolicy, NamedProfile } from '../model-guest/index.js';
import {
  DATA_PAGES,
  describeOp,
  type FuzzOp,
  FuzzWorld,
  type HostTarget,
  type MutantName,
  type RmpTargetState,
} from './fuzz-world.js';
import { InvariantViolation } from './invariants.js';
import {
  type GenModel,
  parseReplayToken,
  replayable,
  replayToken,
  runCommands,
  stepCommandArbitraries,
} from './steps.js';

export interface FuzzOptions {
  readonly policy: NamedPolicy;
  readonly profile: NamedProfile;
  readonly seed: number;
  /** Runs (operation sequences, each on a fresh VM) at most. */
  readonly runs: number;
  /** Time budget in seconds; the campaign ends at whichever budget runs out first. */
  readonly seconds?: number;
  /** Replay a counterexample of `seed` (the token a campaign printed). */
  readonly path?: string;
  /** Operations per run at most (default 30). */
  readonly maxCommands?: number;
  readonly mutant?: MutantName;
  /** After each run (`shrinking` once a violation is being shrunk), with its model steps. */
  readonly onRun?: (steps: number, shrinking: boolean) => void;
}

export interface FuzzViolation {
  readonly invariant: InvariantViolation['invariant'];
  readonly detail: string;
  /** The shrunk counterexample, one line per operation or scenario step. */
  readonly operations: readonly string[];
  readonly path: string;
  /** Runs up to the first violation. */
  readonly runsBefore: number;
  readonly shrinks: number;
}

export interface FuzzResult {
  readonly seed: number;
  /** Runs that completed without a violation before the campaign ended (or found one). */
  readonly runs: number;
  /** Model steps of those runs. */
  readonly steps: number;
  readonly elapsedMs: number;
  /** The time budget ended the campaign before `runs` were done. */
  readonly interrupted: boolean;
  readonly violation?: FuzzViolation;
}

const DEFAULT_MAX_COMMANDS = 30;

/** A fuzz operation as a fast-check command (it changes nothing in the generator's model). */
class OpCommand implements fc.Command<GenModel, FuzzWorld> {
  constructor(private readonly o: FuzzOp) {}
  check(model: Readonly<GenModel>): boolean {
    return !model.ended;
  }
  run(_model: GenModel, world: FuzzWorld): void {
    world.apply(this.o);
  }
  toString(): string {
    return describeOp(this.o);
  }
}

/** The host and guest operations beside the AP Creation steps. */
function opArbitraries(): fc.Arbitrary<fc.Command<GenModel, FuzzWorld>>[] {
  const d = fc.nat(DATA_PAGES - 1);
  const target: fc.Arbitrary<HostTarget> = fc.oneof(
    { weight: 4, arbitrary: d.map((i) => ({ kind: 'data' as const, i })) },
    { weight: 2, arbitrary: fc.nat(3).map((k) => ({ kind: 'vmsa-page' as const, k })) },
    { weight: 1, arbitrary: fc.nat(3).map((vcpu) => ({ kind: 'launch-vmsa' as const, vcpu })) },
    { weight: 1, arbitrary: fc.nat(3).map((cpu) => ({ kind: 'ghcb' as const, cpu })) },
    { weight: 1, arbitrary: fc.constant({ kind: 'gctx' as const }) },
    // Kernel pages below the allocator's start (16 MiB), e.g. page 0x100 = GPA 1 MiB.
    {
      weight: 1,
      arbitrary: fc.constantFrom(0x100, 0x200, 0xfff).map((page) => ({ kind: 'kernel' as const, page })),
    },
  );
  const state = fc.constantFrom<RmpTargetState>(
    'hypervisor',
    'guest',
    'guest-remap',
    'firmware',
    'other-asid',
    'guest-2m',
  );
  const ops: fc.Arbitrary<FuzzOp>[] = [
    d.map((i) => ({ op: 'guest-write' as const, d: i })),
    d.map((i) => ({ op: 'guest-read' as const, d: i })),
    d.map((i) => ({ op: 'guest-read' as const, d: i })),
    fc.record({ d, validate: fc.boolean() }).map((o) => ({ op: 'guest-pvalidate' as const, ...o })),
    fc.record({ d, vmsa: fc.boolean() }).map((o) => ({ op: 'guest-rmpadjust' as const, ...o })),
    fc.record({ d, shared: fc.boolean() }).map((o) => ({ op: 'guest-psc' as const, ...o })),
    fc.record({ target, mapping2M: fc.boolean() }).map((o) => ({ op: 'host-write' as const, ...o })),
    fc.record({ target, mapping2M: fc.boolean() }).map((o) => ({ op: 'host-write' as const, ...o })),
    fc.record({ target, state }).map((o) => ({ op: 'host-rmpupdate' as const, ...o })),
    fc.record({ target, state }).map((o) => ({ op: 'host-rmpupdate' as const, ...o })),
    target.map((t) => ({ op: 'host-psmash' as const, target: t })),
    fc.record({ target, encrypt: fc.boolean() }).map((o) => ({ op: 'fw-dbg' as const, ...o })),
    target.map((t) => ({ op: 'fw-reclaim' as const, target: t })),
    fc.nat(3).map((apic) => ({ op: 'nmi' as const, apic })),
  ];
  return ops.map((arb) => arb.map((o) => new OpCommand(o)));
}

/** The campaign's command arbitrary: AP Creation steps (with host steps) and the operations above. */
function campaignCommands(maxCommands: number, replayPath: string | undefined) {
  return fc.commands<GenModel, FuzzWorld>(
    [...stepCommandArbitraries<FuzzWorld>({ hostSteps: true, modelOnly: false }), ...opArbitraries()],
    { maxCommands, size: 'medium', ...(replayPath !== undefined ? { replayPath } : {}) },
  );
}

/** Runs a campaign. A violation is the result, never an exception. */
export function runFuzz(options: FuzzOptions): FuzzResult {
  const started = performance.now();
  const config = {
    policy: options.policy,
    profile: options.profile,
    ...(options.mutant !== undefined ? { mutant: options.mutant } : {}),
  };
  let runs = 0;
  let steps = 0;
  let last: { violation: InvariantViolation; operations: readonly string[] } | undefined;
  const maxCommands = options.maxCommands ?? DEFAULT_MAX_COMMANDS;
  const property = (replayPath: string | undefined) =>
    fc.property(campaignCommands(maxCommands, replayPath), (commands) => {
      const world = FuzzWorld.boot(config);
      try {
        runCommands(world, commands);
        world.finish();
      } catch (error) {
        if (!(error instanceof InvariantViolation)) throw error;
        // The last violating run is the shrunk counterexample fast-check reports.
        last = { violation: error, operations: [...world.log] };
        options.onRun?.(world.steps, true);
        return false;
      }
      // Runs and steps count the campaign up to its first violation, not the shrinking after it.
      if (last === undefined) {
        runs++;
        steps += world.steps;
      }
      options.onRun?.(world.steps, last !== undefined);
      return true;
    });
  const check = (token: string | undefined, seconds: number | undefined) => {
    const replay = token === undefined ? undefined : parseReplayToken(token);
    // A replay runs one counterexample: no time limit (whose timer would outlive a failed replay).
    const limit = seconds !== undefined && replay === undefined;
    const details = replayable(token, () =>
      fc.check(property(replay?.replayPath), {
        seed: options.seed,
        numRuns: options.runs,
        ...(replay !== undefined ? { path: replay.path } : {}),
        ...(limit ? { plugins: [fc.interruptAfterTimeLimit(seconds * 1000)] } : {}),
      }),
    );
    const path =
      details.counterexamplePath === null
        ? undefined
        : replayToken(
            details.counterexamplePath,
            (details.counterexample as readonly [Iterable<unknown>] | null)?.[0] ?? [],
          );
    return { details, path };
  };
  const first = check(options.path, options.seconds);
  // The time limit also cuts shrinking short: finish it from where it stopped.
  const { details, path } =
    first.details.failed && first.details.interrupted && first.path !== undefined
      ? check(first.path, undefined)
      : first;
  const elapsedMs = performance.now() - started;
  const interrupted = !details.failed && details.interrupted;
  if (!details.failed) return { seed: options.seed, runs, steps, elapsedMs, interrupted };
  if (last === undefined) {
    throw details.errorInstance instanceof Error
      ? details.errorInstance
      : new Error('snpsim fuzz: fast-check failed without a run');
  }
  return {
    seed: options.seed,
    runs,
    steps,
    elapsedMs,
    interrupted: false,
    violation: {
      invariant: last.violation.invariant,
      detail: last.violation.detail,
      operations: last.operations,
      path: path ?? '',
      runsBefore: first.details.numRuns,
      shrinks: details.numShrinks,
    },
  };
}
