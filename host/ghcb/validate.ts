/**
 * sev_es_validate_vmgexit in KVM's order ([LX] arch/x86/kvm/svm/sev.c, 6.11 / mainline), with the
 * AP Creation RAX rule of the selected policy. Works on KVM's snapshot of the valid bitmap.
 */
import type { HostPolicy } from '../policy/knobs.js';
import { SVM_EXIT, SVM_VMGEXIT, SVM_VMGEXIT_AP_DESTROY } from '../svm-constants.js';
import { GHCB_ERR, ghcbBitmapIndex } from './layout.js';

/** What validation reads: the snapshot taken by sev_es_sync_from_ghcb plus the GHCB usage. */
export interface ValidationInput {
  readonly ghcbUsage: number;
  readonly validBitmap: readonly [bigint, bigint];
  readonly exitCode: bigint;
  readonly exitInfo1: bigint;
  readonly exitInfo2: bigint;
  /** vcpu->arch.regs[RAX] after the sync (0 when RAX was not valid). */
  readonly rax: bigint;
  readonly snp: boolean;
}

export interface ValidationError {
  /** SW_EXITINFO2 with SW_EXITINFO1 = 2: GHCB_ERR_INVALID_USAGE / _MISSING_INPUT / _INVALID_EVENT. */
  readonly reason: bigint;
  /** KVM's log line. */
  readonly message: string;
}

/** SVM_IOIO_STR_MASK (bit 2) and SVM_IOIO_TYPE_MASK (bit 0) [LX] arch/x86/include/asm/svm.h */
const SVM_IOIO_STR_MASK = 1n << 2n;
const SVM_IOIO_TYPE_MASK = 1n;
/** The SVM exit codes a GHCB may carry, as the 64-bit SW_EXITCODE values the switch compares. */
const EXIT = Object.freeze({
  READ_DR7: BigInt(SVM_EXIT.READ_DR7),
  WRITE_DR7: BigInt(SVM_EXIT.WRITE_DR7),
  RDTSC: BigInt(SVM_EXIT.RDTSC),
  RDPMC: BigInt(SVM_EXIT.RDPMC),
  CPUID: BigInt(SVM_EXIT.CPUID),
  INVD: BigInt(SVM_EXIT.INVD),
  IOIO: BigInt(SVM_EXIT.IOIO),
  MSR: BigInt(SVM_EXIT.MSR),
  VMMCALL: BigInt(SVM_EXIT.VMMCALL),
  RDTSCP: BigInt(SVM_EXIT.RDTSCP),
  WBINVD: BigInt(SVM_EXIT.WBINVD),
  MONITOR: BigInt(SVM_EXIT.MONITOR),
  MWAIT: BigInt(SVM_EXIT.MWAIT),
});

function valid(input: ValidationInput, field: Parameters<typeof ghcbBitmapIndex>[0]): boolean {
  const bit = ghcbBitmapIndex(field);
  const word = bit < 64 ? input.validBitmap[0] : input.validBitmap[1];
  return ((word >> BigInt(bit & 63)) & 1n) === 1n;
}

const hex = (v: bigint) => `0x${v.toString(16)}`;

/** sev_es_validate_vmgexit: undefined when the exit may be dispatched, else the error to return. */
export function validateVmgexit(input: ValidationInput, policy: HostPolicy): ValidationError | undefined {
  const code = input.exitCode;
  // 1. Only GHCB usage 0 is supported.
  if (input.ghcbUsage !== 0) {
    return {
      reason: GHCB_ERR.INVALID_USAGE,
      message: `vmgexit: ghcb usage ${hex(BigInt(input.ghcbUsage))} is not valid`,
    };
  }
  const missing: ValidationError = {
    reason: GHCB_ERR.MISSING_INPUT,
    message: `vmgexit: exit code ${hex(code)} input is not valid`,
  };
  // 2. SW_EXITCODE, SW_EXITINFO1, SW_EXITINFO2 must be marked valid.
  if (!valid(input, 'sw_exit_code') || !valid(input, 'sw_exit_info_1') || !valid(input, 'sw_exit_info_2')) {
    return missing;
  }
  // 3. Per-exit-code inputs.
  const rax = valid(input, 'rax');
  const rcx = valid(input, 'rcx');
  const rdx = valid(input, 'rdx');
  const scratch = valid(input, 'sw_scratch');
  switch (code) {
    case EXIT.READ_DR7:
    case EXIT.RDTSC:
    case EXIT.INVD:
    case EXIT.RDTSCP:
    case EXIT.WBINVD:
    case SVM_VMGEXIT.NMI_COMPLETE:
    case SVM_VMGEXIT.AP_HLT_LOOP:
    case SVM_VMGEXIT.AP_JUMP_TABLE:
    case SVM_VMGEXIT.UNSUPPORTED_EVENT:
    case SVM_VMGEXIT.HV_FEATURES:
    case SVM_VMGEXIT.TERM_REQUEST:
      return undefined;
    case EXIT.WRITE_DR7:
      return rax ? undefined : missing;
    case EXIT.RDPMC:
      return rcx ? undefined : missing;
    case EXIT.CPUID:
      if (!rax || !rcx) return missing;
      return input.rax === 0xdn && !valid(input, 'xcr0') ? missing : undefined;
    case EXIT.IOIO:
      if ((input.exitInfo1 & SVM_IOIO_STR_MASK) !== 0n) return scratch ? undefined : missing;
      return (input.exitInfo1 & SVM_IOIO_TYPE_MASK) === 0n && !rax ? missing : undefined;
    case EXIT.MSR:
      if (!rcx) return missing;
      return input.exitInfo1 !== 0n && (!rax || !rdx) ? missing : undefined;
    case EXIT.VMMCALL:
      return rax && valid(input, 'cpl') ? undefined : missing;
    case EXIT.MONITOR:
      return rax && rcx && rdx ? undefined : missing;
    case EXIT.MWAIT:
      return rax && rcx ? undefined : missing;
    case SVM_VMGEXIT.MMIO_READ:
    case SVM_VMGEXIT.MMIO_WRITE:
      return scratch ? undefined : missing;
    case SVM_VMGEXIT.AP_CREATION:
      // RFC v4 … v8 validated only RAX (for every request) and had no SNP check.
      if (policy.raxRequired === 'all') return rax ? undefined : missing;
      if (!input.snp) return missing;
      if ((input.exitInfo1 & 0xffff_ffffn) !== BigInt(SVM_VMGEXIT_AP_DESTROY) && !rax) return missing;
      return undefined;
    case SVM_VMGEXIT.PSC:
      return input.snp && scratch ? undefined : missing;
    case SVM_VMGEXIT.GUEST_REQUEST:
    case SVM_VMGEXIT.EXT_GUEST_REQUEST:
      if (
        !input.snp ||
        (input.exitInfo1 & 0xfffn) !== 0n ||
        (input.exitInfo2 & 0xfffn) !== 0n ||
        input.exitInfo1 === input.exitInfo2
      ) {
        return missing;
      }
      return undefined;
    default:
      return { reason: GHCB_ERR.INVALID_EVENT, message: `vmgexit: exit code ${hex(code)} is not valid` };
  }
}
