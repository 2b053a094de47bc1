/**
 * The verb table of protocol version 1 (guest-harness/agent/PROTOCOL.md "Verbs"): request keys,
 * response keys and the cross-field checks, as frozen data. Ranges are the widths of the hardware or
 * KVM field each key feeds.
 */
import type { FieldKind, FieldSpec } from './fields.js';
import type { AgentVerb } from './types.js';
import { U8_MAX, U16_MAX, U32_MAX, U64_MAX } from './values.js';

const f = (key: string, prop: string, type: FieldKind, optional = false): FieldSpec =>
  Object.freeze({ key, prop, type, optional });

const BIT: FieldKind = { kind: 'dec', max: 1, oneOf: [0, 1] };
const U32: FieldKind = { kind: 'dec', max: U32_MAX };
const HEX64: FieldKind = { kind: 'hex', max: U64_MAX };
/** PROTOCOL.md: handles `h=<0..63>`. */
const HANDLE = f('h', 'h', { kind: 'dec', max: 63 });
/** Linux errno values are 1..4095 (MAX_ERRNO, [LX] include/linux/err.h). */
export const ERRNO_MAX = 4095;

export const VMSA_FIELDS = Object.freeze([
  'sev_features',
  'vmpl',
  'cpl',
  'efer',
  'cr0',
  'cr3',
  'cr4',
  'dr6',
  'dr7',
  'rflags',
  'rip',
  'rsp',
  'rax',
  'g_pat',
  'xcr0',
  'mxcsr',
  'x87_fcw',
  'x87_ftw',
  'cs_selector',
  'cs_attrib',
  'cs_limit',
  'cs_base',
] as const);

export const GHCB_VALID_FIELDS = Object.freeze(['exit_code', 'info1', 'info2', 'rax'] as const);

/** Fields of the hello line and of the `hello` verb's response (PROTOCOL.md "Platform details"). */
export const HELLO_FIELDS: readonly FieldSpec[] = Object.freeze([
  f('protocol', 'protocol', { kind: 'dec', max: U32_MAX }),
  f('agent', 'agent', { kind: 'token' }),
  f('backend', 'backend', { kind: 'enum', values: ['module', 'sim'] }),
  f('kernel', 'kernel', { kind: 'release' }),
  f('module', 'module', { kind: 'token' }),
  // MSR 0xC0010131 SEV_STATUS ([LX] arch/x86/include/asm/msr-index.h MSR_AMD64_SEV).
  f('sev_status', 'sevStatus', HEX64, true),
  // VMPLs 0..3 ([APM] vol. 2 15.36.7).
  f('vmpl', 'vmpl', { kind: 'dec', max: 3 }, true),
  f('cpus', 'cpus', U32, true),
  f('possible_cpus', 'possibleCpus', U32, true),
  // CPUID Fn0000_0001_EAX: family = BaseFamily + ExtFamily <= 0xF + 0xFF; model = ExtModel:BaseModel;
  // stepping 4 bits ([APM] vol. 3 E.3.2).
  f('family', 'family', { kind: 'dec', max: 0x10e }, true),
  f('model', 'model', { kind: 'dec', max: U8_MAX }, true),
  f('stepping', 'stepping', { kind: 'dec', max: 0xf }, true),
  // Microcode patch level: 32 bits (MSR 0x8B PATCH_LEVEL).
  f('microcode', 'microcode', { kind: 'hex', max: BigInt(U32_MAX) }, true),
  f('policy', 'policy', { kind: 'token' }, true),
  f('profile', 'profile', { kind: 'token' }, true),
  f('host_steps', 'hostSteps', BIT, true),
]);

/** Platform-detail keys a `backend=module` hello must carry (sev_status/vmpl come from the module). */
export const MODULE_BACKEND_REQUIRED = Object.freeze([
  'cpus',
  'possible_cpus',
  'family',
  'model',
  'stepping',
  'microcode',
]);

export interface VerbSpec {
  readonly verb: AgentVerb;
  readonly request: readonly FieldSpec[];
  readonly response: readonly FieldSpec[];
  /** Cross-field rule on a request whose fields each passed; returns the problem. */
  readonly check?: (request: Readonly<Record<string, unknown>>) => string | undefined;
}

const spec = (
  verb: AgentVerb,
  request: readonly FieldSpec[],
  response: readonly FieldSpec[],
  check?: VerbSpec['check'],
): VerbSpec =>
  Object.freeze({ verb, request: Object.freeze(request), response: Object.freeze(response), check });

function checkPoke(r: Readonly<Record<string, unknown>>): string | undefined {
  const offset = r.offset as number;
  const width = r.width as number;
  const value = r.value as bigint;
  if (offset + width > 0x1000) return `offset ${offset} + width ${width} runs past the 4 KiB VMSA page`;
  if (value >> BigInt(8 * width) !== 0n)
    return `value 0x${value.toString(16)} does not fit in ${width} byte(s)`;
  return undefined;
}

function checkApCreation(r: Readonly<Record<string, unknown>>): string | undefined {
  const hasH = r.h !== undefined;
  const hasGpa = r.gpa !== undefined;
  if (hasH === hasGpa) return 'exactly one of h= and gpa= is required';
  return undefined;
}

export const VERBS: Readonly<Record<AgentVerb, VerbSpec>> = Object.freeze({
  hello: spec('hello', [], HELLO_FIELDS),
  // MSR protocol 0x080/0x081: features = GHCBData[63:12], 52 bits ([LX] sev-common.h GHCB_MSR_HV_FT_MASK).
  'hv-features': spec(
    'hv-features',
    [],
    [f('msr', 'msr', HEX64), f('features', 'features', { kind: 'hex', max: (1n << 52n) - 1n })],
  ),
  // MSR protocol 0x002/0x001: [63:48] max, [47:32] min, [31:24] C-bit ([LX] sev-common.h GHCB_MSR_SEV_INFO).
  'sev-info': spec(
    'sev-info',
    [],
    [
      f('msr', 'msr', HEX64),
      f('max', 'max', { kind: 'dec', max: U16_MAX }),
      f('min', 'min', { kind: 'dec', max: U16_MAX }),
      f('cbit', 'cbit', { kind: 'dec', max: U8_MAX }),
    ],
  ),
  'vmsa-alloc': spec(
    'vmsa-alloc',
    [
      HANDLE,
      f('placement', 'placement', { kind: 'enum', values: ['split', '2m-aligned'] }),
      f('memory', 'memory', { kind: 'enum', values: ['private', 'shared', 'unvalidated'] }),
    ],
    [f('gpa', 'gpa', HEX64)],
  ),
  'vmsa-init': spec(
    'vmsa-init',
    [
      HANDLE,
      f('template', 'template', { kind: 'enum', values: ['linux', 'ovmf', 'zero'] }),
      f('stub', 'stub', BIT),
    ],
    [f('sev_features', 'sevFeatures', HEX64)],
  ),
  'vmsa-set': spec(
    'vmsa-set',
    [HANDLE, f('field', 'field', { kind: 'enum', values: VMSA_FIELDS }), f('value', 'value', HEX64)],
    [],
  ),
  'vmsa-poke': spec(
    'vmsa-poke',
    [
      HANDLE,
      f('offset', 'offset', { kind: 'hexnum', max: 0xfff }),
      f('width', 'width', { kind: 'dec', max: 8, oneOf: [1, 2, 4, 8] }),
      f('value', 'value', HEX64),
    ],
    [],
    checkPoke,
  ),
  // RMPADJUST: RDX = attributes, RCX = page size 0 (4K) / 1 (2M) ([APM] vol. 3 RMPADJUST). EAX = return code.
  rmpadjust: spec(
    'rmpadjust',
    [HANDLE, f('rdx', 'rdx', HEX64), f('size', 'size', BIT)],
    [f('eax', 'eax', U32)],
  ),
  // PVALIDATE: RCX = page size, RDX = validate; EAX = return code, rFLAGS.CF ([APM] vol. 3 PVALIDATE).
  pvalidate: spec(
    'pvalidate',
    [HANDLE, f('validate', 'validate', BIT), f('size', 'size', BIT)],
    [f('eax', 'eax', U32), f('cf', 'cf', BIT)],
  ),
  // SW_EXITINFO1 = APIC ID [63:32] | VMPL [19:16] | request [15:0] ([LX] arch/x86/coco/sev/core.c
  // wakeup_cpu_via_vmgexit; [LX] arch/x86/include/uapi/asm/svm.h SVM_VMGEXIT_AP_*).
  'ap-creation': spec(
    'ap-creation',
    [
      f('request', 'request', { kind: 'dec', max: U16_MAX }),
      f('apic', 'apic', U32),
      f('vmpl', 'vmpl', { kind: 'dec', max: 0xf }),
      f('h', 'h', { kind: 'dec', max: 63 }, true),
      f('gpa', 'gpa', HEX64, true),
      f('exit_code', 'exitCode', HEX64, true),
      f('info1', 'info1', HEX64, true),
      f('info2', 'info2', HEX64, true),
      f('rax', 'rax', HEX64, true),
      f('valid', 'valid', { kind: 'list', values: GHCB_VALID_FIELDS }, true),
    ],
    [f('sw_exit_info1', 'swExitInfo1', HEX64), f('sw_exit_info2', 'swExitInfo2', HEX64)],
    checkApCreation,
  ),
  'cpu-offline': spec('cpu-offline', [f('cpu', 'cpu', U32)], [f('apic', 'apic', U32)]),
  'cpu-online': spec('cpu-online', [f('cpu', 'cpu', U32)], [f('apic', 'apic', U32)]),
  // SIPI vector: 8 bits ([APM] vol. 2 16.5 "Startup IPI").
  'init-sipi': spec(
    'init-sipi',
    [f('apic', 'apic', U32), f('vector', 'vector', { kind: 'hexnum', max: 0xff })],
    [],
  ),
  // KVM_HC_KICK_CPU return: a long; kept within JavaScript's safe integers.
  'pv-kick': spec(
    'pv-kick',
    [f('apic', 'apic', U32)],
    [f('ret', 'ret', { kind: 'sdec', min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER })],
  ),
  // PROTOCOL.md: timeout_ms <= 10000.
  'wait-marker': spec(
    'wait-marker',
    [HANDLE, f('timeout_ms', 'timeoutMs', { kind: 'dec', max: 10_000 })],
    [f('ran', 'ran', BIT)],
  ),
  'vmsa-free': spec('vmsa-free', [HANDLE], [f('eax', 'eax', U32), f('freed', 'freed', BIT)]),
  // KVM_SET_MP_STATE: state is a __u32 (struct kvm_mp_state, [LX] include/uapi/linux/kvm.h); ret 0 or -errno.
  'host-set-mp-state': spec(
    'host-set-mp-state',
    [f('vcpu', 'vcpu', U32), f('state', 'state', U32)],
    [f('ret', 'ret', { kind: 'sdec', min: -ERRNO_MAX, max: 0 })],
  ),
});

export const AGENT_VERBS: readonly AgentVerb[] = Object.freeze(Object.keys(VERBS) as AgentVerb[]);

export function isAgentVerb(text: string): text is AgentVerb {
  return Object.hasOwn(VERBS, text);
}
