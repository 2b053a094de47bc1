/**
 * The differential run: every scenario on the reference model and on each target (targets in
 * parallel, scenarios in order, destructive ones last), compared step by step, classified against
 * the expectations file, collected into one report. A target that breaks ends only its own section;
 * the report is always produced, marked incomplete when the run stopped early.
 */
import { ExitCode, SnpsimErrorCode } from '../errors.js';
import { type LoadedScenario, scenarioRequests } from '../scenario/index.js';
import { diffScenario } from './diff.js';
import { checkScenarioExpectations } from './expect.js';
import { classifyDifferences, type ExpectationsFile } from './expectations.js';
import {
  FIXTURE_FORMAT,
  FIXTURE_VERSION,
  type Fixture,
  type FixtureScenario,
  fixtureObservation,
} from './fixture.js';
import { parseInteger, type StepObservation } from './observation.js';
import type { Progress } from './progress.js';
import { requestText } from './replies.js';
import {
  type ErrorInfo,
  exitCodeOf,
  REPORT_FORMAT,
  REPORT_VERSION,
  type Report,
  type ScenarioResult,
  type StepRecord,
  summarize,
  type TargetReport,
} from './report.js';
import type { ModelConfig, ReferenceModel, ScenarioExecution, ScenarioTarget } from './target.js';

export interface RunOptions {
  readonly scenarios: readonly LoadedScenario[];
  readonly targets: readonly ScenarioTarget[];
  readonly reference: ReferenceModel;
  /** Host policy and firmware profile of the reference model, as reports name them. */
  readonly policy: string;
  readonly profile: string;
  /**
   * The --policy / --profile values the reference model resolves (a preset name or a JSON file) when
   * they are not the names above (a file's policy is named `custom (extends …)`); default: the names.
   */
  readonly referenceSpec?: { readonly policy: string; readonly profile: string };
  readonly expectations?: { readonly file: string; readonly doc: ExpectationsFile };
  /** Platform details the user declared (host_kernel, firmware, qemu ...), added to every target's. */
  readonly declaredPlatform?: Readonly<Record<string, string>>;
  /** Collect each target's observations as a fixture. */
  readonly record?: boolean;
  readonly progress?: Progress;
  readonly signal?: AbortSignal;
  readonly snpsimVersion: string;
  readonly now?: () => Date;
}

export interface RunOutcome {
  readonly report: Report;
  /** One fixture per target when `record` was set (same order as the targets). */
  readonly fixtures: readonly Fixture[];
}

function errorInfo(error: unknown): ErrorInfo {
  const e = error as { code?: unknown; message?: unknown };
  return {
    code: typeof e?.code === 'string' ? e.code : 'internal',
    message: typeof e?.message === 'string' ? e.message : String(error),
  };
}

function diedDuring(observations: readonly StepObservation[]): number | undefined {
  const i = observations.findIndex((o) => o.kind === 'dead' || o.vm === 'dead');
  return i < 0 ? undefined : i;
}

/** Scenarios in run order: destructive ones (which may stop the VM) after all others. */
export function runOrder(scenarios: readonly LoadedScenario[]): LoadedScenario[] {
  return [...scenarios.filter((s) => !s.destructive), ...scenarios.filter((s) => s.destructive)];
}

function stepRecords(
  scenario: LoadedScenario,
  model: readonly StepObservation[] | undefined,
  target: readonly StepObservation[] | undefined,
): StepRecord[] {
  const requests = scenarioRequests(scenario);
  return scenario.steps.map((step, i) => ({
    step: i + 1,
    label: scenario.labels[i]!,
    op: step.op,
    requests: requests[i]!.map(requestText),
    ...(model?.[i] !== undefined ? { model: model[i] } : {}),
    ...(target?.[i] !== undefined ? { target: target[i] } : {}),
  }));
}

function bare(
  scenario: LoadedScenario,
  status: 'skipped' | 'error',
  reason: string,
  error?: ErrorInfo,
): ScenarioResult {
  return {
    name: scenario.name,
    file: scenario.file,
    status,
    reason,
    differences: [],
    expectedDifferences: [],
    unexpectedPasses: [],
    expectationFailures: [],
    ...(error !== undefined ? { error } : {}),
    steps: stepRecords(scenario, undefined, undefined),
  };
}

/** Compares one scenario's executions and decides its status. */
export function evaluateScenario(
  scenario: LoadedScenario,
  reference: ScenarioExecution,
  target: ScenarioExecution,
  context: {
    readonly policy: string;
    readonly target: string;
    readonly platform: Readonly<Record<string, string>>;
    readonly expectations?: ExpectationsFile;
  },
): ScenarioResult {
  const ops = scenario.steps.map((s) => s.op);
  const steps = stepRecords(scenario, reference.observations, target.observations);
  const base = {
    name: scenario.name,
    file: scenario.file,
    differences: [],
    expectedDifferences: [],
    unexpectedPasses: [],
    expectationFailures: [],
    steps,
  };
  if (reference.error !== undefined) {
    return { ...base, status: 'error', reason: 'the reference model failed', error: reference.error };
  }
  if (target.skipped !== undefined) return { ...base, status: 'skipped', reason: target.skipped };
  const expectationFailures = checkScenarioExpectations(
    scenario.steps,
    scenario.labels,
    reference.observations,
    context.policy,
  );
  const differences = diffScenario(scenario.labels, ops, reference.observations, target.observations);
  const classified = classifyDifferences(
    context.expectations,
    scenario.name,
    context.target,
    context.platform,
    differences,
  );
  const result = {
    ...base,
    differences: classified.unexpected,
    expectedDifferences: classified.expected,
    expectationFailures,
    unexpectedPasses: target.error === undefined ? classified.unexpectedPasses : [],
    ...(classified.unexpected[0] !== undefined ? { firstDifference: classified.unexpected[0] } : {}),
  };
  if (target.error !== undefined) {
    return {
      ...result,
      status: 'error',
      reason: 'the target failed during the scenario',
      error: target.error,
    };
  }
  const targetDeath = diedDuring(target.observations);
  if (targetDeath !== undefined && diedDuring(reference.observations) === undefined) {
    return {
      ...result,
      status: 'error',
      reason: 'the guest died unexpectedly',
      error: {
        code: SnpsimErrorCode.GUEST_DIED,
        message: `the guest VM stopped at step ${targetDeath + 1} (${scenario.labels[targetDeath]}), where the model's VM kept running`,
        step: targetDeath + 1,
      },
    };
  }
  if (expectationFailures.length > 0) return { ...result, status: 'fail' };
  if (classified.unexpected.length > 0) return { ...result, status: 'diff' };
  if (result.unexpectedPasses.length > 0) return { ...result, status: 'unexpected-pass' };
  if (classified.expected.length > 0) return { ...result, status: 'expected-diff' };
  return { ...result, status: 'pass' };
}

async function runTarget(
  target: ScenarioTarget,
  options: RunOptions,
  ordered: readonly LoadedScenario[],
): Promise<{ report: TargetReport; fixture: FixtureScenario[]; complete: boolean }> {
  const results: ScenarioResult[] = [];
  const fixture: FixtureScenario[] = [];
  let platform: Record<string, string> = { ...(options.declaredPlatform ?? {}) };
  let targetError: ErrorInfo | undefined;
  const section = (): TargetReport => ({
    target: target.spec,
    kind: target.kind,
    platform,
    policy: options.policy,
    profile: options.profile,
    summary: summarize(results),
    ...(targetError !== undefined ? { error: targetError } : {}),
    scenarios: results,
  });
  try {
    platform = { ...(await target.open(options.signal)), ...platform };
  } catch (error) {
    targetError = errorInfo(error);
    for (const s of ordered) {
      results.push(bare(s, 'error', 'not run: the target could not be opened', targetError));
      options.progress?.tick(`${target.spec} ${s.name}`);
    }
    await target.close().catch(() => undefined);
    return { report: section(), fixture, complete: false };
  }
  const sevStatus = platform.sev_status === undefined ? undefined : parseInteger(platform.sev_status);
  const possible = platform.possible_cpus === undefined ? undefined : Number(platform.possible_cpus);
  const config: ModelConfig = {
    policy: options.referenceSpec?.policy ?? options.policy,
    profile: options.referenceSpec?.profile ?? options.profile,
    ...(sevStatus !== undefined ? { sevStatus } : {}),
    ...(possible !== undefined && Number.isInteger(possible) ? { vcpus: possible } : {}),
  };
  let stopped: { status: 'skipped' | 'error'; reason: string; code: string } | undefined;
  let complete = true;
  try {
    for (const scenario of ordered) {
      if (options.signal?.aborted) {
        complete = false;
        break;
      }
      const tick = () => options.progress?.tick(`${target.spec} ${scenario.name}`);
      /** The scenario is not run: its result and its (empty) fixture entry say why. */
      const notRun = (status: 'skipped' | 'error', reason: string, error?: ErrorInfo) => {
        results.push(bare(scenario, status, reason, error));
        fixture.push({
          name: scenario.name,
          hash: scenario.hash,
          status,
          ...(error !== undefined ? { error } : { reason }),
          observations: [],
        });
        tick();
      };
      if (stopped !== undefined) {
        notRun(
          stopped.status,
          stopped.reason,
          stopped.status === 'error' ? { code: stopped.code, message: stopped.reason } : undefined,
        );
        continue;
      }
      const cannot =
        target.cannotRun(scenario) ??
        (possible !== undefined && possible < scenario.vcpus
          ? `needs ${scenario.vcpus} vCPUs; the guest has ${possible} possible CPUs`
          : undefined);
      if (cannot !== undefined) {
        notRun('skipped', cannot);
        continue;
      }
      const started = Date.now();
      const reference = await options.reference.run(scenario, config);
      let exec: ScenarioExecution;
      try {
        exec = await target.run(scenario, options.signal);
      } catch (error) {
        exec = { observations: [], error: errorInfo(error) };
      }
      const result = evaluateScenario(scenario, reference, exec, {
        policy: options.policy,
        target: target.spec,
        platform,
        ...(options.expectations !== undefined ? { expectations: options.expectations.doc } : {}),
      });
      results.push({ ...result, durationMs: Date.now() - started });
      fixture.push({
        name: scenario.name,
        hash: scenario.hash,
        status: exec.error !== undefined ? 'error' : exec.skipped !== undefined ? 'skipped' : 'ok',
        ...(exec.error !== undefined
          ? { error: { code: exec.error.code, message: exec.error.message } }
          : {}),
        ...(exec.skipped !== undefined ? { reason: exec.skipped } : {}),
        observations: exec.observations.map(fixtureObservation),
      });
      tick();
      const died =
        diedDuring(exec.observations) !== undefined || exec.error?.code === SnpsimErrorCode.GUEST_DIED;
      if (died || exec.error !== undefined) {
        const expected = died && exec.error === undefined && result.status !== 'error';
        const why = await target.recover().catch((error: unknown) => errorInfo(error).message);
        if (why !== undefined) {
          const code = exec.error?.code ?? SnpsimErrorCode.GUEST_DIED;
          stopped = expected
            ? {
                status: 'skipped',
                reason: `not run: the guest VM was stopped by scenario ${scenario.name} (${why})`,
                code,
              }
            : {
                status: 'error',
                reason: `not run: the target failed in scenario ${scenario.name} (${why})`,
                code,
              };
        }
      }
    }
  } finally {
    await target.close().catch(() => undefined);
  }
  // Scenarios a broken target could not run make the run partial (a by-design stop after a
  // destructive scenario does not).
  if (stopped?.status === 'error') complete = false;
  return { report: section(), fixture, complete };
}

/** Runs everything and builds the report (and fixtures when recording). Never throws for a target. */
export async function runDifferential(options: RunOptions): Promise<RunOutcome> {
  const now = options.now ?? (() => new Date());
  const startedAt = now().toISOString();
  const ordered = runOrder(options.scenarios);
  const warnings: string[] = [];
  const names = new Set(options.scenarios.map((s) => s.name));
  options.expectations?.doc.divergences.forEach((d, i) => {
    if (!d.scenario.includes('*') && !names.has(d.scenario)) {
      warnings.push(
        `expectations entry #${i} names scenario '${d.scenario}', which is not among the scenarios run`,
      );
    }
  });
  const sections = await Promise.all(options.targets.map((t) => runTarget(t, options, ordered)));
  options.progress?.done();
  const targets = sections.map((s) => s.report);
  const complete = sections.every((s) => s.complete) && !options.signal?.aborted;
  const exitCode = exitCodeOf(targets);
  const report: Report = {
    format: REPORT_FORMAT,
    version: REPORT_VERSION,
    snpsim: options.snpsimVersion,
    startedAt,
    finishedAt: now().toISOString(),
    complete,
    exitCode: complete ? exitCode : ExitCode.INFRASTRUCTURE,
    policy: options.policy,
    profile: options.profile,
    scenarios: options.scenarios.length,
    ...(options.expectations !== undefined ? { expectations: options.expectations.file } : {}),
    warnings,
    targets,
  };
  const fixtures: Fixture[] = options.record
    ? sections.map((s) => ({
        format: FIXTURE_FORMAT,
        version: FIXTURE_VERSION,
        snpsim: options.snpsimVersion,
        recordedAt: startedAt,
        target: s.report.target,
        platform: s.report.platform,
        scenarios: s.fixture,
      }))
    : [];
  return { report, fixtures };
}
