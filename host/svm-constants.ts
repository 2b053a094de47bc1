/**
 * SVM exit codes, VMGEXIT NAE event codes, event-injection encoding, and KVM's names for the
 * SEV_FEATURES bits. Values from [LX] arch/x86/include/uapi/asm/svm.h and arch/x86/include/asm/svm.h.
 */
import { SEV_FEATURES_INT_INJ_MODES, SevFeature, VmexitCode } from '../psp-firmware/index.js';

/**
 * #VMEXIT codes the host handles, and those sev_es_validate_vmgexit accepts as SW_EXITCODE
 * [LX] arch/x86/include/uapi/asm/svm.h
 */
export const SVM_EXIT = Object.freeze({
  READ_DR7: 0x027,
  WRITE_DR7: 0x037,
  INTR: 0x060,
  NMI: 0x061,
  RDTSC: 0x06e,
  RDPMC: 0x06f,
  CPUID: 0x072,
  INVD: 0x076,
  HLT: 0x078,
  IOIO: 0x07b,
  MSR: 0x07c,
  SHUTDOWN: 0x07f,
  VMMCALL: 0x081,
  RDTSCP: 0x087,
  WBINVD: 0x089,
  MONITOR: 0x08a,
  MWAIT: 0x08b,
  NPF: 0x400,
  VMGEXIT: 0x403,
} as const);

/**
 * SVM_EXIT_ERR = -1 = VMEXIT_INVALID, a failed VMRUN [LX] arch/x86/include/uapi/asm/svm.h: the
 * platform's `VmexitCode.INVALID` under KVM's name.
 */
export const SVM_EXIT_ERR = VmexitCode.INVALID;

/** SW_EXITCODE values of the GHCB NAE events [LX] arch/x86/include/uapi/asm/svm.h */
export const SVM_VMGEXIT = Object.freeze({
  MMIO_READ: 0x8000_0001n,
  MMIO_WRITE: 0x8000_0002n,
  NMI_COMPLETE: 0x8000_0003n,
  AP_HLT_LOOP: 0x8000_0004n,
  AP_JUMP_TABLE: 0x8000_0005n,
  PSC: 0x8000_0010n,
  GUEST_REQUEST: 0x8000_0011n,
  EXT_GUEST_REQUEST: 0x8000_0012n,
  AP_CREATION: 0x8000_0013n,
  SNP_RUN_VMPL: 0x8000_0018n,
  HV_FEATURES: 0x8000_fffdn,
  TERM_REQUEST: 0x8000_fffen,
  UNSUPPORTED_EVENT: 0x8000_ffffn,
} as const);

/** AP Creation requests in SW_EXITINFO1[31:0] [LX] arch/x86/include/uapi/asm/svm.h */
export const SVM_VMGEXIT_AP_CREATE_ON_INIT = 0;
export const SVM_VMGEXIT_AP_CREATE = 1;
export const SVM_VMGEXIT_AP_DESTROY = 2;

/** SVM_VMGEXIT_SET_AP_JUMP_TABLE / GET [LX] arch/x86/include/uapi/asm/svm.h */
export const SVM_VMGEXIT_SET_AP_JUMP_TABLE = 0n;
export const SVM_VMGEXIT_GET_AP_JUMP_TABLE = 1n;

/**
 * SW_EXITINFO1[19:16]: the target VMPL guests put there (Linux `vmgexit_ap_control`,
 * OVMF, COCONUT); `SVM_VMGEXIT_AP_VMPL_MASK = GENMASK(19,16)` in Tom Lendacky's SVSM RFC
 * (2024-08-27) [ap-creation.md A.2].
 */
export const SVM_VMGEXIT_AP_VMPL_MASK = 0xf_0000n;
export const SVM_VMGEXIT_AP_VMPL_SHIFT = 16n;

/** Event injection encoding [LX] arch/x86/include/asm/svm.h, asm/trapnr.h */
export const X86_TRAP_GP = 13;
export const SVM_EVTINJ_TYPE_EXEPT = 3 << 8;
/** SVM_EVTINJ_VALID = (1 << 31), an int in C (INT_MIN) */
export const SVM_EVTINJ_VALID = 1 << 31;
/**
 * #GP as v5 … RFC v9 reported it in SW_EXITINFO2: `X86_TRAP_GP | SVM_EVTINJ_TYPE_EXEPT |
 * SVM_EVTINJ_VALID` (v5 sev_handle_vmgexit). In C that expression is an `int` (SVM_EVTINJ_VALID =
 * 1 << 31 = INT_MIN), and the u64 parameter of svm_set_ghcb_sw_exit_info_2 sign-extends it, so the
 * guest reads 0xFFFFFFFF8000030D; ap-creation.md A.3 quotes the low dword 0x8000030D. JavaScript's
 * 32-bit `|` is the same int arithmetic, and BigInt.asUintN(64) is the sign-extending conversion.
 */
export const EVTINJ_GP = BigInt.asUintN(64, BigInt(X86_TRAP_GP | SVM_EVTINJ_TYPE_EXEPT | SVM_EVTINJ_VALID));

/**
 * SEV_FEATURES bits under KVM's name (`SVM_SEV_FEAT_*`): the platform's one definition
 * (`psp-firmware/vmsa-layout.ts`).
 */
export const SVM_SEV_FEAT = SevFeature;
/** SVM_SEV_FEAT_INT_INJ_MODES = RESTRICTED_INJECTION | ALTERNATE_INJECTION = 0x18 [LX] asm/svm.h */
export const SVM_SEV_FEAT_INT_INJ_MODES = SEV_FEATURES_INT_INJ_MODES;

/** MSR_AMD64_SEV_ES_GHCB [LX] arch/x86/include/asm/msr-index.h */
export const MSR_AMD64_SEV_ES_GHCB = 0xc001_0130;
