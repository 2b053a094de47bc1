/**
 * An SNP (or SEV-ES) VM: KVM's `struct kvm` + `kvm_sev_info` fields the model needs, its vCPUs, its
 * memslots and the events other vCPUs or the VMM deliver to a vCPU's LAPIC (INIT, SIPI, fixed IPIs,
 * NMIs, the PV kick).
 */
import {
  ALLOWED_SEV_FEATURES_ENABLE,
  type GuestContext,
  MappingSize,
  type Platform,
  SevFeature,
  VmsaOffset,
} from '../psp-firmware/index.js';
import { sevInfoResponse } from './ghcb/msr-protocol.js';
import type { Kvm } from './kvm.js';
import {
  ERRNO,
  GHCB_VERSION_MIN,
  INITIAL_VMSA_GPA,
  INVALID_PAGE,
  PAGE_SIZE,
  PMD_SIZE,
} from './kvm-constants.js';
import { GuestMemory } from './memory.js';
import { hasVmsa, kick } from './mp-state.js';
import type { RunOutcome } from './outcome.js';
import type { HostPolicy } from './policy/knobs.js';
import { Vcpu } from './vcpu.js';

/** Launch progress (KVM_SEV_SNP_LAUNCH_START / _FINISH). */
export type LaunchState = 'init' | 'launching' | 'running';

/** What a vCPU looks like to an observer (for reports, dedupe and experiments). */
export interface VcpuSnapshot {
  readonly vcpuId: number;
  readonly mpState: number;
  readonly pvUnhalted: boolean;
  readonly reqUpdateProtectedGuestState: boolean;
  readonly mode: string;
  readonly vmcbVmsaPa: string;
  readonly snpVmsaGpa: string;
  readonly snpApWaitingForReset: boolean;
  readonly snpVmsaUpdateOnInit: boolean;
  readonly snpHasGuestVmsa: boolean;
  readonly lapicSoftwareEnabled: boolean;
  readonly ghcbRegisteredGpa: string;
}

export class Vm {
  readonly kvm: Kvm;
  readonly platform: Platform;
  readonly policy: HostPolicy;
  readonly isSnp: boolean;
  readonly asid: number;
  /** `sev->vmsa_features` (KVM_SEV_INIT2.vmsa_features, SNPActive forced for SNP VMs). */
  readonly vmsaFeatures: bigint;
  /**
   * VMCB 0x138 ALLOWED_SEV_FEATURES of every vCPU: `sev_es_init_vmcb` programs `vmsa_features |
   * VMCB_ALLOWED_SEV_FEATURES_VALID` (bit 63) when the CPU has X86_FEATURE_ALLOWED_SEV_FEATURES
   * (`profile.allowedSevFeatures`), else leaves it 0 [LX] arch/x86/kvm/svm/sev.c (K. Phillips' series).
   */
  readonly allowedSevFeatures: bigint;
  /** `sev->ghcb_version` (2 by default for KVM_SEV_INIT2 VMs). */
  readonly ghcbVersion: bigint;
  /** Guest MAXPHYADDR for page_address_valid (C-bit excluded). */
  readonly guestMaxPhyAddr: number;
  readonly memory = new GuestMemory();
  readonly vcpus: Vcpu[] = [];
  launchState: LaunchState = 'init';
  /** SPA of the guest context page (SNP_GCTX_CREATE), once launched. */
  gctxPa: number | undefined;
  /** `sev->ap_jump_table` (SVM_VMGEXIT_AP_JUMP_TABLE). */
  apJumpTable = 0n;
  /** The outcome that made the VMM stop the VM, if any. */
  stopped: RunOutcome | undefined;
  /** Set by `Kvm.destroyVm` (kvm_destroy_vm ran): the VM's pages and ASID are given back. */
  destroyed = false;
  readonly #sharedGfns = new Set<number>();

  constructor(
    kvm: Kvm,
    init: {
      readonly policy: HostPolicy;
      readonly isSnp: boolean;
      readonly asid: number;
      readonly vmsaFeatures: bigint;
      readonly ghcbVersion: bigint;
      readonly guestMaxPhyAddr: number;
    },
  ) {
    this.kvm = kvm;
    this.platform = kvm.platform;
    this.policy = init.policy;
    this.isSnp = init.isSnp;
    this.asid = init.asid;
    this.vmsaFeatures = init.vmsaFeatures;
    this.allowedSevFeatures = this.platform.profile.allowedSevFeatures
      ? init.vmsaFeatures | ALLOWED_SEV_FEATURES_ENABLE
      : 0n;
    this.ghcbVersion = init.ghcbVersion;
    this.guestMaxPhyAddr = init.guestMaxPhyAddr;
  }

  /** The policy's "no VMSA" value for snp_vmsa_gpa and the VMCB pointer. */
  get vmsaNone(): bigint {
    return this.policy.vmsaSentinel === 'zero' ? 0n : INVALID_PAGE;
  }

  /** GPA KVM gives every launch VMSA (INITIAL_VMSA_GPA). */
  get launchVmsaGpa(): number {
    return INITIAL_VMSA_GPA;
  }

  /** kvm_get_vcpu_by_id. */
  vcpuById(vcpuId: number): Vcpu | undefined {
    return this.vcpus.find((v) => v.vcpuId === vcpuId);
  }

  /** The vCPU with this id; throws for an unknown id (a caller's programming error). */
  vcpu(vcpuId: number): Vcpu {
    const v = this.vcpuById(vcpuId);
    if (v === undefined)
      throw new RangeError(`no vCPU with id ${vcpuId} (have ${this.vcpus.map((x) => x.vcpuId).join(', ')})`);
    return v;
  }

  /**
   * KVM_CREATE_VCPU: allocates KVM's launch VMSA page (not 2 MiB aligned, snp_safe_alloc_page) and
   * points the VMCB at it; the GHCB MSR starts as the SEV information response (sev_es_vcpu_reset).
   * Returns the vCPU or a negative errno (-EINVAL: duplicate id or VM already launched; -ENOMEM).
   */
  createVcpu(vcpuId: number = this.vcpus.length): Vcpu | number {
    if (!Number.isInteger(vcpuId) || vcpuId < 0 || vcpuId > 0xffff_ffff) return -ERRNO.EINVAL;
    if (this.vcpuById(vcpuId) !== undefined) return -ERRNO.EINVAL;
    const page = this.kvm.alloc.allocSafePage();
    if (page === undefined) return -ERRNO.ENOMEM;
    this.platform.memory.fill(page, PAGE_SIZE, 0);
    const vcpu = new Vcpu(this, vcpuId, this.vcpus.length);
    vcpu.launchVmsaPa = page;
    vcpu.vmcbVmsaPa = BigInt(page);
    vcpu.svmVmsaPa = BigInt(page);
    vcpu.vmsaGpa = this.launchVmsaGpa;
    vcpu.ghcbMsr = sevInfoResponse(this.ghcbVersion, GHCB_VERSION_MIN, this.kvm.cbitPosition);
    this.vcpus.push(vcpu);
    return vcpu;
  }

  /**
   * Adds guest memory [gpa, gpa + bytes) backed by freshly allocated system memory: 0, -EINVAL
   * (misaligned, empty or overlapping; `reason` says which) or -ENOMEM.
   */
  addMemory(gpa: number, bytes: number): { readonly ret: number; readonly reason?: string } {
    const problem = this.memory.slotProblem(gpa, bytes);
    if (problem !== undefined) return { ret: -ERRNO.EINVAL, reason: problem };
    // Guest RAM is backed so that SPA ≡ GPA (mod 2 MiB), as hugepage-backed guest memory is (KVM maps
    // a 2 MiB NPT page only where GPA and host address agree mod 2 MiB): a 2 MiB-aligned GPA is then
    // 2 MiB aligned in system memory too, which makes the 2 MB-aligned VMSA erratum
    // (CpuProfile.vmsa2MAlignedErratum) reachable from a guest.
    const spa = this.kvm.alloc.allocContiguous(bytes, PMD_SIZE, gpa % PMD_SIZE);
    if (spa === undefined) return { ret: -ERRNO.ENOMEM, reason: 'out of system memory for guest RAM' };
    this.memory.addSlot({ gpa, bytes, spa });
    return { ret: 0 };
  }

  /** KVM memory attribute of `gpa` (QEMU marks all guest RAM private for SNP; PSC changes it). */
  isPrivate(gpa: number): boolean {
    return this.isSnp && !this.#sharedGfns.has(Math.floor(gpa / PAGE_SIZE));
  }

  setPrivate(gpa: number, isPrivate: boolean): void {
    const gfn = Math.floor(gpa / PAGE_SIZE);
    if (isPrivate) this.#sharedGfns.delete(gfn);
    else this.#sharedGfns.add(gfn);
  }

  /** The RMP entry of `spa` already is this guest's private page at `gpa` (or hypervisor-owned). */
  rmpMatches(spa: number, gpa: number, isPrivate: boolean): boolean {
    const entry = this.platform.firmwareRead(Math.floor(spa / PAGE_SIZE));
    if (entry === undefined) return !isPrivate;
    if (!isPrivate) return !entry.assigned;
    return entry.assigned && !entry.immutable && entry.asid === this.asid && entry.gpa === gpa;
  }

  // --- LAPIC deliveries (from another vCPU's ICR write or the VMM) -------------------------------

  /** APIC_DM_INIT to `apicId`; false when no such vCPU. */
  sendInit(apicId: number): boolean {
    const v = this.vcpuById(apicId);
    if (v === undefined) return false;
    v.lapic.acceptInit();
    kick(v);
    return true;
  }

  /** APIC_DM_STARTUP with `vector`. */
  sendSipi(apicId: number, vector: number): boolean {
    const v = this.vcpuById(apicId);
    if (v === undefined) return false;
    v.lapic.acceptSipi(vector);
    kick(v);
    return true;
  }

  /** A fixed interrupt; dropped (false) while the target's APIC is software-disabled. */
  sendFixed(apicId: number, vector: number): boolean {
    const v = this.vcpuById(apicId);
    if (v === undefined) return false;
    const accepted = v.lapic.acceptFixed(vector);
    if (accepted) kick(v);
    return accepted;
  }

  /** An NMI (kvm_inject_nmi). */
  sendNmi(apicId: number): boolean {
    const v = this.vcpuById(apicId);
    if (v === undefined) return false;
    v.nmiPending = true;
    kick(v);
    return true;
  }

  /**
   * kvm_pv_kick_cpu_op (KVM_HC_KICK_CPU): APIC_DM_REMRD to `apicId` sets pv_unhalted and kicks.
   * Delivered whatever the target APIC's software-enable bit (see lapic.ts).
   */
  pvKick(apicId: number): boolean {
    const v = this.vcpuById(apicId);
    if (v === undefined) return false;
    v.pvUnhalted = true;
    kick(v);
    return true;
  }

  /**
   * The platform context the guest of `vcpu` runs in: this VM's ASID and memslots, the VMPL from the
   * running VMSA (offset 0x0CA), CPL 0, 4 KiB NPT mappings.
   */
  guestContext(vcpu: Vcpu, sevFeatures: bigint): GuestContext {
    const memory = this.memory;
    const vmsaPa = Number(vcpu.vmcbVmsaPa);
    return {
      asid: this.asid,
      vmpl: this.platform.memory.readU8(vmsaPa + VmsaOffset.VMPL) & 3,
      cpl: 0,
      snpActive: (sevFeatures & SevFeature.SNP_ACTIVE) !== 0n,
      sevFeatures,
      cpu: vcpu.index,
      translate: (gpa: number) => memory.translate(gpa),
      nptPageSize: () => MappingSize.SIZE_4K,
    };
  }

  /** Records the outcome that stops the VM (the VMM stops on it). */
  stop(outcome: RunOutcome): void {
    if (this.stopped === undefined) this.stopped = outcome;
  }

  /** Every vCPU's observable host state. */
  snapshot(): readonly VcpuSnapshot[] {
    const hex = (v: bigint) => (v === INVALID_PAGE ? 'INVALID_PAGE' : `0x${v.toString(16)}`);
    return this.vcpus.map((v) => ({
      vcpuId: v.vcpuId,
      mpState: v.mpState,
      pvUnhalted: v.pvUnhalted,
      reqUpdateProtectedGuestState: v.reqUpdateProtectedGuestState,
      mode: v.mode,
      vmcbVmsaPa: hasVmsa(v) ? hex(v.vmcbVmsaPa) : `none(${hex(v.vmcbVmsaPa)})`,
      snpVmsaGpa: hex(v.snpVmsaGpa),
      snpApWaitingForReset: v.snpApWaitingForReset,
      snpVmsaUpdateOnInit: v.snpVmsaUpdateOnInit,
      snpHasGuestVmsa: v.snpHasGuestVmsa,
      lapicSoftwareEnabled: v.lapic.softwareEnabled,
      ghcbRegisteredGpa: hex(v.ghcbRegisteredGpa),
    }));
  }
}
