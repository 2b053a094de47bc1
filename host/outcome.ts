/**
 * Values one KVM_RUN iteration returns, and what the guest did once entered. Every outcome names the
 * layer that produced it (`kvm`, `cpu`, `ghcb`, `guest`), as users must always see who said no.
 */
import type { GuestContext } from '../psp-firmware/index.js';

/** What the guest did after VMRUN, as returned by the caller's guest-code hook. */
export type GuestExit =
  /** The guest wrote the GHCB MSR and executed VMGEXIT (REP VMMCALL): #VMEXIT(VMGEXIT 0x403). */
  | { readonly kind: 'vmgexit' }
  /** HLT: an automatic exit for SEV-ES guests (#VMEXIT(HLT 0x78)). */
  | { readonly kind: 'hlt' }
  /** A nested page fault, e.g. an RMP fault of PVALIDATE/RMPADJUST (#VMEXIT(NPF 0x400)). */
  | { readonly kind: 'npf'; readonly gpa: number; readonly exitInfo1: number }
  /** Triple fault (#VMEXIT(SHUTDOWN 0x7F)). */
  | { readonly kind: 'shutdown' }
  /** The guest ran until an external interrupt (#VMEXIT(INTR 0x60)). */
  | { readonly kind: 'intr' };

/** What the guest-code hook sees when its vCPU enters the guest. */
export interface GuestEntry {
  /** KVM vcpu_id = APIC ID. */
  readonly vcpuId: number;
  /** System physical address of the VMSA VMRUN accepted. */
  readonly vmsaPa: number;
  /** Its GPA: INITIAL_VMSA_GPA for a launch VMSA, the AP Creation GPA for a guest VMSA. */
  readonly vmsaGpa: number;
  /** SEV_FEATURES VMRUN read from the VMSA. */
  readonly sevFeatures: bigint;
  /** The platform context guest instructions and accesses run in (ASID, VMPL 0, CPL 0, NPT). */
  readonly guest: GuestContext;
  /** The guest writes MSR 0xC0010130 (no #VC: the GHCB MSR is not intercepted). */
  writeGhcbMsr(value: bigint): void;
  /** The guest reads MSR 0xC0010130 (e.g. the MSR-protocol response). */
  readGhcbMsr(): bigint;
}

/** The guest code a vCPU runs once entered (supplied by the harness; the host has no guest logic). */
export type GuestCode = (entry: GuestEntry) => GuestExit;

/** What the target did when it applied a pending AP Creation update. */
export interface UpdateApplied {
  readonly kind: 'update-applied';
  /** `request`: KVM_REQ_UPDATE_PROTECTED_GUEST_STATE in vcpu_enter_guest; `init`: an INIT. */
  readonly via: 'request' | 'init';
  /** The new VMSA GPA that was installed, or undefined when the vCPU went offline. */
  readonly installedGpa: bigint | undefined;
  /** Why a pending VMSA was not installed (undefined when it was, or none was pending). */
  readonly failure: 'unaligned' | 'no-memslot' | undefined;
  readonly mpState: number;
  readonly vmsaPa: bigint;
}

/** Things that happened inside one KVM_RUN iteration, in order (for reports and experiments). */
export type RunEvent =
  | UpdateApplied
  | { readonly kind: 'update-skipped'; readonly via: 'request' | 'init'; readonly reason: string }
  | { readonly kind: 'init-accepted'; readonly mpState: number }
  | { readonly kind: 'init-dropped'; readonly reason: string }
  | { readonly kind: 'sipi-accepted'; readonly vector: number; readonly first: boolean }
  | { readonly kind: 'sipi-dropped'; readonly reason: string }
  | { readonly kind: 'woken'; readonly from: number; readonly to: number }
  | { readonly kind: 'entry-cancelled'; readonly reason: 'request-pending' | 'kicked' };

/** The GHCB / MSR-protocol effect of one VMGEXIT. */
export type VmgexitResult =
  | {
      readonly protocol: 'msr';
      /** GHCB MSR value the guest wrote. */
      readonly request: bigint;
      /** GHCB MSR value the guest reads back. */
      readonly response: bigint;
      /** Set when KVM does not model the request's emulation (CPUID). */
      readonly notModelled?: string;
    }
  | {
      readonly protocol: 'ghcb';
      readonly ghcbGpa: bigint;
      readonly exitCode: bigint;
      /** SW_EXITINFO1 / SW_EXITINFO2 as written back to the GHCB (undefined if the VM died first). */
      readonly info1: bigint | undefined;
      readonly info2: bigint | undefined;
      /** Set when KVM does not model the event's emulation (CPUID, IOIO, MSR, MMIO, guest requests). */
      readonly notModelled?: string;
    }
  | { readonly protocol: 'none'; readonly reason: 'ghcb-gpa-not-set' | 'ghcb-not-mappable' };

/** run->memory_fault of KVM_EXIT_MEMORY_FAULT [LX] include/uapi/linux/kvm.h. */
export interface MemoryFault {
  /** Page-aligned GPA (fault->gfn << PAGE_SHIFT). */
  readonly gpa: bigint;
  /** PAGE_SIZE. */
  readonly size: bigint;
  /** KVM_MEMORY_EXIT_FLAG_PRIVATE for a private access, else 0. */
  readonly flags: bigint;
}

/**
 * What the VMM did with a KVM_EXIT_MEMORY_FAULT before its next KVM_RUN: QEMU's kvm_convert_memory
 * (the range's attribute to the access's, the RMPUPDATE guest_memfd's prepare / invalidate does), or
 * nothing (a VMM that stops the VM).
 */
export interface MemoryConversion {
  readonly toPrivate: boolean;
  readonly converted: boolean;
}

interface Base {
  readonly events: readonly RunEvent[];
  /** The layer that decided the outcome. */
  readonly layer: 'kvm' | 'cpu' | 'ghcb' | 'guest';
  /** One line for a user. */
  readonly detail: string;
  /** True when the VMM stops the VM on this outcome (QEMU does on these exits and errors). */
  readonly vmStopped: boolean;
}

export type RunOutcome =
  /** VMRUN entered the guest; the exit was handled in the kernel; the guest resumes on the next run. */
  | (Base & {
      readonly kind: 'exit';
      readonly exit: GuestExit['kind'];
      readonly vmexitCode: number;
      readonly vmgexit?: VmgexitResult;
    })
  /** The vCPU thread sleeps in kvm_vcpu_block / halt (or spins in the kernel when `spinning`). */
  | (Base & { readonly kind: 'blocked'; readonly mpState: number; readonly spinning: boolean })
  /** KVM_RUN returned 0 with run->exit_reason for userspace. */
  | (Base & {
      readonly kind: 'userspace';
      readonly exitReason: number;
      readonly failEntry?: { readonly hardwareEntryFailureReason: bigint; readonly cpu: number };
      readonly internal?: { readonly suberror: number; readonly data: readonly bigint[] };
      readonly systemEvent?: { readonly type: number; readonly data: readonly bigint[] };
      readonly vmgexit?: VmgexitResult;
    })
  /** KVM_RUN returned a negative errno (-EFAULT with KVM_EXIT_MEMORY_FAULT: `memoryFault`, `conversion`). */
  | (Base & {
      readonly kind: 'errno';
      readonly errno: number;
      readonly vmgexit?: VmgexitResult;
      readonly internal?: { readonly suberror: number; readonly data: readonly bigint[] };
      readonly exitReason?: number;
      readonly memoryFault?: MemoryFault;
      readonly conversion?: MemoryConversion;
    })
  /** The VMM no longer runs this VM (an earlier outcome stopped it). */
  | (Base & { readonly kind: 'vm-stopped' });
