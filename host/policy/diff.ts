/** Knob-by-knob differences between two host policies. */
import { formatKnobValue, type HostPolicy, KNOB_NAMES, type KnobName } from './knobs.js';

export interface KnobDifference {
  readonly knob: KnobName;
  readonly a: HostPolicy[KnobName];
  readonly b: HostPolicy[KnobName];
}

/** Every knob whose value differs, in display order. */
export function diffPolicies(a: HostPolicy, b: HostPolicy): readonly KnobDifference[] {
  const out: KnobDifference[] = [];
  for (const knob of KNOB_NAMES) {
    if (a[knob] !== b[knob]) out.push({ knob, a: a[knob], b: b[knob] });
  }
  return out;
}

/** The differences as display strings (bigints in hex). */
export function formatDifference(d: KnobDifference): { knob: string; a: string; b: string } {
  return { knob: d.knob, a: formatKnobValue(d.a), b: formatKnobValue(d.b) };
}
