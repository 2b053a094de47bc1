/**
 * One KVM_RUN iteration ([LX] arch/x86/kvm/x86.c kvm_arch_vcpu_ioctl_run, vcpu_run, vcpu_block,
 * vcpu_enter_guest; svm/svm.c svm_vcpu_run, svm_handle_exit; svm/sev.c pre_sev_run): process
 * requests, enter guest mode, VMRUN through the platform's VMSA checks, run the caller's guest code,
 * handle the exit. Returns after one guest entry, when the vCPU would sleep, or when KVM_RUN returns
 * to userspace. Atomic steps: [requests] → enter guest mode → VMRUN → guest code + #VMEXIT.
 */

import { PfErr, RmpStatus } from '../psp-firmware/index.js';
import { applyUpdateDirect } from './ap-creation.js';
import { unmapGhcb } from './ghcb/map.js';
import {
  ERRNO,
  errnoName,
  KVM_EXIT,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
  KVM_MEMORY_EXIT_FLAG_PRIVATE,
  KVM_MP_STATE,
  mpStateName,
  PAGE_SIZE,
  PMD_SIZE,
} from './kvm-constants.js';
import {
  acceptEvents,
  hasEvents,
  hasVmsa,
  isRunnable,
  isRunning,
  kvmVcpuResetInit,
  setMpState,
} from './mp-state.js';
import type { GuestCode, GuestEntry, GuestExit, RunEvent, RunOutcome } from './outcome.js';
import { mapGpaRange } from './psc.js';
import { rmpMakePrivate } from './rmp-ops.js';
import { point, type Steps, waitUntil } from './steps.js';
import { SVM_EXIT, SVM_EXIT_ERR } from './svm-constants.js';
import type { Vcpu } from './vcpu.js';
import { emulateHalt, sevHandleVmgexit } from './vmgexit.js';

export interface RunOptions {
  /**
   * When the vCPU would sleep in kvm_vcpu_block: return a `blocked` outcome (the default of
   * `vcpu.run()`), or wait until it is woken (what the scheduler uses).
   */
  readonly whenBlocked?: 'return' | 'wait';
}

/** The vCPU was kicked while in guest mode (read through a call: other steps change `mode`). */
function kicked(vcpu: Vcpu): boolean {
  return vcpu.mode === 'EXITING_GUEST_MODE';
}

/** In-kernel loop iterations before the model reports the vCPU as spinning. */
const MAX_ITERATIONS = 16;

function blocked(vcpu: Vcpu, events: RunEvent[], spinning: boolean): RunOutcome {
  return {
    kind: 'blocked',
    mpState: vcpu.mpState,
    spinning,
    events,
    layer: 'kvm',
    detail: spinning
      ? `vCPU ${vcpu.vcpuId} spins in the kernel in ${mpStateName(vcpu.mpState)} (events pending, nothing applies them)`
      : `vCPU ${vcpu.vcpuId} sleeps in ${mpStateName(vcpu.mpState)}`,
    vmStopped: false,
  };
}

function errno(code: number, events: RunEvent[], detail: string): RunOutcome {
  const stops = code !== -ERRNO.EINTR && code !== -ERRNO.EAGAIN;
  return {
    kind: 'errno',
    errno: code,
    events,
    layer: 'kvm',
    detail: `${detail} (-${errnoName(code)})`,
    vmStopped: stops,
  };
}

/** KVM_EXIT_FAIL_ENTRY for SVM_EXIT_ERR, with the reason as wide as the version reports it. */
function failEntry(vcpu: Vcpu, events: RunEvent[], layer: 'kvm' | 'cpu', detail: string): RunOutcome {
  const reason = vcpu.vm.policy.failEntryReason === 'u32' ? 0xffff_ffffn : 0xffff_ffff_ffff_ffffn;
  return {
    kind: 'userspace',
    exitReason: KVM_EXIT.FAIL_ENTRY,
    failEntry: { hardwareEntryFailureReason: reason, cpu: vcpu.index },
    events,
    layer,
    detail: `${detail}; KVM_EXIT_FAIL_ENTRY, hardware_entry_failure_reason 0x${reason.toString(16)}`,
    vmStopped: true,
  };
}

/**
 * The KVM_REQ_UPDATE_PROTECTED_GUEST_STATE request in vcpu_enter_guest: an INIT-style vCPU reset
 * (RFC v9 … mainline) or the direct update (RFC v4, v5; v5 exits with KVM_EXIT_INTERNAL_ERROR when
 * the VMSA GPA does not resolve).
 */
function* processUpdateRequest(vcpu: Vcpu, events: RunEvent[]): Steps<RunOutcome | undefined> {
  vcpu.reqUpdateProtectedGuestState = false;
  const { policy } = vcpu.vm;
  const before = events.length;
  if (policy.applyViaVcpuReset) yield* kvmVcpuResetInit(vcpu, 'request', events);
  else yield* applyUpdateDirect(vcpu, events);
  const applied = events.slice(before).find((e) => e.kind === 'update-applied');
  if (
    applied?.kind === 'update-applied' &&
    applied.failure !== undefined &&
    policy.applyLookupFailure === 'internalError'
  ) {
    return {
      kind: 'userspace',
      exitReason: KVM_EXIT.INTERNAL_ERROR,
      internal: { suberror: 0, data: [] },
      events,
      layer: 'kvm',
      detail: `snp: AP state update failed (VMSA GPA 0x${(applied.installedGpa ?? vcpu.snpVmsaGpa).toString(16)}: ${applied.failure}); KVM_EXIT_INTERNAL_ERROR`,
      vmStopped: true,
    };
  }
  return undefined;
}

/** vcpu_block: sleep until runnable, accept INIT/SIPI, turn HALTED / AP_RESET_HOLD into RUNNABLE. */
function* vcpuBlock(vcpu: Vcpu, events: RunEvent[], options: RunOptions): Steps<RunOutcome | undefined> {
  const { vm } = vcpu;
  if (!isRunnable(vcpu)) {
    if (options.whenBlocked !== 'wait') return blocked(vcpu, events, false);
    yield* waitUntil(
      `vCPU ${vcpu.vcpuId}: sleeps in ${mpStateName(vcpu.mpState)}`,
      () => isRunnable(vcpu) || vm.stopped !== undefined,
    );
    if (vm.stopped !== undefined) return stoppedOutcome(vcpu, events);
  }
  yield* acceptEvents(vcpu, events);
  const from = vcpu.mpState;
  switch (from) {
    case KVM_MP_STATE.HALTED:
    case KVM_MP_STATE.AP_RESET_HOLD:
      vcpu.pvUnhalted = false;
      setMpState(vcpu, KVM_MP_STATE.RUNNABLE);
      events.push({ kind: 'woken', from, to: KVM_MP_STATE.RUNNABLE });
      return undefined;
    case KVM_MP_STATE.RUNNABLE:
    case KVM_MP_STATE.INIT_RECEIVED:
      return undefined;
    case KVM_MP_STATE.SNPSIM_OFFLINE:
      // The reviewer's OFFLINE state: only an AP Creation update moves it (applied right here).
      return vcpu.reqUpdateProtectedGuestState ? yield* processUpdateRequest(vcpu, events) : undefined;
    default:
      if (vm.policy.blockDefaultCase === 'eintr') {
        return errno(
          -ERRNO.EINTR,
          events,
          `vcpu_block: woken in ${mpStateName(from)}, which the kernel does not expect`,
        );
      }
      return undefined;
  }
}

function stoppedOutcome(vcpu: Vcpu, events: RunEvent[]): RunOutcome {
  return {
    kind: 'vm-stopped',
    events,
    layer: 'kvm',
    detail: `the VMM stopped the VM earlier: ${vcpu.vm.stopped?.detail ?? ''}`,
    vmStopped: true,
  };
}

/** svm_handle_exit for an SEV-ES/SNP guest. */
function* handleExit(vcpu: Vcpu, exit: GuestExit, events: RunEvent[]): Steps<RunOutcome> {
  const resumed = (vmexitCode: number, detail: string): RunOutcome => ({
    kind: 'exit',
    exit: exit.kind,
    vmexitCode,
    events,
    layer: 'kvm',
    detail,
    vmStopped: false,
  });
  switch (exit.kind) {
    case 'intr':
      return resumed(SVM_EXIT.INTR, 'external interrupt');
    case 'hlt':
      emulateHalt(vcpu, KVM_MP_STATE.HALTED);
      return resumed(
        SVM_EXIT.HLT,
        vcpu.mpState === KVM_MP_STATE.HALTED ? 'HLT: vCPU halted' : 'HLT with an event pending',
      );
    case 'shutdown':
      return {
        kind: 'userspace',
        exitReason: KVM_EXIT.SHUTDOWN,
        events,
        layer: 'guest',
        detail: 'guest shutdown (triple fault); the SEV-ES state cannot be reset',
        vmStopped: true,
      };
    case 'npf': {
      const r = handleNpf(vcpu, exit.gpa, exit.exitInfo1);
      return typeof r === 'string' ? resumed(SVM_EXIT.NPF, r) : memoryFaultExit(vcpu, r, events);
    }
    case 'vmgexit':
      return yield* sevHandleVmgexit(vcpu, events);
  }
}

/** A #NPF KVM cannot resolve: the access's privacy differs from the GPA's memory attribute. */
interface AttributeMismatch {
  /** Page-aligned GPA. */
  readonly gpa: number;
  /** The access was private (C-bit 1, EXITINFO1 ENC). */
  readonly isPrivate: boolean;
}

const hexOf = (v: number) => `0x${v.toString(16)}`;

/**
 * #NPF (npf_interception → kvm_mmu_page_fault, then sev_handle_rmp_fault): for an SNP VM the access is
 * private when EXITINFO1 has ENC (PFERR_GUEST_ENC → PFERR_PRIVATE_ACCESS). If that differs from the
 * GPA's memory attribute, kvm_faultin_pfn cannot map it: returned as an AttributeMismatch
 * (KVM_EXIT_MEMORY_FAULT). Otherwise: a private GPA whose page is not assigned yet is made private by
 * guest_memfd's prepare (Guest-Invalid, kvm_gmem_prepare → rmp_make_private); an RMP fault on a 2 MB
 * RMP entry is PSMASHed (sev_handle_rmp_fault, retrying FAIL_INUSE); any other RMP fault is spurious.
 * Returns what KVM did (the guest resumes) or the mismatch.
 */
function handleNpf(vcpu: Vcpu, gpa: number, exitInfo1: number): string | AttributeMismatch {
  const { vm } = vcpu;
  const spa = vm.memory.translate(gpa);
  if (spa < 0) return `#NPF at GPA ${hexOf(gpa)} outside every memslot (MMIO emulation is not modelled)`;
  const gpaPage = gpa - (gpa % PAGE_SIZE);
  const privateAccess = vm.isSnp && Math.floor(exitInfo1 / PfErr.ENC) % 2 === 1;
  if (privateAccess !== vm.isPrivate(gpa)) return { gpa: gpaPage, isPrivate: privateAccess };
  const page = spa - (spa % PAGE_SIZE);
  const entry = vm.platform.firmwareRead(page / PAGE_SIZE);
  if (vm.isPrivate(gpa) && entry !== undefined && !entry.assigned) {
    const status = rmpMakePrivate(vm.platform, page, gpaPage, vm.asid, false);
    return `#NPF: private GPA ${hexOf(gpaPage)} faulted in (RMPUPDATE status ${status})`;
  }
  if (Math.floor(exitInfo1 / PfErr.RMP) % 2 === 1) {
    const head = spa - (spa % PMD_SIZE);
    if (vm.platform.firmwareRead(head / PAGE_SIZE)?.pageSize === 1) {
      let status: number = RmpStatus.FAIL_INUSE;
      for (let tries = 0; status === RmpStatus.FAIL_INUSE && tries < 8; tries++)
        status = vm.platform.psmash(head);
      return `RMP #NPF on a 2 MB RMP entry: PSMASH status ${status}`;
    }
    return 'RMP #NPF on a 4 KB entry: spurious, guest resumed';
  }
  return '#NPF (not an RMP fault): guest resumed';
}

/**
 * KVM_EXIT_MEMORY_FAULT (kvm_mmu_prepare_memory_fault_exit: the faulting page, PAGE_SIZE,
 * KVM_MEMORY_EXIT_FLAG_PRIVATE for a private access; KVM_RUN returns -EFAULT), and the VMM's answer
 * before its next KVM_RUN (the `memoryFaultExit` knob): QEMU's kvm_convert_memory makes the page's
 * attribute the access's, with the RMPUPDATE guest_memfd does (the same conversion as
 * KVM_HC_MAP_GPA_RANGE, psc.ts), and re-enters, so the guest retries the instruction; a failed
 * conversion, or a VMM that does not convert, stops the VM.
 */
function memoryFaultExit(vcpu: Vcpu, fault: AttributeMismatch, events: RunEvent[]): RunOutcome {
  const { vm } = vcpu;
  const memoryFault = {
    gpa: BigInt(fault.gpa),
    size: BigInt(PAGE_SIZE),
    flags: fault.isPrivate ? KVM_MEMORY_EXIT_FLAG_PRIVATE : 0n,
  };
  const access = fault.isPrivate ? 'private' : 'shared';
  const what = `#NPF: ${access} access to GPA ${hexOf(fault.gpa)} whose memory attribute is ${fault.isPrivate ? 'shared' : 'private'}: KVM_EXIT_MEMORY_FAULT (-EFAULT)`;
  const converted =
    vm.policy.memoryFaultExit === 'convert' && mapGpaRange(vm, fault.gpa / PAGE_SIZE, 1, fault.isPrivate);
  const vmm =
    vm.policy.memoryFaultExit !== 'convert'
      ? 'the VMM does not convert: VM stopped'
      : converted
        ? `the VMM converted it to ${access} (kvm_convert_memory) and runs the vCPU again`
        : `the VMM failed to convert it to ${access}: VM stopped`;
  return {
    kind: 'errno',
    errno: -ERRNO.EFAULT,
    exitReason: KVM_EXIT.MEMORY_FAULT,
    memoryFault,
    conversion: { toPrivate: fault.isPrivate, converted },
    events,
    layer: 'kvm',
    detail: `${what}; ${vmm}`,
    vmStopped: !converted,
  };
}

/** vcpu_enter_guest. Undefined means "back to the vcpu_run loop" (r = 1, no guest entry). */
function* vcpuEnterGuest(vcpu: Vcpu, guest: GuestCode, events: RunEvent[]): Steps<RunOutcome | undefined> {
  const { vm } = vcpu;
  if (vcpu.reqUpdateProtectedGuestState) {
    const r = yield* processUpdateRequest(vcpu, events);
    if (r !== undefined) return r;
    if (!isRunning(vcpu)) return undefined;
  }
  if (vcpu.lapic.hasPendingInitOrSipi) {
    yield* acceptEvents(vcpu, events);
    if (!isRunning(vcpu)) return undefined;
  }
  unmapGhcb(vcpu);
  yield* point(`vCPU ${vcpu.vcpuId}: enter guest mode`);
  vcpu.mode = 'IN_GUEST_MODE';
  if (vcpu.reqUpdateProtectedGuestState || vcpu.lapic.hasPendingInitOrSipi) {
    vcpu.mode = 'OUTSIDE_GUEST_MODE';
    events.push({ kind: 'entry-cancelled', reason: 'request-pending' });
    return undefined;
  }
  if (vm.policy.refuseVmrunWithInvalidVmsa && !hasVmsa(vcpu)) {
    vcpu.mode = 'OUTSIDE_GUEST_MODE';
    return failEntry(
      vcpu,
      events,
      'kvm',
      `pre_sev_run refused VMRUN of vCPU ${vcpu.vcpuId}: VMCB vmsa_pa is invalid`,
    );
  }
  yield* point(`vCPU ${vcpu.vcpuId}: VMRUN`);
  const res = vm.platform.vmrun({
    cpu: vcpu.index,
    asid: vm.asid,
    vmsaPa: Number(vcpu.vmcbVmsaPa),
    vmsaGpa: vcpu.vmsaGpa,
    allowedSevFeatures: vm.allowedSevFeatures,
  });
  vcpu.lastVmentryCpu = vcpu.index;
  if (res.kind !== 'entered') {
    vcpu.mode = 'OUTSIDE_GUEST_MODE';
    const what = `VMRUN of vCPU ${vcpu.vcpuId} failed: ${res.reason} (${res.detail})`;
    if (res.kind === 'vmexit' && res.exitCode === SVM_EXIT_ERR) return failEntry(vcpu, events, 'cpu', what);
    const code = res.kind === 'vmexit' ? res.exitCode : -1;
    return {
      kind: 'userspace',
      exitReason: KVM_EXIT.INTERNAL_ERROR,
      internal: {
        suberror: KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
        data: [BigInt.asUintN(64, BigInt(code)), BigInt(vcpu.lastVmentryCpu)],
      },
      events,
      layer: 'cpu',
      detail: `${what}; unexpected exit reason → KVM_EXIT_INTERNAL_ERROR`,
      vmStopped: true,
    };
  }
  yield* point(`vCPU ${vcpu.vcpuId}: in guest`);
  let exit: GuestExit;
  if (kicked(vcpu)) {
    exit = { kind: 'intr' };
  } else {
    const entry: GuestEntry = {
      vcpuId: vcpu.vcpuId,
      vmsaPa: Number(vcpu.vmcbVmsaPa),
      vmsaGpa: vcpu.vmsaGpa,
      sevFeatures: res.sevFeatures,
      guest: vm.guestContext(vcpu, res.sevFeatures),
      writeGhcbMsr: (value: bigint) => {
        vcpu.ghcbMsr = BigInt.asUintN(64, value);
      },
      readGhcbMsr: () => vcpu.ghcbMsr,
    };
    exit = guest(entry);
  }
  vm.platform.vmexit(vcpu.index);
  vcpu.mode = 'OUTSIDE_GUEST_MODE';
  return yield* handleExit(vcpu, exit, events);
}

/**
 * #VMEXIT(VMGEXIT) from the guest already running on `vcpu` (it entered through an earlier KVM_RUN
 * and has just written the GHCB MSR): KVM's handling, as atomic steps. For experiments that care
 * about the issuer's request handling, not its own VMRUN. Throws if the vCPU is not RUNNABLE (its
 * guest cannot be executing anything then).
 */
export function* vmgexitSteps(vcpu: Vcpu): Steps<RunOutcome> {
  const events: RunEvent[] = [];
  if (vcpu.vm.stopped !== undefined) return stoppedOutcome(vcpu, events);
  if (!isRunning(vcpu)) {
    throw new Error(
      `vCPU ${vcpu.vcpuId} is ${mpStateName(vcpu.mpState)}: no guest runs there to execute VMGEXIT`,
    );
  }
  const outcome = yield* sevHandleVmgexit(vcpu, events);
  if (outcome.vmStopped) vcpu.vm.stop(outcome);
  return outcome;
}

/** KVM_RUN, one iteration: see the module comment. */
export function* kvmRunSteps(vcpu: Vcpu, guest: GuestCode, options: RunOptions = {}): Steps<RunOutcome> {
  const { vm } = vcpu;
  const events: RunEvent[] = [];
  if (vm.stopped !== undefined) return stoppedOutcome(vcpu, events);
  const outcome = yield* kvmRunInner(vcpu, guest, options, events);
  if (outcome.vmStopped && outcome.kind !== 'vm-stopped') vm.stop(outcome);
  return outcome;
}

function* kvmRunInner(
  vcpu: Vcpu,
  guest: GuestCode,
  options: RunOptions,
  events: RunEvent[],
): Steps<RunOutcome> {
  if (vcpu.mpState === KVM_MP_STATE.UNINITIALIZED) {
    // kvm_arch_vcpu_ioctl_run: block once, accept INIT/SIPI, return -EAGAIN to userspace.
    if (!hasEvents(vcpu)) {
      if (options.whenBlocked !== 'wait') return blocked(vcpu, events, false);
      yield* waitUntil(
        `vCPU ${vcpu.vcpuId}: UNINITIALIZED, waiting for INIT`,
        () => hasEvents(vcpu) || vcpu.vm.stopped !== undefined,
      );
      if (vcpu.vm.stopped !== undefined) return stoppedOutcome(vcpu, events);
    }
    yield* acceptEvents(vcpu, events);
    return errno(
      -ERRNO.EAGAIN,
      events,
      `KVM_RUN of vCPU ${vcpu.vcpuId} in KVM_MP_STATE_UNINITIALIZED returns after accepting INIT/SIPI`,
    );
  }
  for (let i = 0; i < MAX_ITERATIONS; i++) {
    const r = isRunning(vcpu)
      ? yield* vcpuEnterGuest(vcpu, guest, events)
      : yield* vcpuBlock(vcpu, events, options);
    if (r !== undefined) return r;
  }
  return blocked(vcpu, events, true);
}
