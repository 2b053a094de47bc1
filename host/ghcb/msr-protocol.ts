/**
 * The GHCB MSR protocol (GHCB MSR 0xC0010130 with GHCBInfo in bits 11:0): request/response codes,
 * field positions and encoders/decoders. Values from [LX] arch/x86/include/asm/sev-common.h.
 */

/** GHCB_MSR_INFO_MASK = BIT_ULL(GHCB_DATA_LOW = 12) - 1 [LX] sev-common.h */
export const GHCB_MSR_INFO_MASK = 0xfffn;
export const GHCB_DATA_LOW = 12n;

/** GHCBInfo codes [LX] sev-common.h */
export const GHCB_MSR = Object.freeze({
  SEV_INFO_RESP: 0x001n,
  SEV_INFO_REQ: 0x002n,
  CPUID_REQ: 0x004n,
  CPUID_RESP: 0x005n,
  AP_RESET_HOLD_REQ: 0x006n,
  AP_RESET_HOLD_RESP: 0x007n,
  PREF_GPA_REQ: 0x010n,
  PREF_GPA_RESP: 0x011n,
  REG_GPA_REQ: 0x012n,
  REG_GPA_RESP: 0x013n,
  PSC_REQ: 0x014n,
  PSC_RESP: 0x015n,
  VMPL_REQ: 0x016n,
  VMPL_RESP: 0x017n,
  HV_FT_REQ: 0x080n,
  HV_FT_RESP: 0x081n,
  TERM_REQ: 0x100n,
} as const);

/** GENMASK_ULL(51, 0): GHCB_MSR_GPA_VALUE_MASK, GHCB_MSR_HV_FT_MASK, AP_RESET_HOLD_RESULT_MASK [LX] */
export const GENMASK_51_0 = (1n << 52n) - 1n;
/** GHCB_MSR_PREF_GPA_NONE [LX] sev-common.h */
export const GHCB_MSR_PREF_GPA_NONE = 0xf_ffff_ffff_ffffn;
/** GHCB_MSR_PSC_RESP_ERROR = BIT_ULL(63) | GHCB_MSR_PSC_RESP [LX] sev-common.h */
export const GHCB_MSR_PSC_RESP_ERROR = (1n << 63n) | GHCB_MSR.PSC_RESP;
/** enum psc_op: SNP_PAGE_STATE_PRIVATE 1, SNP_PAGE_STATE_SHARED 2 [LX] sev-common.h */
export const SNP_PAGE_STATE_PRIVATE = 1;
export const SNP_PAGE_STATE_SHARED = 2;

/** GHCB_HV_FT_* bits [LX] sev-common.h; bit 2/3 from edk2 Ghcb.h [ap-creation.md A.4] */
export const GHCB_HV_FT = Object.freeze({
  SNP: 1n << 0n,
  SNP_AP_CREATION: 1n << 1n,
  SNP_RESTRICTED_INJECTION: 1n << 2n,
  SNP_RESTRICTED_INJECTION_TIMER: 1n << 3n,
  SNP_MULTI_VMPL: 1n << 5n,
} as const);
/** KVM's GHCB_HV_FT_SUPPORTED = SNP | SNP_AP_CREATION = 0x3 [LX] arch/x86/kvm/svm/sev.c */
export const GHCB_HV_FT_SUPPORTED_KVM = GHCB_HV_FT.SNP | GHCB_HV_FT.SNP_AP_CREATION;

/** GHCB_MSR_INFO(v) */
export function msrInfo(value: bigint): bigint {
  return value & GHCB_MSR_INFO_MASK;
}

/** GHCB_MSR_SEV_INFO(max, min, cbit): [63:48] max, [47:32] min, [31:24] C-bit position, 0x001 */
export function sevInfoResponse(maxVersion: bigint, minVersion: bigint, cbitPosition: number): bigint {
  return (
    ((maxVersion & 0xffffn) << 48n) |
    ((minVersion & 0xffffn) << 32n) |
    ((BigInt(cbitPosition) & 0xffn) << 24n) |
    GHCB_MSR.SEV_INFO_RESP
  );
}

/** set_ghcb_msr_bits(value, mask, pos) applied to an MSR value. */
export function setMsrBits(msr: bigint, value: bigint, mask: bigint, pos: bigint): bigint {
  return BigInt.asUintN(64, (msr & ~(mask << pos)) | ((value & mask) << pos));
}

/** get_ghcb_msr_bits(mask, pos) */
export function getMsrBits(msr: bigint, mask: bigint, pos: bigint): bigint {
  return (msr >> pos) & mask;
}

/** GHCB_MSR_REG_GPA_REQ_VAL(gfn): GFN in [63:12] */
export function regGpaRequest(gfn: bigint): bigint {
  return ((gfn & GENMASK_51_0) << 12n) | GHCB_MSR.REG_GPA_REQ;
}

/** GHCB_MSR_PSC_REQ_GFN(gfn, op): op in [55:52], GFN (40 bits) in [51:12] */
export function pscRequest(gfn: bigint, op: number): bigint {
  return ((BigInt(op) & 0xfn) << 52n) | ((gfn & ((1n << 40n) - 1n)) << 12n) | GHCB_MSR.PSC_REQ;
}
/** GHCB_MSR_PSC_REQ_TO_GFN / _TO_OP */
export function pscRequestGfn(msr: bigint): bigint {
  return (msr & (((1n << 52n) - 1n) & ~0xfffn)) >> 12n;
}
export function pscRequestOp(msr: bigint): number {
  return Number((msr >> 52n) & 0xfn);
}

/** GHCB_SEV_TERM_REASON(set, code) | GHCB_MSR_TERM_REQ: set in [15:12], code in [23:16] */
export function termRequest(reasonSet: number, reasonCode: number): bigint {
  return ((BigInt(reasonSet) & 0xfn) << 12n) | ((BigInt(reasonCode) & 0xffn) << 16n) | GHCB_MSR.TERM_REQ;
}
export const GHCB_MSR_TERM_REASON_SET_POS = 12n;
export const GHCB_MSR_TERM_REASON_SET_MASK = 0xfn;
export const GHCB_MSR_TERM_REASON_POS = 16n;
export const GHCB_MSR_TERM_REASON_MASK = 0xffn;

/** GHCB_MSR_AP_RESET_HOLD_RESULT_POS 12, mask GENMASK_ULL(51,0) [LX] sev-common.h */
export const GHCB_MSR_AP_RESET_HOLD_RESULT_POS = 12n;
/** GHCB_MSR_GPA_VALUE_POS 12 / GHCB_MSR_HV_FT_POS 12 [LX] sev-common.h */
export const GHCB_MSR_GPA_VALUE_POS = 12n;
export const GHCB_MSR_HV_FT_POS = 12n;

/** GHCB_MSR_AP_RESET_HOLD_RESP with the result in GHCBData[63:12] (1 = woken by a SIPI). */
export function apResetHoldResponse(result: bigint): bigint {
  return ((result & GENMASK_51_0) << GHCB_MSR_AP_RESET_HOLD_RESULT_POS) | GHCB_MSR.AP_RESET_HOLD_RESP;
}
