/**
 * mp_state transitions and the events that cause them: kvm_set_mp_state, KVM_SET_MP_STATE, INIT and
 * SIPI (kvm_apic_accept_events), the INIT-style vCPU reset (kvm_vcpu_reset → svm_vcpu_reset →
 * sev_snp_init_protected_guest_state → init_vmcb), the PV kick, and wake-up rules
 * (kvm_vcpu_has_events). [LX] arch/x86/kvm/x86.c, lapic.c, svm/svm.c, svm/sev.c
 */
import { snpInitProtectedGuestState } from './ap-creation.js';
import { vmgexitSetResult } from './ghcb/map.js';
import { apResetHoldResponse } from './ghcb/msr-protocol.js';
import { AP_RESET_HOLD, ERRNO, KVM_MP_STATE, validPage } from './kvm-constants.js';
import type { RunEvent } from './outcome.js';
import type { OfflineState } from './policy/knobs.js';
import type { Steps } from './steps.js';
import type { Vcpu } from './vcpu.js';

/** The mp_state value of a policy's offline state. */
export function offlineMpState(state: OfflineState): number {
  switch (state) {
    case 'UNINITIALIZED':
      return KVM_MP_STATE.UNINITIALIZED;
    case 'STOPPED':
      return KVM_MP_STATE.STOPPED;
    case 'HALTED':
      return KVM_MP_STATE.HALTED;
    case 'OFFLINE':
      return KVM_MP_STATE.SNPSIM_OFFLINE;
  }
}

/** True while the vCPU is in the reviewer's OFFLINE state (only policies with offlineState OFFLINE). */
export function isOffline(vcpu: Vcpu): boolean {
  return vcpu.mpState === KVM_MP_STATE.SNPSIM_OFFLINE;
}

/** kvm_set_mp_state: with clearPvUnhaltedOnRunnable, every transition to RUNNABLE clears pv_unhalted. */
export function setMpState(vcpu: Vcpu, state: number): void {
  vcpu.mpState = state;
  if (state === KVM_MP_STATE.RUNNABLE && vcpu.vm.policy.clearPvUnhaltedOnRunnable) vcpu.pvUnhalted = false;
}

/** kvm_vcpu_running: RUNNABLE (async-PF halting is not modelled). */
export function isRunning(vcpu: Vcpu): boolean {
  return vcpu.mpState === KVM_MP_STATE.RUNNABLE;
}

/**
 * The version's "apply the AP Creation update at the next reset/INIT" flag: 6.11's
 * `snp_ap_waiting_for_reset` (applyViaVcpuReset policies) or RFC v4/v5's `snp_vmsa_update_on_init`.
 */
export function updateArmed(vcpu: Vcpu): boolean {
  return vcpu.vm.policy.applyViaVcpuReset ? vcpu.snpApWaitingForReset : vcpu.snpVmsaUpdateOnInit;
}

/** Sets the version's flag (see `updateArmed`). */
export function setUpdateArmed(vcpu: Vcpu, armed: boolean): void {
  if (vcpu.vm.policy.applyViaVcpuReset) vcpu.snpApWaitingForReset = armed;
  else vcpu.snpVmsaUpdateOnInit = armed;
}

/** A CREATE_ON_INIT is armed: the next INIT installs a VMSA. */
export function hasPendingCreateOnInit(vcpu: Vcpu): boolean {
  return updateArmed(vcpu) && vcpu.snpVmsaGpa !== vcpu.vm.vmsaNone;
}

/**
 * kvm_vcpu_has_events (the parts the model has): INIT/SIPI pending, pv_unhalted, an NMI, the
 * protected-guest-state request (RFC v4 … mainline all check it), a deliverable fixed interrupt.
 * An OFFLINE vCPU (reviewer) only wakes for an AP Creation update or an INIT that applies a pending
 * CREATE_ON_INIT.
 */
export function hasEvents(vcpu: Vcpu): boolean {
  if (isOffline(vcpu)) {
    return vcpu.reqUpdateProtectedGuestState || (vcpu.lapic.pendingInit && hasPendingCreateOnInit(vcpu));
  }
  return (
    vcpu.lapic.hasPendingInitOrSipi ||
    vcpu.pvUnhalted ||
    vcpu.nmiPending ||
    vcpu.reqUpdateProtectedGuestState ||
    vcpu.lapic.irr.size > 0
  );
}

/** kvm_arch_vcpu_runnable = kvm_vcpu_running || kvm_vcpu_has_events. */
export function isRunnable(vcpu: Vcpu): boolean {
  return isRunning(vcpu) || hasEvents(vcpu);
}

/** kvm_vcpu_kick: a vCPU in guest mode is sent an IPI (IN_GUEST_MODE → EXITING_GUEST_MODE). */
export function kick(vcpu: Vcpu): void {
  if (vcpu.mode === 'IN_GUEST_MODE') vcpu.mode = 'EXITING_GUEST_MODE';
}

/** KVM_SET_MP_STATE accepts these (non-RUNNABLE ones need the in-kernel LAPIC, which the model has). */
const SETTABLE = new Set<number>([
  KVM_MP_STATE.RUNNABLE,
  KVM_MP_STATE.UNINITIALIZED,
  KVM_MP_STATE.HALTED,
  KVM_MP_STATE.AP_RESET_HOLD,
  KVM_MP_STATE.INIT_RECEIVED,
  KVM_MP_STATE.SIPI_RECEIVED,
]);

/**
 * KVM_SET_MP_STATE (kvm_arch_vcpu_ioctl_set_mpstate): 0 or -EINVAL. STOPPED and every other value are
 * refused; SIPI_RECEIVED becomes INIT_RECEIVED with a latched SIPI. Under the reviewer's policy an
 * OFFLINE vCPU refuses every state (setMpStateOnOffline 'reject').
 */
export function kvmSetMpState(vcpu: Vcpu, state: number): number {
  if (!Number.isInteger(state) || !SETTABLE.has(state)) return -ERRNO.EINVAL;
  if (isOffline(vcpu) && vcpu.vm.policy.setMpStateOnOffline === 'reject') return -ERRNO.EINVAL;
  if (state === KVM_MP_STATE.SIPI_RECEIVED) {
    vcpu.lapic.pendingSipi = true;
    setMpState(vcpu, KVM_MP_STATE.INIT_RECEIVED);
  } else {
    setMpState(vcpu, state);
  }
  return 0;
}

/**
 * init_vmcb → sev_es_init_vmcb: the VMCB's VMSA pointer after a reset. 'launchUnlessGuest' (6.11+):
 * KVM's launch VMSA unless the vCPU ever had a guest VMSA (then the pointer is left as it is);
 * 'current' (RFC v4/v5): `svm->vmsa_pa`.
 */
export function initVmcb(vcpu: Vcpu): void {
  const { policy } = vcpu.vm;
  if (policy.initVmcbVmsa === 'current') {
    vcpu.vmcbVmsaPa = vcpu.svmVmsaPa;
  } else if (!vcpu.snpHasGuestVmsa) {
    vcpu.vmcbVmsaPa = vcpu.launchVmsaPa === undefined ? vcpu.vm.vmsaNone : BigInt(vcpu.launchVmsaPa);
    if (vcpu.launchVmsaPa !== undefined) vcpu.vmsaGpa = vcpu.vm.launchVmsaGpa;
  }
}

/**
 * kvm_vcpu_reset(vcpu, init_event = true): LAPIC INIT-reset (software-disabled), NMIs and exceptions
 * dropped, then svm_vcpu_reset: the SNP protected-state update (if armed), then init_vmcb.
 */
export function* kvmVcpuResetInit(vcpu: Vcpu, via: 'request' | 'init', events: RunEvent[]): Steps<void> {
  vcpu.lapic.reset();
  vcpu.nmiPending = false;
  yield* snpInitProtectedGuestState(vcpu, via, events);
  initVmcb(vcpu);
}

/**
 * sev_vcpu_deliver_sipi_vector: the first SIPI only records that it arrived (state comes from the
 * VMSA); a later SIPI completes an AP Reset Hold (GHCB SW_EXITINFO2 := 1, or MSR result 1). The SIPI
 * vector itself is never applied: the hypervisor cannot write the encrypted VMSA.
 */
function deliverSipiVector(vcpu: Vcpu): boolean {
  if (!vcpu.receivedFirstSipi) {
    vcpu.receivedFirstSipi = true;
    return true;
  }
  if (vcpu.apResetHoldType === AP_RESET_HOLD.NAE_EVENT) vmgexitSetResult(vcpu, 0n, 1n);
  else if (vcpu.apResetHoldType === AP_RESET_HOLD.MSR_PROTO) vcpu.ghcbMsr = apResetHoldResponse(1n);
  return false;
}

/**
 * kvm_apic_accept_events: a latched INIT resets the vCPU and then overwrites mp_state (INIT_RECEIVED
 * for an AP, RUNNABLE for the BSP), whatever the update chose; a latched SIPI is taken only in
 * INIT_RECEIVED. INITs are never blocked here (no SMM or GIF in the model). An OFFLINE vCPU
 * (reviewer) takes an INIT only to apply a pending CREATE_ON_INIT and drops INIT/SIPI otherwise.
 */
export function* acceptEvents(vcpu: Vcpu, events: RunEvent[]): Steps<void> {
  const { lapic } = vcpu;
  if (!lapic.hasPendingInitOrSipi) return;
  if (isOffline(vcpu) && !(lapic.pendingInit && hasPendingCreateOnInit(vcpu))) {
    if (lapic.pendingInit) events.push({ kind: 'init-dropped', reason: 'vCPU is OFFLINE (strict policy)' });
    if (lapic.pendingSipi) events.push({ kind: 'sipi-dropped', reason: 'vCPU is OFFLINE (strict policy)' });
    lapic.pendingInit = false;
    lapic.pendingSipi = false;
    return;
  }
  if (lapic.pendingInit) {
    lapic.pendingInit = false;
    yield* kvmVcpuResetInit(vcpu, 'init', events);
    setMpState(vcpu, vcpu.isBsp ? KVM_MP_STATE.RUNNABLE : KVM_MP_STATE.INIT_RECEIVED);
    events.push({ kind: 'init-accepted', mpState: vcpu.mpState });
  }
  if (lapic.pendingSipi) {
    lapic.pendingSipi = false;
    if (vcpu.mpState === KVM_MP_STATE.INIT_RECEIVED) {
      const first = deliverSipiVector(vcpu);
      setMpState(vcpu, KVM_MP_STATE.RUNNABLE);
      events.push({ kind: 'sipi-accepted', vector: lapic.sipiVector, first });
    } else {
      events.push({ kind: 'sipi-dropped', reason: 'not in INIT_RECEIVED (wait-for-SIPI)' });
    }
  }
}

/** True when the VMCB's VMSA pointer names a page (not the policy's sentinel). */
export function hasVmsa(vcpu: Vcpu): boolean {
  return vcpu.vm.policy.vmsaSentinel === 'zero' ? vcpu.vmcbVmsaPa !== 0n : validPage(vcpu.vmcbVmsaPa);
}
