/**
 * SNP AP Creation (NAE event 0x8000_0013), issuer side (`sev_snp_ap_creation`) and target side
 * (`__sev_snp_update_protected_guest_state`), in the shape each policy selects (ap-creation.md §B):
 * RFC v4 / v5 / 6.11 reset the target's pending state before checking (stateChangeOnError), 6.15+
 * and the reviewer check everything first. The issuer never touches the target's VMCB: it records
 * the request under the target's `snp_vmsa_mutex` and posts KVM_REQ_UPDATE_PROTECTED_GUEST_STATE.
 */
import { KVM_MP_STATE, PAGE_SIZE, PMD_SIZE } from './kvm-constants.js';
import { hasVmsa, kick, offlineMpState, setMpState, setUpdateArmed, updateArmed } from './mp-state.js';
import type { RunEvent, UpdateApplied } from './outcome.js';
import type { HostPolicy } from './policy/knobs.js';
import { lock, point, type Steps, unlock, waitUntil } from './steps.js';
import {
  SVM_SEV_FEAT,
  SVM_SEV_FEAT_INT_INJ_MODES,
  SVM_VMGEXIT_AP_CREATE,
  SVM_VMGEXIT_AP_CREATE_ON_INIT,
  SVM_VMGEXIT_AP_DESTROY,
  SVM_VMGEXIT_AP_VMPL_MASK,
  SVM_VMGEXIT_AP_VMPL_SHIFT,
} from './svm-constants.js';
import type { Vcpu } from './vcpu.js';

/** The inputs of one AP Creation VMGEXIT (already through GHCB validation). */
export interface ApCreationInput {
  /** SW_EXITINFO1: request in [31:0] (VMPL in [19:16]), APIC ID in [63:32]. */
  readonly info1: bigint;
  /** SW_EXITINFO2: the VMSA GPA. */
  readonly info2: bigint;
  /** RAX: the SEV_FEATURES the guest put in the VMSA (0 if not marked valid). */
  readonly rax: bigint;
}

/** The handler's verdict; the caller encodes a rejection per `errorEncoding`. */
export interface ApCreationResult {
  readonly accepted: boolean;
  /** KVM's log line for a rejection (vcpu_unimpl text). */
  readonly reason?: string;
  readonly targetId?: number;
  /** Whether the target was sent the update request. */
  readonly kicked: boolean;
  readonly request: number;
  /** The VMPL decoded from SW_EXITINFO1[19:16] (vmplField 'honour' only). */
  readonly vmpl?: number;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/**
 * page_address_valid(vcpu, gpa): 4 KiB aligned and no bit set in reserved_gpa_bits (bits at and
 * above the guest MAXPHYADDR, minus the C-bit, which sev_vcpu_after_set_cpuid unreserves) [LX].
 */
export function pageAddressValid(gpa: bigint, guestMaxPhyAddr: number, cbitPosition: number): boolean {
  if ((gpa & BigInt(PAGE_SIZE - 1)) !== 0n) return false;
  const reserved =
    ~((1n << BigInt(guestMaxPhyAddr)) - 1n) & ~(1n << BigInt(cbitPosition)) & ((1n << 64n) - 1n);
  return (gpa & reserved) === 0n;
}

function sevFeaturesError(policy: HostPolicy, rax: bigint, vmsaFeatures: bigint): string | undefined {
  if (policy.sevFeaturesCheck === 'exact') {
    return rax === vmsaFeatures
      ? undefined
      : `vmgexit: mismatched AP sev_features [${hex(rax)}] != [${hex(vmsaFeatures)}] from guest`;
  }
  if (((rax ^ vmsaFeatures) & SVM_SEV_FEAT_INT_INJ_MODES) !== 0n) {
    return `vmgexit: invalid AP injection mode [${hex(rax)}] from guest`;
  }
  if (policy.sevFeaturesCheck === 'snpActive' && (rax & SVM_SEV_FEAT.SNP_ACTIVE) === 0n) {
    return `vmgexit: AP sev_features [${hex(rax)}] from guest lack SNPActive`;
  }
  return undefined;
}

function gpaError(issuer: Vcpu, gpa: bigint): string | undefined {
  const { policy, guestMaxPhyAddr, kvm } = issuer.vm;
  if (policy.gpaCheckAtExit && !pageAddressValid(gpa, guestMaxPhyAddr, kvm.cbitPosition)) {
    return `vmgexit: invalid AP VMSA address [${hex(gpa)}] from guest`;
  }
  if (policy.reject2MAligned && gpa % BigInt(PMD_SIZE) === 0n) {
    return `vmgexit: AP VMSA address [${hex(gpa)}] from guest is unsafe as it is 2M aligned`;
  }
  return undefined;
}

/** The target has a pending update that installs a VMSA / that takes it offline. */
function pendingUpdate(target: Vcpu): 'create' | 'destroy' | undefined {
  if (!target.reqUpdateProtectedGuestState && !updateArmed(target)) return undefined;
  return target.snpVmsaGpa === target.vm.vmsaNone ? 'destroy' : 'create';
}

/** The reviewer's sanity check: is the target already created (rejectCreateWhenOnline)? */
function onlineError(target: Vcpu): string | undefined {
  const mode = target.vm.policy.rejectCreateWhenOnline;
  if (mode === 'never') return undefined;
  const pending = pendingUpdate(target);
  const running = hasVmsa(target) && pending !== 'destroy' && (mode === 'always' || target.snpHasGuestVmsa);
  if (pending !== 'create' && !running) return undefined;
  return `vmgexit: AP ${target.vcpuId} is already created (rejectCreateWhenOnline=${mode})`;
}

/**
 * kvm_make_request(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE) + kvm_vcpu_kick, with KVM_REQUEST_WAIT
 * (kickWait) making the issuer wait until the target is out of guest mode (its IPI handled).
 * RFC v9 (uninitializedTargetOnCreate 'runnable') also made an UNINITIALIZED target RUNNABLE here.
 */
function* makeRequestAndKick(issuer: Vcpu, target: Vcpu): Steps<void> {
  const { policy } = target.vm;
  target.reqUpdateProtectedGuestState = true;
  if (policy.uninitializedTargetOnCreate === 'runnable' && target.mpState === KVM_MP_STATE.UNINITIALIZED) {
    setMpState(target, KVM_MP_STATE.RUNNABLE);
  }
  kick(target);
  if (policy.kickWait && target !== issuer) {
    yield* waitUntil(
      `vCPU ${issuer.vcpuId}: KVM_REQUEST_WAIT until vCPU ${target.vcpuId} leaves guest mode`,
      () => target.mode === 'OUTSIDE_GUEST_MODE',
    );
  }
}

/**
 * sev_snp_ap_creation: the issuer's handling of one AP Creation request, as atomic steps (the
 * target lookup, then under the target's mutex the state change and the kick, with the kick after
 * the unlock where the version did so).
 */
export function* snpApCreation(issuer: Vcpu, input: ApCreationInput): Steps<ApCreationResult> {
  const { vm } = issuer;
  const { policy } = vm;
  let request = Number(input.info1 & 0xffff_ffffn);
  let vmpl: number | undefined;
  if (policy.vmplField === 'honour') {
    vmpl = Number((BigInt(request) & SVM_VMGEXIT_AP_VMPL_MASK) >> SVM_VMGEXIT_AP_VMPL_SHIFT);
    request &= ~Number(SVM_VMGEXIT_AP_VMPL_MASK);
  }
  const apicId = Number(input.info1 >> 32n);
  const base = { request, ...(vmpl === undefined ? {} : { vmpl }) };
  const target = vm.vcpuById(apicId);
  if (target === undefined) {
    return {
      ...base,
      accepted: false,
      kicked: false,
      reason: `vmgexit: invalid AP APIC ID [${hex(apicId)}] from guest`,
    };
  }
  if (!policy.allowSelfTarget && target === issuer) {
    return {
      ...base,
      accepted: false,
      kicked: false,
      targetId: apicId,
      reason: 'vmgexit: AP Creation names the issuing vCPU',
    };
  }
  const none = vm.vmsaNone;
  const gpa = input.info2;
  yield* lock(target.snpVmsaMutex, `vCPU ${issuer.vcpuId}: lock vCPU ${apicId} snp_vmsa_mutex`);
  // Whether the target is already created is judged on its state before this request touches it.
  const created = onlineError(target);

  let error: string | undefined;
  let kick: boolean;
  if (policy.stateChangeOnError) {
    // RFC v4 / v5 / 6.11: kick := true and the pending state is reset before any check.
    // 6.11 arms snp_ap_waiting_for_reset for every request; RFC v4/v5 clear snp_vmsa_update_on_init.
    kick = true;
    target.snpVmsaGpa = none;
    setUpdateArmed(target, policy.applyViaVcpuReset);
    if (request < SVM_VMGEXIT_AP_DESTROY) error = sevFeaturesError(policy, input.rax, vm.vmsaFeatures);
    if (error === undefined) {
      if (request === SVM_VMGEXIT_AP_CREATE_ON_INIT || request === SVM_VMGEXIT_AP_CREATE) {
        if (request === SVM_VMGEXIT_AP_CREATE_ON_INIT) {
          kick = false;
          setUpdateArmed(target, true);
        }
        error = gpaError(issuer, gpa) ?? created;
        if (error === undefined) target.snpVmsaGpa = gpa;
      } else if (request !== SVM_VMGEXIT_AP_DESTROY) {
        error = `vmgexit: invalid AP creation request [${hex(request)}] from guest`;
      }
    }
  } else {
    // 6.15+ (d26638bfcdfc) and the reviewer: every check before any change; no kick on error.
    if (request === SVM_VMGEXIT_AP_CREATE_ON_INIT || request === SVM_VMGEXIT_AP_CREATE) {
      error = sevFeaturesError(policy, input.rax, vm.vmsaFeatures) ?? gpaError(issuer, gpa) ?? created;
    } else if (request !== SVM_VMGEXIT_AP_DESTROY) {
      error = `vmgexit: invalid AP creation request [${hex(request)}] from guest`;
    }
    kick = error === undefined && request !== SVM_VMGEXIT_AP_CREATE_ON_INIT;
    if (error === undefined) {
      target.snpVmsaGpa = request === SVM_VMGEXIT_AP_DESTROY ? none : gpa;
      // snp_ap_waiting_for_reset is armed by every request; RFC v4/v5's flag only by CREATE_ON_INIT.
      setUpdateArmed(target, policy.applyViaVcpuReset || request === SVM_VMGEXIT_AP_CREATE_ON_INIT);
    }
  }

  if (kick && policy.kickUnderLock) yield* makeRequestAndKick(issuer, target);
  unlock(target.snpVmsaMutex);
  if (kick && !policy.kickUnderLock) {
    yield* point(`vCPU ${issuer.vcpuId}: unlocked vCPU ${apicId}, kick next`);
    yield* makeRequestAndKick(issuer, target);
  }
  return {
    ...base,
    accepted: error === undefined,
    kicked: kick,
    targetId: apicId,
    ...(error === undefined ? {} : { reason: error }),
  };
}

/**
 * __sev_snp_update_protected_guest_state (caller holds the target's snp_vmsa_mutex): take the vCPU
 * offline, then install the pending VMSA if there is one and its GPA resolves to a page.
 */
export function updateProtectedGuestState(vcpu: Vcpu, via: 'request' | 'init'): UpdateApplied {
  const { vm } = vcpu;
  const { policy } = vm;
  const none = vm.vmsaNone;
  const offline = offlineMpState(policy.offlineState);
  if (policy.applyViaVcpuReset || policy.clearPvUnhaltedOnCreate) vcpu.pvUnhalted = false;
  setMpState(vcpu, offline);
  vcpu.vmcbVmsaPa = none;
  vcpu.svmVmsaPa = none;
  const gpa = vcpu.snpVmsaGpa;
  const done = (failure: UpdateApplied['failure'], installedGpa?: bigint): UpdateApplied => ({
    kind: 'update-applied',
    via,
    installedGpa,
    failure,
    mpState: vcpu.mpState,
    vmsaPa: vcpu.vmcbVmsaPa,
  });
  if (gpa === none) {
    vcpu.pvUnhalted = false;
    return done(undefined);
  }
  if (policy.applyViaVcpuReset && policy.invalidateGpaOnLookupFailure) vcpu.snpVmsaGpa = none;
  // RFC v4 checked alignment only here (no check at VMGEXIT time), silently staying offline.
  if (!policy.gpaCheckAtExit && gpa % BigInt(PAGE_SIZE) !== 0n) return done('unaligned');
  const spa = vm.memory.translateBig(gpa);
  if (spa < 0) return done('no-memslot');
  if (policy.applyViaVcpuReset) {
    vcpu.snpHasGuestVmsa = true;
    vcpu.snpVmsaGpa = none;
  }
  vcpu.vmcbVmsaPa = BigInt(spa);
  vcpu.svmVmsaPa = BigInt(spa);
  vcpu.vmsaGpa = Number(gpa);
  if (policy.clearPvUnhaltedOnCreate) vcpu.pvUnhalted = false;
  setMpState(vcpu, KVM_MP_STATE.RUNNABLE);
  return done(undefined, gpa);
}

/**
 * sev_snp_init_protected_guest_state, part of every INIT-style reset: applies the pending update if
 * the version's flag is armed (snp_ap_waiting_for_reset, or RFC v4/v5's snp_vmsa_update_on_init).
 */
export function* snpInitProtectedGuestState(
  vcpu: Vcpu,
  via: 'request' | 'init',
  events: RunEvent[],
): Steps<void> {
  yield* lock(vcpu.snpVmsaMutex, `vCPU ${vcpu.vcpuId}: lock own snp_vmsa_mutex (reset)`);
  if (!updateArmed(vcpu)) {
    unlock(vcpu.snpVmsaMutex);
    events.push({ kind: 'update-skipped', via, reason: 'no AP Creation update armed' });
    return;
  }
  setUpdateArmed(vcpu, false);
  events.push(updateProtectedGuestState(vcpu, via));
  unlock(vcpu.snpVmsaMutex);
}

/**
 * The request path of vcpu_enter_guest for policies that apply the update directly (RFC v4, v5):
 * the update runs unconditionally under the target's mutex.
 */
export function* applyUpdateDirect(vcpu: Vcpu, events: RunEvent[]): Steps<UpdateApplied> {
  yield* lock(vcpu.snpVmsaMutex, `vCPU ${vcpu.vcpuId}: lock own snp_vmsa_mutex (request)`);
  const result = updateProtectedGuestState(vcpu, 'request');
  events.push(result);
  unlock(vcpu.snpVmsaMutex);
  return result;
}
