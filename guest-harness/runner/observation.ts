/**
 * Observations: what a step produced on one target. The guest-observable part (the agent's answer
 * and whether the VM survived) is what the differential runner compares; the model also attaches its
 * internal state (mp_state, RMP bits ...) for experiments, which is never compared.
 */
import { type Static, Type } from '@sinclair/typebox';

/** Internal state of one vCPU of the model after a step. */
export const VcpuState = Type.Object(
  {
    index: Type.Integer({ minimum: 0 }),
    apicId: Type.Integer({ minimum: 0 }),
    mpState: Type.String({ description: 'KVM_MP_STATE_* name' }),
    pvUnhalted: Type.Boolean(),
    vmsaPa: Type.String({ description: 'VMCB VMSA pointer, hex (0xffffffffffffffff = INVALID_PAGE)' }),
    pending: Type.Optional(Type.String({ description: 'pending protected-guest-state update, if any' })),
  },
  { additionalProperties: false },
);
export type VcpuState = Static<typeof VcpuState>;

/** Internal RMP state of one scenario page after a step. */
export const PageState = Type.Object(
  {
    gpa: Type.String(),
    assigned: Type.Boolean(),
    validated: Type.Boolean(),
    vmsa: Type.Boolean(),
    asid: Type.Integer({ minimum: 0 }),
    pageSize: Type.Integer({ minimum: 0, maximum: 1 }),
    immutable: Type.Boolean(),
  },
  { additionalProperties: false },
);
export type PageState = Static<typeof PageState>;

export const ModelState = Type.Object(
  {
    vcpus: Type.Array(VcpuState),
    pages: Type.Record(Type.String(), PageState),
    /** How the VM ended, when it did (e.g. `KVM_EXIT_FAIL_ENTRY vcpu=1 reason=0xffffffff`). */
    stopped: Type.Optional(Type.String()),
    /** Host events during the step (exits, failed updates ...), in order. */
    events: Type.Optional(Type.Array(Type.String())),
  },
  {
    title: 'ModelState',
    additionalProperties: false,
    description: 'model-internal state; never compared with a target',
  },
);
export type ModelState = Static<typeof ModelState>;

export const ObservationKind = Type.Union(
  [Type.Literal('ok'), Type.Literal('err'), Type.Literal('dead'), Type.Literal('not-run')],
  {
    description:
      'ok/err: the agent answered; dead: no answer because the guest VM stopped; not-run: the step was not attempted',
  },
);
export type ObservationKind = Static<typeof ObservationKind>;

export const StepObservation = Type.Object(
  {
    kind: ObservationKind,
    /** Response keys as the agent wrote them (hex register values, decimal counts, tokens). */
    values: Type.Optional(Type.Record(Type.String(), Type.String())),
    code: Type.Optional(Type.String({ description: 'agent error code (err)' })),
    errno: Type.Optional(Type.Integer()),
    vm: Type.Union([Type.Literal('alive'), Type.Literal('dead'), Type.Literal('unknown')], {
      description: 'the guest VM after the step',
    }),
    reason: Type.Optional(Type.String({ description: 'why the step was not run' })),
    model: Type.Optional(ModelState),
  },
  { title: 'StepObservation', additionalProperties: false },
);
export type StepObservation = Static<typeof StepObservation>;

/** Platform details of a target (the agent's hello line plus what the user declared). */
export const Platform = Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]*$' }), Type.String(), {
  title: 'PlatformDetails',
  description:
    'agent hello keys (kernel, module, sev_status, vmpl, cpus, family, model, microcode, policy, profile ...) and declared keys (host_kernel, firmware, qemu ...)',
});
export type Platform = Static<typeof Platform>;

/** Parses an agent value: hex or decimal integers as bigint, anything else undefined. */
export function parseInteger(text: string): bigint | undefined {
  if (/^0x[0-9a-fA-F]{1,16}$/.test(text)) return BigInt(text);
  if (/^-?[0-9]{1,20}$/.test(text)) return BigInt(text);
  return undefined;
}

/** Two agent values are equal when they are the same integer (any base) or the same token. */
export function sameValue(a: string, b: string): boolean {
  if (a === b) return true;
  const x = parseInteger(a);
  const y = parseInteger(b);
  return x !== undefined && y !== undefined && x === y;
}

/** A one-line rendering: `ok sw_exit_info1=0x2 sw_exit_info2=0x5`, `err code=bad-handle`, `dead`. */
export function describe(obs: StepObservation | undefined): string {
  if (obs === undefined) return 'nothing';
  const kv = Object.entries(obs.values ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(' ');
  const vm = obs.vm === 'dead' && obs.kind !== 'dead' ? ' (then the VM stopped)' : '';
  switch (obs.kind) {
    case 'ok':
      return `ok${kv ? ` ${kv}` : ''}${vm}`;
    case 'err':
      return `err code=${obs.code ?? '?'}${obs.errno !== undefined ? ` errno=${obs.errno}` : ''}${kv ? ` ${kv}` : ''}${vm}`;
    case 'dead':
      return 'no answer: the guest VM stopped';
    case 'not-run':
      return `not run${obs.reason ? ` (${obs.reason})` : ''}`;
  }
}

/** Formats a 64-bit value the way the agent does: `0x` + lower-case hex, no leading zeros. */
export function hex(value: bigint | number): string {
  return `0x${BigInt(value).toString(16)}`;
}
