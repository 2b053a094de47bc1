/**
 * KVM's user-visible and internal constants the host model uses: mp_state values, exit reasons,
 * errno values, request numbers, sentinels, hypercall numbers and the SNP launch ioctl ids.
 * Every value is the one in the cited Linux header (checked against Debian's 6.12 headers). Values
 * the platform layer already defines (page sizes, page types, policy bits, the launch VMSA GPA) are
 * KVM-named aliases of its definitions, not second copies.
 */
import {
  PAGE_SIZE_2M,
  PAGE_SIZE as RMP_PAGE_SIZE,
  SnpPageType,
  SnpPolicy,
  VMSA_GPA,
} from '../psp-firmware/index.js';

/** KVM_MP_STATE_* [LX] include/uapi/linux/kvm.h */
export const KVM_MP_STATE = Object.freeze({
  RUNNABLE: 0,
  UNINITIALIZED: 1,
  INIT_RECEIVED: 2,
  HALTED: 3,
  SIPI_RECEIVED: 4,
  STOPPED: 5,
  CHECK_STOP: 6,
  OPERATING: 7,
  LOAD: 8,
  AP_RESET_HOLD: 9,
  SUSPENDED: 10,
  /**
   * Not a KVM value: the distinct "offline" state the reviewer asked for in July 2021
   * (`YPh7F2talucL7FQ9`, point 4) and never merged. Used only by policies with
   * `offlineState: 'OFFLINE'`; chosen outside KVM's range so it can never be confused with one.
   */
  SNPSIM_OFFLINE: 0x100,
} as const);
export type MpState = (typeof KVM_MP_STATE)[keyof typeof KVM_MP_STATE];

const MP_STATE_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(KVM_MP_STATE).map(([name, value]) => [value, name])),
);

/** `KVM_MP_STATE_HALTED` style name of an mp_state value (or `UNKNOWN(n)`). */
export function mpStateName(state: number): string {
  const name = MP_STATE_NAMES[state];
  if (name === undefined) return `UNKNOWN(${state})`;
  return name === 'SNPSIM_OFFLINE' ? 'OFFLINE (snpsim)' : `KVM_MP_STATE_${name}`;
}

/** kvm_run->exit_reason values [LX] include/uapi/linux/kvm.h */
export const KVM_EXIT = Object.freeze({
  UNKNOWN: 0,
  HYPERCALL: 3,
  HLT: 5,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  /** KVM_RUN returns -EFAULT with run->memory_fault (guest_memfd VMs, 6.8+). */
  MEMORY_FAULT: 39,
} as const);

/** run->memory_fault.flags: the faulting access was private. [LX] KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3) */
export const KVM_MEMORY_EXIT_FLAG_PRIVATE = 1n << 3n;

/** KVM_SYSTEM_EVENT_SEV_TERM [LX] include/uapi/linux/kvm.h */
export const KVM_SYSTEM_EVENT_SEV_TERM = 6;
/** KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON [LX] include/uapi/linux/kvm.h */
export const KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON = 4;

/** errno values KVM returns [LX] include/uapi/asm-generic/errno-base.h */
export const ERRNO = Object.freeze({
  EPERM: 1,
  EINTR: 4,
  EIO: 5,
  EAGAIN: 11,
  ENOMEM: 12,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  EINVAL: 22,
  ENOTTY: 25,
} as const);
export type Errno = (typeof ERRNO)[keyof typeof ERRNO];

const ERRNO_NAMES: Readonly<Record<number, string>> = Object.freeze(
  Object.fromEntries(Object.entries(ERRNO).map(([name, value]) => [value, name])),
);
/** `EINVAL` for 22, `E?(n)` for an unknown value. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES[Math.abs(errno)] ?? `E?(${errno})`;
}

/** KVM_REQUEST_ARCH_BASE [LX] include/linux/kvm_host.h */
export const KVM_REQUEST_ARCH_BASE = 8;
/** KVM_REQUEST_NO_WAKEUP = BIT(8) [LX] include/linux/kvm_host.h */
export const KVM_REQUEST_NO_WAKEUP = 1 << 8;
/** KVM_REQUEST_WAIT = BIT(9) [LX] include/linux/kvm_host.h */
export const KVM_REQUEST_WAIT = 1 << 9;
/** KVM_ARCH_REQ_FLAGS(nr, flags) = (nr + KVM_REQUEST_ARCH_BASE) | flags [LX] include/linux/kvm_host.h */
export function kvmArchReq(nr: number, flags = 0): number {
  return (nr + KVM_REQUEST_ARCH_BASE) | flags;
}

/**
 * KVM_REQ_UPDATE_PROTECTED_GUEST_STATE as each version numbers it [ap-creation.md A.7]:
 * RFC v4/v5 `KVM_ARCH_REQ(31)`; 6.11 `KVM_ARCH_REQ(34)` ([LX] arch/x86/include/asm/kvm_host.h);
 * 6.16 `KVM_ARCH_REQ_FLAGS(34, KVM_REQUEST_WAIT)` (309d28576f0a).
 */
export const KVM_REQ_UPDATE_PROTECTED_GUEST_STATE = Object.freeze({
  rfcV4: kvmArchReq(31),
  v6_11: kvmArchReq(34),
  v6_16: kvmArchReq(34, KVM_REQUEST_WAIT),
} as const);

/** INVALID_PAGE = ~(hpa_t)0 [LX] arch/x86/include/asm/kvm_host.h */
export const INVALID_PAGE = 0xffff_ffff_ffff_ffffn;
/** VALID_PAGE(x) = x != INVALID_PAGE [LX] arch/x86/include/asm/kvm_host.h */
export function validPage(pa: bigint): boolean {
  return pa !== INVALID_PAGE;
}

/** AP_RESET_HOLD_NONE / _NAE_EVENT / _MSR_PROTO (sev_es.ap_reset_hold_type) [LX] arch/x86/kvm/svm/sev.c */
export const AP_RESET_HOLD = Object.freeze({ NONE: 0, NAE_EVENT: 1, MSR_PROTO: 2 } as const);

/** KVM_HC_KICK_CPU [LX] include/uapi/linux/kvm_para.h */
export const KVM_HC_KICK_CPU = 5;
/** KVM_ENOSYS (hypercall return, negated) [LX] include/uapi/linux/kvm_para.h */
export const KVM_ENOSYS = 1000;
/** KVM_EPERM = EPERM [LX] include/uapi/linux/kvm_para.h */
export const KVM_EPERM = 1;

/** KVM_MAX_VCPUS [LX] arch/x86/include/asm/kvm_host.h */
export const KVM_MAX_VCPUS = 1024;

/** KVM_X86_SNP_VM [LX] arch/x86/include/uapi/asm/kvm.h */
export const KVM_X86_SNP_VM = 4;

/** enum sev_cmd_id, SNP launch commands [LX] arch/x86/include/uapi/asm/kvm.h */
export const KVM_SEV_SNP_LAUNCH_START = 100;
export const KVM_SEV_SNP_LAUNCH_UPDATE = 101;
export const KVM_SEV_SNP_LAUNCH_FINISH = 102;

/**
 * KVM_SEV_SNP_PAGE_TYPE_* ("kept in sync with firmware values") [LX] arch/x86/include/uapi/asm/kvm.h:
 * the firmware's page types (`SnpPageType`) except VMSA, which only KVM itself passes.
 */
export const KVM_SEV_SNP_PAGE_TYPE = Object.freeze({
  NORMAL: SnpPageType.NORMAL,
  ZERO: SnpPageType.ZERO,
  UNMEASURED: SnpPageType.UNMEASURED,
  SECRETS: SnpPageType.SECRETS,
  CPUID: SnpPageType.CPUID,
} as const);
/** SNP_PAGE_TYPE_VMSA, used by KVM itself in snp_launch_update_vmsa [LX] include/linux/psp-sev.h */
export const SNP_PAGE_TYPE_VMSA = SnpPageType.VMSA;

/** KVM_SEV_SNP_ID_BLOCK_SIZE / _ID_AUTH_SIZE / _FINISH_DATA_SIZE [LX] arch/x86/include/uapi/asm/kvm.h */
export const KVM_SEV_SNP_ID_BLOCK_SIZE = 96;
export const KVM_SEV_SNP_ID_AUTH_SIZE = 4096;
export const KVM_SEV_SNP_FINISH_DATA_SIZE = 32;

/** INITIAL_VMSA_GPA (0xFFFFFFFFF000): the GPA KVM gives every launch VMSA [LX] arch/x86/kvm/svm/sev.c */
export const INITIAL_VMSA_GPA = VMSA_GPA;

/** SNP_POLICY_MASK_RSVD_MBO = BIT_ULL(17) [LX] arch/x86/kvm/svm/sev.c */
export const SNP_POLICY_MASK_RSVD_MBO = SnpPolicy.RSVD_MBO;
/**
 * SNP_POLICY_MASK_VALID = API_MINOR GENMASK(7,0) | API_MAJOR GENMASK(15,8) | SMT BIT(16) |
 * RSVD_MBO BIT(17) | DEBUG BIT(19) | SINGLE_SOCKET BIT(20) [LX] arch/x86/kvm/svm/sev.c
 */
export const SNP_POLICY_MASK_VALID =
  SnpPolicy.ABI_MINOR_MASK |
  (0xffn << SnpPolicy.ABI_MAJOR_SHIFT) |
  SnpPolicy.SMT |
  SnpPolicy.RSVD_MBO |
  SnpPolicy.DEBUG |
  SnpPolicy.SINGLE_SOCKET;

/** GHCB protocol versions KVM offers: GHCB_VERSION_MAX 2, GHCB_VERSION_MIN 1 [LX] arch/x86/kvm/svm/sev.c */
export const GHCB_VERSION_MAX = 2n;
export const GHCB_VERSION_MIN = 1n;

/** PAGE_SIZE (4 KiB) and PMD_SIZE (2 MiB) [LX] arch/x86/include/asm/page_types.h: the RMP's page sizes. */
export const PAGE_SIZE = RMP_PAGE_SIZE;
export const PMD_SIZE = PAGE_SIZE_2M;
