/**
 * Frozen tables of the CPU's RMP-related codes: instruction return codes, fault encodings, access
 * kinds, VMRUN failure exit codes. The VMSA layout and SEV_FEATURES bits are in `../vmsa-layout.ts`.
 */
import { SevFeature } from '../vmsa-layout.js';

/** EAX return codes of RMPUPDATE/PSMASH/RMPREAD/PVALIDATE/RMPADJUST/RMPQUERY. [LX] asm/sev.h; [MS] */
export const RmpStatus = Object.freeze({
  SUCCESS: 0,
  FAIL_INPUT: 1,
  FAIL_PERMISSION: 2,
  FAIL_INUSE: 3,
  /** [LX] RMPUPDATE_FAIL_OVERLAP 4. */
  FAIL_OVERLAP: 4,
  /** [LX] PVALIDATE_FAIL_SIZEMISMATCH 6. */
  FAIL_SIZEMISMATCH: 6,
} as const);
export type RmpStatus = (typeof RmpStatus)[keyof typeof RmpStatus];

/** Names of every EAX value an RMP instruction can return (incl. both PSMASH bad-address codes). */
export const RMP_STATUS_NAMES: Readonly<Record<number, string>> = Object.freeze({
  0: 'SUCCESS',
  1: 'FAIL_INPUT',
  2: 'FAIL_PERMISSION',
  3: 'FAIL_INUSE',
  4: 'FAIL_OVERLAP / PSMASH_FAIL_BADADDR',
  6: 'FAIL_SIZEMISMATCH',
  7: 'PSMASH_FAIL_BADADDR (MS docs)',
});

/** Software value Linux returns when PVALIDATE sets rFLAGS.CF. [LX] PVALIDATE_FAIL_NOUPDATE 255 */
export const PVALIDATE_FAIL_NOUPDATE = 255;

/** Access kinds for the RMP access checks (numbers: the hot path compares small integers). */
export const AccessKind = Object.freeze({
  /** Data read. */
  READ: 0,
  /** Data write (also A/D-bit updates of data pages). */
  WRITE: 1,
  /** Instruction fetch (Execute-User at CPL3, Execute-Supervisor below). */
  EXECUTE: 2,
  /** Page-table walk read. */
  PAGE_TABLE_READ: 3,
  /** Page-table A/D-bit update (a data write of 4 KB size, APM 15.36.10). */
  PAGE_TABLE_WRITE: 4,
  /** Supervisor shadow-stack access (VmplSSS). */
  SHADOW_STACK: 5,
} as const);
export type AccessKind = (typeof AccessKind)[keyof typeof AccessKind];

/** Host/NPT mapping size of the access: 4 KB, 2 MB or 1 GB (1 GB is checked as 2 MB, APM 15.36.10). */
export const MappingSize = Object.freeze({ SIZE_4K: 0, SIZE_2M: 1, SIZE_1G: 2 } as const);
export type MappingSize = (typeof MappingSize)[keyof typeof MappingSize];

/** x86 #PF error-code bits and SVM #NPF EXITINFO1 bits. [LX] arch/x86/include/asm/kvm_host.h PFERR_* */
export const PfErr = Object.freeze({
  /** bit 0 P: the translation was present (RMP faults always set it). */
  PRESENT: 0x1,
  /** bit 1 W/R. */
  WRITE: 0x2,
  /** bit 2 U/S: CPL3 access. */
  USER: 0x4,
  /** bit 4 I/D: instruction fetch. */
  FETCH: 0x10,
  /** bit 31 RMP. [LX] X86_PF_RMP / PFERR_GUEST_RMP_BIT 31 */
  RMP: 0x80000000,
  /** bit 32 GUEST_FINAL: fault on the final guest physical address. [LX] PFERR_GUEST_FINAL_BIT 32 */
  GUEST_FINAL: 2 ** 32,
  /** bit 33 GUEST_PAGE: fault during the guest page-table walk. [LX] PFERR_GUEST_PAGE_BIT 33 */
  GUEST_PAGE: 2 ** 33,
  /** bit 34 ENC: effective C-bit of the access. [LX] PFERR_GUEST_ENC_BIT 34 */
  ENC: 2 ** 34,
  /** bit 35 SIZEM: PVALIDATE/RMPADJUST page-size mismatch. [LX] PFERR_GUEST_SIZEM_BIT 35 */
  SIZEM: 2 ** 35,
  /** bit 36 VMPL: VMPL permission failure. [LX] PFERR_GUEST_VMPL_BIT 36 */
  VMPL: 2 ** 36,
  /** bit 37 SSS: copy of the mask's SSS bit when VmplSSS is enabled. [APM 15.36.10] */
  SSS: 2 ** 37,
} as const);

/** #VC error code for an access to a page whose Validated bit is 0. [LX] SVM_EXIT_VMM_COMMUNICATION PAGE_NOT_VALIDATED 0x404 */
export const VC_PAGE_NOT_VALIDATED = 0x404;

/** SVM exit codes of a failed VMRUN. [LX] arch/x86/include/uapi/asm/svm.h */
export const VmexitCode = Object.freeze({
  /** SVM_EXIT_ERR / VMEXIT_INVALID. */
  INVALID: -1,
  /** VMEXIT_BUSY (VIntrCtrl BUSY with Alternate Injection / Secure AVIC). */
  BUSY: -2,
  IDLE_REQUIRED: -3,
  INVALID_PMC: -4,
} as const);

/**
 * SEV_FEATURES that need an explicit opt-in through an enabled ALLOWED_SEV_FEATURES mask: "not
 * available" when the mask is not enabled [APM 15.36.20 / Table B-4, quoted by S. Christopherson and
 * K. Phillips on kvm@, 2024-08].
 */
export const SEV_FEATURES_OPT_IN = SevFeature.PMC_VIRTUALIZATION | SevFeature.SECURE_AVIC;

/** ALLOWED_SEV_FEATURES (VMCB 0x138) bit 63: the mask is enabled. [LX] VMCB_ALLOWED_SEV_FEATURES_VALID */
export const ALLOWED_SEV_FEATURES_ENABLE = 1n << 63n;
