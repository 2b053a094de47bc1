/**
 * The differential comparison: the guest-observable part of each step on the model (reference)
 * against the target, step by step. Only keys the protocol defines for a verb are compared (unknown
 * response keys are ignored, PROTOCOL.md); addresses the guest allocates differ between machines, so
 * for them only the property the scenario controls (4 KiB / 2 MiB alignment) is compared.
 */
import type { StepOp } from '../scenario/schema.js';
import { describe, parseInteger, type StepObservation, sameValue } from './observation.js';

/** Response keys the protocol defines per step op (PROTOCOL.md verb table). */
export const COMPARED_KEYS: Readonly<Record<StepOp, readonly string[]>> = Object.freeze({
  'hv-features': ['msr', 'features'],
  'sev-info': ['msr', 'max', 'min', 'cbit'],
  'vmsa-alloc': ['gpa'],
  'vmsa-init': ['sev_features'],
  'vmsa-set': [],
  'vmsa-poke': [],
  rmpadjust: ['eax'],
  pvalidate: ['eax', 'cf'],
  'ap-creation': ['sw_exit_info1', 'sw_exit_info2'],
  'cpu-offline': ['apic'],
  'cpu-online': ['apic'],
  'init-sipi': [],
  'pv-kick': ['ret'],
  'wait-marker': ['ran'],
  'vmsa-free': ['eax', 'freed'],
  'host-set-mp-state': ['ret'],
  'host-run': ['exit', 'mp_state'],
  concurrent: [],
});

/** Keys whose value is a machine-specific guest physical address. */
const ADDRESS_KEYS: ReadonlySet<string> = new Set(['gpa']);

/** What an address key is compared by: its alignment class. */
export function alignmentClass(text: string): string {
  const v = parseInteger(text);
  if (v === undefined) return text;
  if ((v & 0xfffn) !== 0n) return 'unaligned';
  return (v & 0x1fffffn) === 0n ? '2m-aligned' : '4k-aligned';
}

export interface StepDifference {
  /** 1-based step number. */
  readonly step: number;
  readonly label: string;
  readonly op: StepOp;
  /** `answer` (agent response), `vm` (VM alive after the step), or `<key>` of the answer. */
  readonly what: string;
  readonly model: string;
  readonly target: string;
}

function keysOf(op: StepOp, obs: StepObservation): string[] {
  if (op === 'concurrent') return Object.keys(obs.values ?? {});
  return [...COMPARED_KEYS[op]];
}

/**
 * Differences of one step (empty when equal). A step during which the model's VM stopped may have
 * lost its answer on a real guest: an answer on the model and `dead` on the target are equal there.
 */
export function diffStep(
  step: number,
  label: string,
  op: StepOp,
  model: StepObservation,
  target: StepObservation,
): StepDifference[] {
  const out: StepDifference[] = [];
  const push = (what: string, m: string, t: string) =>
    out.push({ step, label, op, what, model: m, target: t });
  if (model.kind === 'not-run' || target.kind === 'not-run') return out;
  const lostAnswer = model.kind !== 'dead' && model.vm === 'dead' && target.kind === 'dead';
  if (!lostAnswer) {
    if (model.kind !== target.kind) {
      push('answer', describe(model), describe(target));
    } else if (model.kind === 'err') {
      // The module's refusal reason (reason=) is part of the answer both sides give.
      if (
        model.code !== target.code ||
        model.errno !== target.errno ||
        model.values?.reason !== target.values?.reason
      ) {
        push('answer', describe(model), describe(target));
      }
    } else if (model.kind === 'ok') {
      for (const key of keysOf(op, model)) {
        const m = model.values?.[key];
        const t = target.values?.[key];
        if (m === undefined && t === undefined) continue;
        if (m === undefined || t === undefined) {
          push(key, m ?? '(absent)', t ?? '(absent)');
        } else if (ADDRESS_KEYS.has(key)) {
          const mc = alignmentClass(m);
          const tc = alignmentClass(t);
          if (mc !== tc) push(key, `${m} (${mc})`, `${t} (${tc})`);
        } else if (!sameValue(m, t)) {
          push(key, m, t);
        }
      }
    }
  }
  if (model.vm !== 'unknown' && target.vm !== 'unknown' && model.vm !== target.vm) {
    push('vm', `VM ${model.vm} after the step`, `VM ${target.vm} after the step`);
  }
  return out;
}

/** Every difference of a scenario, in step order. */
export function diffScenario(
  labels: readonly string[],
  ops: readonly StepOp[],
  model: readonly StepObservation[],
  target: readonly StepObservation[],
): StepDifference[] {
  const out: StepDifference[] = [];
  for (let i = 0; i < ops.length; i++) {
    const m = model[i];
    const t = target[i];
    if (m === undefined || t === undefined) continue;
    out.push(...diffStep(i + 1, labels[i] ?? String(i + 1), ops[i]!, m, t));
  }
  return out;
}
