/**
 * A vCPU of an SNP VM: KVM's `struct kvm_vcpu` + `struct vcpu_svm` fields that AP Creation, INIT-SIPI
 * and VMRUN touch, with KVM's names. The run loop lives in run.ts, the target-side update in
 * ap-creation.ts, INIT/SIPI in reset.ts; this module holds state and the small ioctls.
 */
import { AP_RESET_HOLD, INVALID_PAGE, KVM_MP_STATE, mpStateName } from './kvm-constants.js';
import { Lapic } from './lapic.js';
import type { GuestCode, RunOutcome } from './outcome.js';
import { kvmRunSteps, type RunOptions, vmgexitSteps } from './run.js';
import { KvmMutex, runSteps, type Steps } from './steps.js';
import type { Vm } from './vm.js';

/** vcpu->mode [LX] include/linux/kvm_host.h */
export type VcpuMode = 'OUTSIDE_GUEST_MODE' | 'IN_GUEST_MODE' | 'EXITING_GUEST_MODE';

/** The guest registers KVM copies from / to the GHCB (sev_es_sync_from_ghcb / _to_ghcb). */
export interface GhcbRegs {
  rax: bigint;
  rbx: bigint;
  rcx: bigint;
  rdx: bigint;
  rsi: bigint;
}

export class Vcpu {
  readonly vm: Vm;
  /** KVM vcpu_id; QEMU sets it to the APIC ID, which AP Creation names. */
  readonly vcpuId: number;
  /** Index in the VM (also the physical CPU the model runs it on, for VMRUN's in-use marks). */
  readonly index: number;

  // --- generic KVM state ---
  mpState: number;
  /** vcpu->arch.pv.pv_unhalted (set by KVM_HC_KICK_CPU). */
  pvUnhalted = false;
  /** Pending KVM_REQ_UPDATE_PROTECTED_GUEST_STATE. */
  reqUpdateProtectedGuestState = false;
  /** vcpu->mode. */
  mode: VcpuMode = 'OUTSIDE_GUEST_MODE';
  /** NMI pending (dropped by an INIT-style reset). */
  nmiPending = false;
  readonly lapic = new Lapic();
  /** vcpu->arch.last_vmentry_cpu (-1 before the first VMRUN). */
  lastVmentryCpu = -1;
  /** vcpu->arch.guest_state_protected: set once the launch VMSA is encrypted (LAUNCH_FINISH). */
  guestStateProtected = false;

  // --- SVM / SEV-ES ---
  /** VMCB control.vmsa_pa (INVALID_PAGE = none; 0 under RFC v4's sentinel). */
  vmcbVmsaPa: bigint = INVALID_PAGE;
  /** RFC v4/v5 `svm->vmsa_pa`: the VMSA init_vmcb installs under initVmcbVmsa 'current'. */
  svmVmsaPa: bigint = INVALID_PAGE;
  /** `svm->sev_es.vmsa`: KVM's launch VMSA page (SPA), undefined for a vCPU without one. */
  launchVmsaPa: number | undefined;
  /** GPA of the VMSA in the VMCB (reverse-map check input): INITIAL_VMSA_GPA or the guest's GPA. */
  vmsaGpa = 0;
  /** GHCB MSR value (VMCB control.ghcb_gpa). */
  ghcbMsr = 0n;
  /** `sev_es.ghcb_registered_gpa` (0 = none registered). */
  ghcbRegisteredGpa = 0n;
  /** The currently mapped GHCB (`sev_es.ghcb`), unmapped before the next VMRUN. */
  ghcbMap: { readonly gpa: bigint; readonly spa: number } | undefined;
  /** Registers loaded from the GHCB at the last full-protocol exit. */
  readonly regs: GhcbRegs = { rax: 0n, rbx: 0n, rcx: 0n, rdx: 0n, rsi: 0n };
  /** `sev_es.valid_bitmap`: KVM's snapshot of the GHCB valid bitmap. */
  validBitmap: readonly [bigint, bigint] = [0n, 0n];
  /** VMCB control exit_code / exit_info_1 / exit_info_2 (from the GHCB) and sw_scratch. */
  exitCode = 0n;
  exitInfo1 = 0n;
  exitInfo2 = 0n;
  swScratch = 0n;
  /** GHCB cpl (VMCB save.cpl for SEV-ES). */
  cpl = 0;
  /** `sev_es.ap_reset_hold_type`. */
  apResetHoldType: number = AP_RESET_HOLD.NONE;
  /** `sev_es.received_first_sipi`. */
  receivedFirstSipi = false;

  // --- SNP AP Creation (per-target) ---
  readonly snpVmsaMutex: KvmMutex;
  /** `snp_vmsa_gpa`: pending VMSA (sentinel = none). */
  snpVmsaGpa: bigint;
  /** 6.11 `snp_ap_waiting_for_reset` (applyViaVcpuReset policies). */
  snpApWaitingForReset = false;
  /** RFC v4/v5 `snp_vmsa_update_on_init` (policies without applyViaVcpuReset). */
  snpVmsaUpdateOnInit = false;
  /** `snp_has_guest_vmsa`: sticky once a guest VMSA was installed. */
  snpHasGuestVmsa = false;

  constructor(vm: Vm, vcpuId: number, index: number) {
    this.vm = vm;
    this.vcpuId = vcpuId;
    this.index = index;
    this.snpVmsaMutex = new KvmMutex(`vcpu${vcpuId}.snp_vmsa_mutex`);
    this.snpVmsaGpa = vm.vmsaNone;
    // kvm_arch_vcpu_create: the BSP (vcpu_id 0) starts RUNNABLE, APs UNINITIALIZED (in-kernel irqchip).
    this.mpState = vcpuId === 0 ? KVM_MP_STATE.RUNNABLE : KVM_MP_STATE.UNINITIALIZED;
  }

  /** The BSP (kvm_vcpu_is_bsp: vcpu_id 0 with the default BSP). */
  get isBsp(): boolean {
    return this.vcpuId === 0;
  }

  /** One KVM_RUN iteration (see run.ts). A failed VMRUN is an outcome, never an exception. */
  run(guest: GuestCode, options: RunOptions = {}): RunOutcome {
    return runSteps(kvmRunSteps(this, guest, { ...options, whenBlocked: 'return' }));
  }

  /** The same iteration as atomic steps, for the scheduler. */
  runSteps(guest: GuestCode, options: RunOptions = {}): Steps<RunOutcome> {
    return kvmRunSteps(this, guest, options);
  }

  /**
   * The guest running on this vCPU executes VMGEXIT now (it has written the GHCB and the GHCB MSR):
   * KVM's handling without a new VMRUN of this vCPU. Throws unless the vCPU is RUNNABLE.
   */
  vmgexit(): RunOutcome {
    return runSteps(vmgexitSteps(this));
  }

  /** `vmgexit()` as atomic steps, for the scheduler. */
  vmgexitSteps(): Steps<RunOutcome> {
    return vmgexitSteps(this);
  }

  /** KVM_GET_MP_STATE. */
  getMpState(): number {
    return this.mpState;
  }

  /** A one-line description for reports. */
  describe(): string {
    const vmsa = this.vmcbVmsaPa === INVALID_PAGE ? 'INVALID_PAGE' : `0x${this.vmcbVmsaPa.toString(16)}`;
    return `vCPU ${this.vcpuId}: ${mpStateName(this.mpState)}, vmsa_pa ${vmsa}, pv_unhalted ${this.pvUnhalted}`;
  }
}
