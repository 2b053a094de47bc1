/**
 * vCPU model → signature, the CPUID Fn0000_0001_EAX value QEMU puts in the initial RDX of every
 * vCPU (and therefore in the measured VMSA). Table: the AMD EPYC models of QEMU's builtin_x86_defs
 * as listed by virtee/sev-snp-measure `vcpu_types.py` (commit 8f2b337e).
 */
import { fail, MeasureErrorCode, type MeasureResult, ok } from './result.js';

/**
 * CPUID Fn0000_0001_EAX from family/model/stepping [AMD CPUID spec #25481, Fn0000_0001_EAX]:
 * BaseFamily[11:8] = min(family, 0xF), ExtFamily[27:20] = family − 0xF when family > 0xF,
 * BaseModel[7:4] = model[3:0], ExtModel[19:16] = model[7:4], Stepping[3:0].
 */
export function cpuSignature(family: number, model: number, stepping: number): MeasureResult<number> {
  const bad = (name: string, value: number, max: number) =>
    fail<number>(MeasureErrorCode.INVALID_PARAMETER, `vCPU ${name} ${value} is outside 0..${max}`);
  if (!Number.isInteger(family) || family < 0 || family > 0xf + 0xff)
    return bad('family', family, 0xf + 0xff);
  if (!Number.isInteger(model) || model < 0 || model > 0xff) return bad('model', model, 0xff);
  if (!Number.isInteger(stepping) || stepping < 0 || stepping > 0xf) return bad('stepping', stepping, 0xf);
  const baseFamily = Math.min(family, 0xf);
  const extFamily = family > 0xf ? family - 0xf : 0;
  return ok(
    ((extFamily << 20) | ((model >> 4) << 16) | (baseFamily << 8) | ((model & 0xf) << 4) | stepping) >>> 0,
  );
}

function sig(family: number, model: number, stepping: number): number {
  const r = cpuSignature(family, model, stepping);
  if (!r.ok) throw new Error(r.error.message);
  return r.value;
}

const EPYC = sig(23, 1, 2); // Zen 1 (Naples): 0x800F12
const EPYC_ROME = sig(23, 49, 0); // Zen 2: 0x830F10
const EPYC_MILAN = sig(25, 1, 1); // Zen 3: 0xA00F11
const EPYC_GENOA = sig(25, 17, 0); // Zen 4: 0xA10F10
const EPYC_TURIN = sig(26, 0, 0); // Zen 5: 0xB00F00

/** QEMU CPU model name → signature (names are case-sensitive in QEMU and in sev-snp-measure). */
export const VCPU_SIGNATURES: Readonly<Record<string, number>> = Object.freeze({
  EPYC: EPYC,
  'EPYC-v1': EPYC,
  'EPYC-v2': EPYC,
  'EPYC-IBPB': EPYC,
  'EPYC-v3': EPYC,
  'EPYC-v4': EPYC,
  'EPYC-Rome': EPYC_ROME,
  'EPYC-Rome-v1': EPYC_ROME,
  'EPYC-Rome-v2': EPYC_ROME,
  'EPYC-Rome-v3': EPYC_ROME,
  'EPYC-Milan': EPYC_MILAN,
  'EPYC-Milan-v1': EPYC_MILAN,
  'EPYC-Milan-v2': EPYC_MILAN,
  'EPYC-Genoa': EPYC_GENOA,
  'EPYC-Genoa-v1': EPYC_GENOA,
  'EPYC-Turin': EPYC_TURIN,
});

/** The signature of a QEMU CPU model, or UNKNOWN_VCPU_TYPE listing the known names. */
export function vcpuSignatureOf(vcpuType: string): MeasureResult<number> {
  const value = Object.hasOwn(VCPU_SIGNATURES, vcpuType) ? VCPU_SIGNATURES[vcpuType] : undefined;
  if (value !== undefined) return ok(value);
  const near = Object.keys(VCPU_SIGNATURES).find((k) => k.toLowerCase() === vcpuType.toLowerCase());
  const hint = near === undefined ? '' : ` (names are case-sensitive: did you mean '${near}'?)`;
  return fail(
    MeasureErrorCode.UNKNOWN_VCPU_TYPE,
    `unknown vCPU type '${vcpuType}'${hint}; known: ${Object.keys(VCPU_SIGNATURES).join(', ')}`,
  );
}
