/**
 * From agent replies to step observations. A step may be several requests (vmsa-init plus its
 * vmsa-set / vmsa-poke overrides): the step observes the first error, or else the merged keys of its
 * answers. Values are kept exactly as the wire writes them (encodeResponse), so reports, fixtures and
 * scenario expectations use the protocol's own spelling (`sw_exit_info1=0x2`).
 */
import { type AgentReply, type AgentRequest, encodeRequest, encodeResponse } from '../protocol/index.js';
import type { StepObservation } from './observation.js';

/** The wire keys of a reply: `{ code, errno, ... }` for err, the response keys for ok. */
export function replyValues(reply: AgentReply): Record<string, string> {
  const line = encodeResponse(0, reply);
  const out: Record<string, string> = {};
  for (const pair of line.split(' ').slice(2)) {
    const eq = pair.indexOf('=');
    if (eq > 0) out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

/** A request as its wire line without the seq (`ap-creation request=1 apic=1 vmpl=0 h=0`). */
export function requestText(request: AgentRequest): string {
  return encodeRequest(0, request).slice(2);
}

/**
 * The observation of one step from its replies. `replies` has one entry per request, `undefined`
 * where no answer came (the guest died, or the run broke before it).
 */
export function stepObservation(
  replies: readonly (AgentReply | undefined)[],
  vmAfter: StepObservation['vm'],
  whyMissing: 'dead' | 'not-run',
  reason?: string,
): StepObservation {
  const values: Record<string, string> = {};
  for (const reply of replies) {
    if (reply === undefined) {
      return whyMissing === 'dead'
        ? { kind: 'dead', vm: 'dead' }
        : { kind: 'not-run', vm: vmAfter, ...(reason !== undefined ? { reason } : {}) };
    }
    const kv = replyValues(reply);
    if (reply.status === 'err') {
      const { code, errno, ...rest } = kv;
      return {
        kind: 'err',
        code: code ?? reply.code,
        ...(errno !== undefined ? { errno: Number(errno) } : {}),
        ...(Object.keys(rest).length > 0 ? { values: rest } : {}),
        vm: vmAfter,
      };
    }
    Object.assign(values, kv);
  }
  return { kind: 'ok', values, vm: vmAfter };
}

/**
 * Observations of a whole batch from the replies in request order (`steps[i]` = step i's requests).
 * `died`: the guest stopped (no answer after the last reply); `aliveAtEnd`: a liveness probe after
 * the last step was answered. The VM is alive after a step if any later request was answered; when
 * the first unanswered request belongs to a later step the death cannot be placed (unknown).
 */
export function batchObservations(
  steps: readonly (readonly AgentRequest[])[],
  replies: readonly AgentReply[],
  outcome: { died: boolean; aliveAtEnd: boolean; brokeReason?: string },
): StepObservation[] {
  const out: StepObservation[] = [];
  let next = 0;
  const total = steps.reduce((n, s) => n + s.length, 0);
  for (const requests of steps) {
    const mine = requests.map((_, j) => replies[next + j]);
    next += requests.length;
    // Alive if anything later was answered. If the guest died and the next unanswered request is
    // another step's, it may have died during that step or right after this one's answer: unknown.
    // If only the liveness probe followed, it died after this step.
    const answeredLater = replies.length > next || (next >= total && outcome.aliveAtEnd);
    const vm: StepObservation['vm'] = answeredLater
      ? 'alive'
      : outcome.died && next >= total
        ? 'dead'
        : 'unknown';
    out.push(stepObservation(mine, vm, outcome.died ? 'dead' : 'not-run', outcome.brokeReason));
  }
  return out;
}
