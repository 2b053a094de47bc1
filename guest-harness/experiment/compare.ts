/**
 * Comparing two runs of one scenario (two configurations of the model, or the model and a target):
 * the guest-observable observations step by step with the runner's own diff, and on request the
 * model's internal state too (mp_state, pv_unhalted, VMSA pointer, RMP bits of the scenario's pages).
 */
import { diffScenario, type ScenarioExecution, type StepObservation } from '../runner/index.js';
import type { LoadedScenario } from '../scenario/index.js';

/** What is compared: what a guest can see, or that plus the model's internal state. */
export type Compared = 'guest' | 'model';

/** One difference between side A and side B at a step. */
export interface Difference {
  /** 1-based step number. */
  readonly step: number;
  readonly label: string;
  readonly op: string;
  /** `answer`, `vm`, a response key, `error`, or `model:<vcpuN|page>.<field>` for internal state. */
  readonly what: string;
  readonly a: string;
  readonly b: string;
}

type ModelState = NonNullable<StepObservation['model']>;

function modelDifferences(a: ModelState | undefined, b: ModelState | undefined): [string, string, string][] {
  if (a === undefined || b === undefined) return [];
  const out: [string, string, string][] = [];
  const cmp = (what: string, x: unknown, y: unknown) => {
    if (x !== y) out.push([`model:${what}`, String(x ?? '(none)'), String(y ?? '(none)')]);
  };
  const count = Math.max(a.vcpus.length, b.vcpus.length);
  for (let i = 0; i < count; i++) {
    const x = a.vcpus[i];
    const y = b.vcpus[i];
    cmp(`vcpu${i}.mpState`, x?.mpState, y?.mpState);
    cmp(`vcpu${i}.pvUnhalted`, x?.pvUnhalted, y?.pvUnhalted);
    cmp(`vcpu${i}.vmsaPa`, x?.vmsaPa, y?.vmsaPa);
    cmp(`vcpu${i}.pending`, x?.pending, y?.pending);
  }
  for (const page of new Set([...Object.keys(a.pages), ...Object.keys(b.pages)])) {
    const x = a.pages[page];
    const y = b.pages[page];
    for (const field of ['assigned', 'validated', 'vmsa', 'asid', 'pageSize', 'immutable'] as const) {
      cmp(`${page}.${field}`, x?.[field], y?.[field]);
    }
  }
  cmp('stopped', a.stopped, b.stopped);
  return out;
}

/** Every difference between two runs of `scenario`, in step order (empty when they agree). */
export function compareExecutions(
  scenario: LoadedScenario,
  a: ScenarioExecution,
  b: ScenarioExecution,
  compared: Compared = 'guest',
): Difference[] {
  const ops = scenario.steps.map((s) => s.op);
  const out: Difference[] = diffScenario(scenario.labels, ops, a.observations, b.observations).map((d) => ({
    step: d.step,
    label: d.label,
    op: d.op,
    what: d.what,
    a: d.model,
    b: d.target,
  }));
  if (compared === 'model') {
    const steps = Math.min(a.observations.length, b.observations.length);
    for (let i = 0; i < steps; i++) {
      for (const [what, x, y] of modelDifferences(a.observations[i]?.model, b.observations[i]?.model)) {
        out.push({ step: i + 1, label: scenario.labels[i] ?? String(i + 1), op: ops[i]!, what, a: x, b: y });
      }
    }
    out.sort((x, y) => x.step - y.step);
  }
  if (a.error !== undefined || b.error !== undefined) {
    const at = Math.min(
      a.error === undefined ? Number.POSITIVE_INFINITY : a.observations.length,
      b.error === undefined ? Number.POSITIVE_INFINITY : b.observations.length,
    );
    const step = Math.min(at + 1, scenario.steps.length);
    out.push({
      step,
      label: scenario.labels[step - 1] ?? String(step),
      op: ops[step - 1] ?? 'none',
      what: 'error',
      a: a.error === undefined ? 'no error' : `${a.error.code}: ${a.error.message}`,
      b: b.error === undefined ? 'no error' : `${b.error.code}: ${b.error.message}`,
    });
  }
  return out;
}

/** `step 5 (create) sw_exit_info1: 0x0 | 0x2`, with `(+N more)` when there are others. */
export function describeDifference(
  d: Difference,
  others = 0,
  names: readonly [string, string] = ['A', 'B'],
): string {
  const more = others > 0 ? ` (+${others} more)` : '';
  return `step ${d.step} (${d.label}) ${d.what}: ${names[0]} ${d.a} | ${names[1]} ${d.b}${more}`;
}
