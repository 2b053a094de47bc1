/**
 * Step -> agent requests. Every guest step becomes the protocol requests the guest kernel module's
 * agent executes (guest-harness/agent/PROTOCOL.md, version 1), so a step has one meaning on every
 * target. Values are typed here (bigint for 64-bit register values); the protocol codec formats them.
 */
import { RMPADJUST_VMSA } from '../../psp-firmware/index.js';
import type { AgentRequest, GhcbValidField, VmsaField } from '../protocol/index.js';
import type { LoadedScenario } from './loader.js';
import {
  AP_REQUESTS,
  type ConcurrentRequest,
  MP_STATES,
  type Poke,
  type Step,
  type StepOf,
  type U64,
  VALID_FIELDS,
} from './schema.js';

/** RMPADJUST RDX target VMPL1 (bits 7:0), no permissions. // [LX] arch/x86/coco/sev/core.c snp_set_vmsa() */
const RMPADJUST_TARGET_VMPL1 = 0x1n;
/** RMPADJUST RDX used by Linux: target VMPL1 | RMPADJUST_VMSA_PAGE_BIT (0x10001). // [LX] snp_set_vmsa() */
export const RMPADJUST_RDX_SET_VMSA = RMPADJUST_TARGET_VMPL1 | RMPADJUST_VMSA;
/** Target VMPL1, no permissions, VMSA bit clear. // [LX] snp_cleanup_vmsa() */
export const RMPADJUST_RDX_CLEAR_VMSA = RMPADJUST_TARGET_VMPL1;
/** Default wait for the AP stub marker, milliseconds. */
export const DEFAULT_MARKER_TIMEOUT_MS = 500;

/** A scenario's 64-bit value (an integer, or a `0x…` string the schema checked) as a bigint. */
export function u64(value: U64): bigint {
  return BigInt(value);
}

/** The request code of an ap-creation step (SW_EXITINFO1[15:0] in the protocol). */
export function apRequestCode(request: StepOf<'ap-creation'>['request']): number {
  return typeof request === 'number' ? request : AP_REQUESTS[request];
}

/**
 * Default GHCB valid bits: all four, but RAX not for DESTROY (PROTOCOL.md; the agent's
 * snpsim_proto.c applies the same rule to every request code, so request 3+ gets RAX too).
 */
export function defaultValid(code: number): readonly GhcbValidField[] {
  return code === AP_REQUESTS.destroy ? VALID_FIELDS.filter((f) => f !== 'rax') : VALID_FIELDS;
}

type ApFields = Omit<StepOf<'ap-creation'>, 'op' | 'id' | 'note' | 'expect' | 'expectPolicy'>;
type ApCreationRequest = Extract<AgentRequest, { verb: 'ap-creation' }>;

/** The AP Creation request of an `ap-creation` step or of one member of a `concurrent` group. */
export function apCreationRequest(
  step: ApFields | ConcurrentRequest,
  pages: ReadonlyMap<string, number>,
): ApCreationRequest {
  return {
    verb: 'ap-creation',
    request: apRequestCode(step.request),
    apic: step.apic,
    vmpl: step.vmpl ?? 0,
    ...(step.page !== undefined
      ? { h: handle(pages, step.page) }
      : { gpa: step.gpa === undefined ? 0n : u64(step.gpa) }),
    ...(step.exitCode !== undefined ? { exitCode: u64(step.exitCode) } : {}),
    ...(step.info1 !== undefined ? { info1: u64(step.info1) } : {}),
    ...(step.info2 !== undefined ? { info2: u64(step.info2) } : {}),
    ...(step.rax !== undefined ? { rax: u64(step.rax) } : {}),
    ...(step.valid !== undefined ? { valid: VALID_FIELDS.filter((f) => step.valid?.includes(f)) } : {}),
  };
}

function handle(pages: ReadonlyMap<string, number>, page: string): number {
  const h = pages.get(page);
  if (h === undefined) throw new Error(`page '${page}' has no handle (the loader should have rejected this)`);
  return h;
}

function setRequests(h: number, fields: Partial<Record<VmsaField, U64>> | undefined): AgentRequest[] {
  return Object.entries(fields ?? {})
    .filter((e): e is [VmsaField, U64] => e[1] !== undefined)
    .map(([field, value]) => ({ verb: 'vmsa-set', h, field, value: u64(value) }));
}

function pokeRequests(h: number, pokes: readonly Poke[] | undefined): AgentRequest[] {
  return (pokes ?? []).map((p) => ({
    verb: 'vmsa-poke',
    h,
    offset: p.offset,
    width: p.width,
    value: u64(p.value),
  }));
}

/**
 * The protocol requests of one step, in order. Model-only steps (`host-run`, `concurrent`) have no
 * agent verb: they return an empty list and the model target executes the step itself.
 */
export function stepRequests(step: Step, pages: ReadonlyMap<string, number>): AgentRequest[] {
  switch (step.op) {
    case 'hv-features':
    case 'sev-info':
      return [{ verb: step.op }];
    case 'vmsa-alloc':
      return [
        {
          verb: 'vmsa-alloc',
          h: handle(pages, step.page),
          placement: step.placement ?? 'split',
          memory: step.memory ?? 'private',
        },
      ];
    case 'vmsa-init': {
      const h = handle(pages, step.page);
      return [
        { verb: 'vmsa-init', h, template: step.template ?? 'linux', stub: step.stub === false ? 0 : 1 },
        ...setRequests(h, step.fields),
        ...pokeRequests(h, step.pokes),
      ];
    }
    case 'vmsa-set':
      return setRequests(handle(pages, step.page), step.fields);
    case 'vmsa-poke':
      return pokeRequests(handle(pages, step.page), step.pokes);
    case 'rmpadjust':
      return [
        {
          verb: 'rmpadjust',
          h: handle(pages, step.page),
          rdx:
            step.rdx !== undefined
              ? u64(step.rdx)
              : step.vmsa
                ? RMPADJUST_RDX_SET_VMSA
                : RMPADJUST_RDX_CLEAR_VMSA,
          size: step.size ?? 0,
        },
      ];
    case 'pvalidate':
      return [
        {
          verb: 'pvalidate',
          h: handle(pages, step.page),
          validate: step.validate === false ? 0 : 1,
          size: step.size ?? 0,
        },
      ];
    case 'ap-creation':
      return [apCreationRequest(step, pages)];
    case 'cpu-offline':
    case 'cpu-online':
      return [{ verb: step.op, cpu: step.cpu }];
    case 'init-sipi':
      return [{ verb: 'init-sipi', apic: step.apic, vector: step.vector ?? 0 }];
    case 'pv-kick':
      return [{ verb: 'pv-kick', apic: step.apic }];
    case 'wait-marker':
      return [
        {
          verb: 'wait-marker',
          h: handle(pages, step.page),
          timeoutMs: step.timeoutMs ?? DEFAULT_MARKER_TIMEOUT_MS,
        },
      ];
    case 'vmsa-free':
      return [{ verb: 'vmsa-free', h: handle(pages, step.page) }];
    case 'host-set-mp-state':
      return [
        {
          verb: 'host-set-mp-state',
          vcpu: step.vcpu,
          state: typeof step.state === 'number' ? step.state : MP_STATES[step.state],
        },
      ];
    case 'host-run':
    case 'concurrent':
      return [];
  }
}

/** Every step's requests; index i holds step i's requests. */
export function scenarioRequests(scenario: LoadedScenario): AgentRequest[][] {
  return scenario.steps.map((s) => stepRequests(s, scenario.pages));
}
