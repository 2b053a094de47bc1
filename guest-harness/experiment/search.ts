/**
 * `snpsim search`: property-based search for a scenario on which two sides diverge — two
 * configurations of the model (`--a P --b Q`), or the model and a target. fast-check generates AP
 * Creation sequences (steps.ts), each runs as one scenario on both sides, and the first sequence
 * whose observations differ is shrunk to a minimal one, returned as a scenario document the
 * loader accepts (with the two sides' observations as expectations of the diverging step when both
 * sides are policy presets). The seed and the replay token (`--path`) replay a search exactly.
 */
import { Value } from '@sinclair/typebox/value';
import fc from 'fast-check';
import { PRESET_NAMES } from '../../host/index.js';
import { type NamedPolicy, type NamedProfile, runScenarioOnModel } from '../model-guest/index.js';
import {
  COMPARED_KEYS,
  describeObservation,
  type ScenarioExecution,
  type ScenarioTarget,
  type StepObservation,
} from '../runner/index.js';
import { type LoadedScenario, type Step, StepExpect, validateScenario } from '../scenario/index.js';
import { type Compared, compareExecutions, type Difference } from './compare.js';
import {
  parseReplayToken,
  replayable,
  replayToken,
  runCommands,
  StepList,
  stepCommandArbitraries,
} from './steps.js';

/** One side of a search: runs a scenario, says which kinds of steps it can run. */
export interface SearchSide {
  /** Policy (and profile) name, or the target spec. */
  readonly name: string;
  /** The host policy preset the side runs, when it is the model on a preset. */
  readonly preset?: string;
  /** The platform profile, when it is the model. */
  readonly profile?: string;
  /** It can run host steps (KVM_SET_MP_STATE). */
  readonly hostSteps: boolean;
  /** It can run model-only steps (host-run, concurrent groups). */
  readonly modelOnly: boolean;
  run(scenario: LoadedScenario): Promise<ScenarioExecution>;
}

/** The model under a policy and profile. */
export function modelSide(
  policy: NamedPolicy,
  profile: NamedProfile,
  options: { readonly name?: string; readonly sevStatus?: bigint; readonly vcpus?: number } = {},
): SearchSide {
  return {
    name: options.name ?? policy.name,
    ...(PRESET_NAMES.includes(policy.name) ? { preset: policy.name } : {}),
    profile: profile.name,
    hostSteps: true,
    modelOnly: true,
    run: async (scenario) =>
      runScenarioOnModel(scenario, {
        policy,
        profile,
        ...(options.sevStatus !== undefined ? { sevStatus: options.sevStatus } : {}),
        ...(options.vcpus !== undefined ? { vcpus: options.vcpus } : {}),
      }),
  };
}

/**
 * An opened target (sim, ssh://, model:). After a scenario that stopped its VM it must recover (a
 * model-backed target boots a fresh VM); a target that cannot ends the search with that error.
 */
export function targetSide(target: ScenarioTarget, hostSteps: boolean): SearchSide {
  return {
    name: target.spec,
    hostSteps,
    modelOnly: target.kind === 'model',
    async run(scenario) {
      const skipped = target.cannotRun(scenario);
      if (skipped !== undefined)
        throw new Error(`${target.spec} cannot run a generated scenario: ${skipped}`);
      const exec = await target.run(scenario);
      if (exec.error !== undefined || exec.observations.some((o) => o.kind === 'dead' || o.vm === 'dead')) {
        const why = await target.recover();
        if (why !== undefined)
          throw new Error(`${target.spec} did not recover after scenario ${scenario.name}: ${why}`);
      }
      return exec;
    },
  };
}

export interface SearchOptions {
  readonly a: SearchSide;
  readonly b: SearchSide;
  /** fast-check seed (32-bit). */
  readonly seed: number;
  /** Replay this counterexample of `seed` (the token an earlier search printed). */
  readonly path?: string;
  /** Sequences to try (default 100). */
  readonly runs?: number;
  /** Commands per sequence at most (default 10). */
  readonly maxCommands?: number;
  readonly compared?: Compared;
  /** Called after every scenario run on both sides (`shrinking` once a divergence was found). */
  readonly onRun?: (steps: number, shrinking: boolean) => void;
}

/** A divergence, shrunk. */
export interface SearchFinding {
  /** Replay token of the shrunk counterexample (with the seed it replays it). */
  readonly path: string;
  /** Sequences tried up to the first divergence. */
  readonly runsBefore: number;
  readonly shrinks: number;
  /** Running the shrunk scenario again gave the same divergence (always so for the model). */
  readonly reproduced: boolean;
  /** The generated commands, as text. */
  readonly commands: readonly string[];
  /** The scenario file's content. */
  readonly document: ScenarioDocument;
  readonly scenario: LoadedScenario;
  readonly a: ScenarioExecution;
  readonly b: ScenarioExecution;
  readonly differences: readonly Difference[];
}

export interface SearchResult {
  readonly seed: number;
  /** Sequences run before the search ended (including shrinking). */
  readonly runs: number;
  readonly finding?: SearchFinding;
}

/** A generated scenario file. */
export interface ScenarioDocument {
  readonly $schema: string;
  readonly name: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly destructive?: true;
  readonly steps: readonly Step[];
}

/** Where the corpus keeps the schema, relative to scenarios/. */
const SCHEMA_REF = '../schemas/scenario.schema.json';
const DEFAULT_RUNS = 100;
const DEFAULT_MAX_COMMANDS = 10;

function slug(text: string): string {
  return text
    .toLowerCase()
    .replace(/[^a-z0-9_.-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

function loaded(doc: ScenarioDocument): LoadedScenario {
  const r = validateScenario(`${doc.name}.json`, doc);
  if ('problems' in r) {
    // The generator keeps the loader's rules; a problem here is a bug in snpsim.
    throw new Error(
      `snpsim search generated an invalid scenario: ${r.problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    );
  }
  return r.scenario;
}

const died = (e: ScenarioExecution) => e.observations.some((o) => o.kind === 'dead' || o.vm === 'dead');

/** A side's observation of a step as an expectation, keeping only values the schema accepts. */
function expectationOf(op: Step['op'], obs: StepObservation): StepExpect | undefined {
  if (obs.kind === 'not-run') return undefined;
  if (obs.kind === 'dead') return { vm: 'dead' };
  const vm = obs.vm === 'dead' ? { vm: 'dead' as const } : {};
  if (obs.kind === 'err') {
    const e: StepExpect = { outcome: 'err', ...(obs.code !== undefined ? { code: obs.code } : {}), ...vm };
    return Value.Check(StepExpect, e) ? e : { outcome: 'err', ...vm };
  }
  const keys =
    op === 'concurrent' ? Object.keys(obs.values ?? {}) : COMPARED_KEYS[op].filter((k) => k !== 'gpa');
  const values: Record<string, string | number> = {};
  for (const key of keys) {
    const v = obs.values?.[key];
    const value = v !== undefined && /^-?[0-9]{1,9}$/.test(v) ? Number(v) : v;
    if (value !== undefined && Value.Check(StepExpect, { values: { [key]: value } })) values[key] = value;
  }
  return { ...(Object.keys(values).length > 0 ? { values } : {}), ...vm };
}

/** The scenario file of a divergence: the steps, plus a note and expectations on the diverging step. */
export function findingDocument(
  steps: readonly Step[],
  context: {
    readonly a: SearchSide;
    readonly b: SearchSide;
    readonly seed: number;
    readonly path: string;
    readonly first: Difference;
    readonly execA: ScenarioExecution;
    readonly execB: ScenarioExecution;
  },
): ScenarioDocument {
  const { a, b, first, execA, execB } = context;
  const i = first.step - 1;
  const obsA = execA.observations[i];
  const obsB = execB.observations[i];
  const note = `found by snpsim search: ${a.name}: ${describeObservation(obsA)} | ${b.name}: ${describeObservation(obsB)}`;
  const expectPolicy: Record<string, StepExpect> = {};
  // An expectation applies to a policy under any profile: only a policy difference can be pinned.
  if (a.preset !== undefined && b.preset !== undefined && a.preset !== b.preset && a.profile === b.profile) {
    for (const [side, obs] of [
      [a, obsA],
      [b, obsB],
    ] as const) {
      const e = obs === undefined ? undefined : expectationOf(steps[i]!.op, obs);
      if (e !== undefined) expectPolicy[side.preset!] = e;
    }
  }
  const marked = steps.map((step, j) =>
    j !== i
      ? step
      : ({
          ...step,
          note: note.length > 400 ? `${note.slice(0, 397)}...` : note,
          ...(Object.keys(expectPolicy).length > 0 ? { expectPolicy } : {}),
        } as Step),
  );
  const name = `search-${slug(a.name)}-vs-${slug(b.name)}`.slice(0, 68);
  const description =
    `Found by snpsim search (seed ${context.seed}, path ${context.path}) and shrunk to ${steps.length} steps: ` +
    `${a.name} and ${b.name} diverge at step ${first.step} (${first.op}) on ${first.what}: ` +
    `${first.a} vs ${first.b}.`;
  return {
    $schema: SCHEMA_REF,
    name: `${name.replace(/[-.]+$/, '')}-${context.seed >>> 0}`,
    description: description.length > 2000 ? `${description.slice(0, 1997)}...` : description,
    tags: ['search'],
    ...(died(execA) || died(execB) ? { destructive: true as const } : {}),
    steps: marked,
  };
}

function documentOf(steps: readonly Step[], seed: number): ScenarioDocument {
  return {
    $schema: SCHEMA_REF,
    name: `search-candidate-${seed >>> 0}`,
    description: 'a sequence generated by snpsim search',
    tags: ['search'],
    steps,
  };
}

/** Searches for a diverging sequence; never throws for a divergence (it is the result). */
export async function searchDivergence(options: SearchOptions): Promise<SearchResult> {
  const { a, b, seed } = options;
  const compared = options.compared ?? 'guest';
  const replay = options.path === undefined ? undefined : parseReplayToken(options.path);
  const arb = fc.commands(
    stepCommandArbitraries<StepList>({
      hostSteps: a.hostSteps && b.hostSteps,
      modelOnly: a.modelOnly && b.modelOnly,
    }),
    {
      maxCommands: options.maxCommands ?? DEFAULT_MAX_COMMANDS,
      size: 'medium',
      ...(replay?.replayPath !== undefined ? { replayPath: replay.replayPath } : {}),
    },
  );
  let runs = 0;
  let broken: unknown;
  let last:
    | { list: StepList; a: ScenarioExecution; b: ScenarioExecution; differences: Difference[] }
    | undefined;
  const property = fc.asyncProperty(arb, async (commands) => {
    if (broken !== undefined) return true;
    const list = runCommands(new StepList(), commands);
    if (list.steps.length === 0) return true;
    const scenario = loaded(documentOf(list.steps, seed));
    let ra: ScenarioExecution;
    let rb: ScenarioExecution;
    try {
      ra = await a.run(scenario);
      rb = await b.run(scenario);
    } catch (error) {
      // An infrastructure failure is not a divergence: stop, and report it after fast-check returns.
      broken = error;
      return true;
    }
    runs++;
    options.onRun?.(list.steps.length, last !== undefined);
    const differences = compareExecutions(scenario, ra, rb, compared);
    if (differences.length === 0) return true;
    // The last failing run is the shrunk counterexample fast-check reports.
    last = { list, a: ra, b: rb, differences };
    return false;
  });
  const details = await replayable(options.path, () =>
    fc.check(property, {
      seed,
      numRuns: options.runs ?? DEFAULT_RUNS,
      ...(replay !== undefined ? { path: replay.path } : {}),
    }),
  );
  if (broken !== undefined) throw broken;
  if (!details.failed) return { seed, runs };
  if (last === undefined)
    throw details.errorInstance ?? new Error('snpsim search: fast-check failed without a run');
  const path = replayToken(details.counterexamplePath ?? '', details.counterexample?.[0] ?? []);
  // Steps after the first difference cannot change it: the scenario ends there.
  const list = last.list.prefix(last.differences[0]!.step);
  const candidate = loaded(documentOf(list.steps, seed));
  const execA = await a.run(candidate);
  const execB = await b.run(candidate);
  const differences = compareExecutions(candidate, execA, execB, compared);
  const first = differences[0] ?? last.differences[0]!;
  const document = findingDocument(list.steps, { a, b, seed, path, first, execA, execB });
  const scenario = loaded(document);
  return {
    seed,
    runs,
    finding: {
      path,
      runsBefore: details.numRuns,
      shrinks: details.numShrinks,
      reproduced:
        differences[0]?.step === last.differences[0]!.step &&
        differences[0]?.what === last.differences[0]!.what,
      commands: list.commands,
      document,
      scenario,
      a: execA,
      b: execB,
      differences,
    },
  };
}
