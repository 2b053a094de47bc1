/**
 * Per-step expectations written in scenario files (`expect`, `expectPolicy`): what the references
 * predict for a step. The runner checks them against the model (reference) run, so the corpus pins
 * the model to the documented behaviour of each KVM version.
 */
import type { Step, StepExpect } from '../scenario/schema.js';
import { describe, type StepObservation, sameValue } from './observation.js';

/** The expectation that applies to `step` under host policy `policy` (policy-specific first). */
export function expectationFor(step: Step, policy: string): StepExpect | undefined {
  return step.expectPolicy?.[policy] ?? step.expect;
}

/** Problems of one observation against one expectation (empty when it holds). */
export function checkExpect(expect: StepExpect, obs: StepObservation): string[] {
  const problems: string[] = [];
  if (obs.kind === 'not-run')
    return [`expected an answer, but the step did not run (${obs.reason ?? 'no reason'})`];
  const outcome = expect.outcome ?? 'ok';
  const lost = obs.kind === 'dead' && expect.vm === 'dead';
  if (!lost && obs.kind !== outcome) {
    problems.push(
      `expected ${outcome === 'ok' ? 'an ok answer' : `err code=${expect.code ?? '*'}`}, got ${describe(obs)}`,
    );
  } else if (!lost && outcome === 'err' && expect.code !== undefined && obs.code !== expect.code) {
    problems.push(`expected err code=${expect.code}, got ${describe(obs)}`);
  }
  if (!lost && obs.kind === 'ok') {
    for (const [key, want] of Object.entries(expect.values ?? {})) {
      const got = obs.values?.[key];
      if (got === undefined) problems.push(`expected ${key}=${want}, but the answer has no ${key}`);
      else if (!sameValue(String(want), got)) problems.push(`expected ${key}=${want}, got ${key}=${got}`);
    }
  }
  if (expect.vm !== undefined && obs.vm !== 'unknown' && obs.vm !== expect.vm) {
    problems.push(`expected the VM ${expect.vm} after the step, but it is ${obs.vm}`);
  }
  const m = expect.model;
  if (m !== undefined) {
    const state = obs.model;
    if (state === undefined) {
      problems.push('expected model state, but the target reports none');
      return problems;
    }
    for (const [vcpu, want] of Object.entries(m.mpState ?? {})) {
      const got = state.vcpus.find((v) => v.index === Number(vcpu))?.mpState;
      if (got !== want) problems.push(`expected vCPU ${vcpu} mp_state ${want}, got ${got ?? 'no such vCPU'}`);
    }
    for (const [vcpu, want] of Object.entries(m.pvUnhalted ?? {})) {
      const got = state.vcpus.find((v) => v.index === Number(vcpu))?.pvUnhalted;
      if (got !== want)
        problems.push(`expected vCPU ${vcpu} pv_unhalted ${want}, got ${got ?? 'no such vCPU'}`);
    }
    for (const [page, want] of Object.entries(m.vmsaBit ?? {})) {
      const got = state.pages[page]?.vmsa;
      if (got !== want)
        problems.push(
          `expected page '${page}' RMP VMSA bit ${want ? 1 : 0}, got ${got === undefined ? 'no entry' : got ? 1 : 0}`,
        );
    }
    for (const [page, want] of Object.entries(m.validated ?? {})) {
      const got = state.pages[page]?.validated;
      if (got !== want)
        problems.push(
          `expected page '${page}' RMP Validated ${want ? 1 : 0}, got ${got === undefined ? 'no entry' : got ? 1 : 0}`,
        );
    }
  }
  return problems;
}

export interface ExpectationFailure {
  readonly step: number;
  readonly label: string;
  readonly problem: string;
}

/** Checks every step's expectation under `policy`; returns the failures in step order. */
export function checkScenarioExpectations(
  steps: readonly Step[],
  labels: readonly string[],
  observations: readonly StepObservation[],
  policy: string,
): ExpectationFailure[] {
  const out: ExpectationFailure[] = [];
  // Once an expectation said the VM dies, the later steps cannot run: their expectations (written
  // for the policies under which the VM survives) are not checked.
  let deathExpected = false;
  steps.forEach((step, i) => {
    const expect = expectationFor(step, policy);
    const obs = observations[i];
    if (deathExpected || expect === undefined || obs === undefined) return;
    for (const problem of checkExpect(expect, obs)) {
      out.push({ step: i + 1, label: labels[i] ?? String(i + 1), problem });
    }
    if (expect.vm === 'dead') deathExpected = true;
  });
  return out;
}
