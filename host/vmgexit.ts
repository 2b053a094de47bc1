/**
 * #VMEXIT(VMGEXIT) handling: sev_handle_vmgexit and sev_handle_vmgexit_msr_protocol
 * ([LX] arch/x86/kvm/svm/sev.c), dispatching AP Creation, HV features, page state change,
 * termination, AP reset hold, the AP jump table and the VMMCALL hypercalls (KVM_HC_KICK_CPU);
 * unknown exit codes are answered as KVM answers them (GHCB_ERR_INVALID_EVENT).
 */
import { type ApCreationResult, snpApCreation } from './ap-creation.js';
import {
  GHCB_ERR,
  GHCB_HV_RESP,
  GHCB_RESERVED_0XFF0_OFFSET,
  GHCB_SHARED_BUFFER_OFFSET,
  type GhcbView,
} from './ghcb/layout.js';
import {
  currentGhcb,
  mapGhcb,
  syncFromGhcb,
  vmgexitBadInput,
  vmgexitSetResult,
  vmgexitSuccess,
} from './ghcb/map.js';
import {
  apResetHoldResponse,
  GENMASK_51_0,
  GHCB_MSR,
  GHCB_MSR_GPA_VALUE_POS,
  GHCB_MSR_HV_FT_POS,
  GHCB_MSR_INFO_MASK,
  GHCB_MSR_PREF_GPA_NONE,
  GHCB_MSR_TERM_REASON_MASK,
  GHCB_MSR_TERM_REASON_POS,
  GHCB_MSR_TERM_REASON_SET_MASK,
  GHCB_MSR_TERM_REASON_SET_POS,
  getMsrBits,
  msrInfo,
  setMsrBits,
  sevInfoResponse,
} from './ghcb/msr-protocol.js';
import { validateVmgexit } from './ghcb/validate.js';
import {
  AP_RESET_HOLD,
  ERRNO,
  GHCB_VERSION_MIN,
  KVM_ENOSYS,
  KVM_EPERM,
  KVM_EXIT,
  KVM_HC_KICK_CPU,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
  KVM_MP_STATE,
  KVM_SYSTEM_EVENT_SEV_TERM,
  PAGE_SIZE,
} from './kvm-constants.js';
import { hasEvents, setMpState } from './mp-state.js';
import type { RunEvent, RunOutcome, VmgexitResult } from './outcome.js';
import { processPsc, pscMsr } from './psc.js';
import type { Steps } from './steps.js';
import {
  EVTINJ_GP,
  SVM_EXIT,
  SVM_VMGEXIT,
  SVM_VMGEXIT_GET_AP_JUMP_TABLE,
  SVM_VMGEXIT_SET_AP_JUMP_TABLE,
} from './svm-constants.js';
import type { Vcpu } from './vcpu.js';

/** GHCB_SCRATCH_AREA_LIMIT: 16 pages [LX] arch/x86/kvm/svm/sev.c */
const GHCB_SCRATCH_AREA_LIMIT = 16n * BigInt(PAGE_SIZE);

/** Hypercall numbers KVM implements (others answer -KVM_ENOSYS) [LX] include/uapi/linux/kvm_para.h */
const KVM_HC_KNOWN_NOT_MODELLED: ReadonlyMap<bigint, string> = new Map([
  [1n, 'KVM_HC_VAPIC_POLL_IRQ'],
  [9n, 'KVM_HC_CLOCK_PAIRING'],
  [10n, 'KVM_HC_SEND_IPI'],
  [11n, 'KVM_HC_SCHED_YIELD'],
  [12n, 'KVM_HC_MAP_GPA_RANGE'],
]);

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

function resumed(
  events: RunEvent[],
  detail: string,
  vmgexit: VmgexitResult,
  layer: 'kvm' | 'ghcb' = 'kvm',
): RunOutcome {
  return {
    kind: 'exit',
    exit: 'vmgexit',
    vmexitCode: SVM_EXIT.VMGEXIT,
    vmgexit,
    events,
    layer,
    detail,
    vmStopped: false,
  };
}

function ghcbResult(vcpu: Vcpu, notModelled?: string): VmgexitResult {
  const ghcb = currentGhcb(vcpu);
  return {
    protocol: 'ghcb',
    ghcbGpa: vcpu.ghcbMsr,
    exitCode: vcpu.exitCode,
    info1: ghcb?.get('sw_exit_info_1'),
    info2: ghcb?.get('sw_exit_info_2'),
    ...(notModelled === undefined ? {} : { notModelled }),
  };
}

function sevTerm(events: RunEvent[], data: bigint, detail: string, vmgexit: VmgexitResult): RunOutcome {
  return {
    kind: 'userspace',
    exitReason: KVM_EXIT.SYSTEM_EVENT,
    systemEvent: { type: KVM_SYSTEM_EVENT_SEV_TERM, data: [data] },
    vmgexit,
    events,
    layer: 'guest',
    detail,
    vmStopped: true,
  };
}

/** __kvm_emulate_halt(vcpu, state): stay RUNNABLE if an event is pending, else enter `state`. */
export function emulateHalt(vcpu: Vcpu, state: number): void {
  if (hasEvents(vcpu)) vcpu.pvUnhalted = false;
  else setMpState(vcpu, state);
}

/**
 * KVM's response to an MSR-protocol request, built on the request value with two set_ghcb_msr_bits
 * calls: GHCBData (GENMASK_ULL(51, 0) at `pos`) := `data`, then GHCBInfo := `code`.
 */
function msrResponse(request: bigint, data: bigint, pos: bigint, code: bigint): bigint {
  return setMsrBits(setMsrBits(request, data, GENMASK_51_0, pos), code, GHCB_MSR_INFO_MASK, 0n);
}

/** sev_handle_vmgexit_msr_protocol. */
function msrProtocol(vcpu: Vcpu, events: RunEvent[]): RunOutcome {
  const { vm } = vcpu;
  const request = vcpu.ghcbMsr;
  const info = msrInfo(request);
  const done = (detail: string, notModelled?: string): RunOutcome =>
    resumed(events, detail, {
      protocol: 'msr',
      request,
      response: vcpu.ghcbMsr,
      ...(notModelled === undefined ? {} : { notModelled }),
    });
  const terminate = (detail: string): RunOutcome =>
    sevTerm(events, vcpu.ghcbMsr, detail, { protocol: 'msr', request, response: vcpu.ghcbMsr });
  switch (info) {
    case GHCB_MSR.SEV_INFO_REQ:
      vcpu.ghcbMsr = sevInfoResponse(vm.ghcbVersion, GHCB_VERSION_MIN, vm.kvm.cbitPosition);
      return done('GHCB MSR: SEV information');
    case GHCB_MSR.CPUID_REQ:
      return done('GHCB MSR: CPUID request (CPUID emulation is not modelled; MSR left as is)', 'CPUID');
    case GHCB_MSR.AP_RESET_HOLD_REQ:
      vcpu.apResetHoldType = AP_RESET_HOLD.MSR_PROTO;
      emulateHalt(vcpu, KVM_MP_STATE.AP_RESET_HOLD);
      vcpu.ghcbMsr = apResetHoldResponse(0n);
      return done('GHCB MSR: AP reset hold');
    case GHCB_MSR.HV_FT_REQ:
      vcpu.ghcbMsr = msrResponse(
        request,
        vm.policy.advertisedHvFeatures,
        GHCB_MSR_HV_FT_POS,
        GHCB_MSR.HV_FT_RESP,
      );
      return done('GHCB MSR: hypervisor features');
    case GHCB_MSR.PREF_GPA_REQ:
      if (!vm.isSnp)
        return terminate('GHCB MSR: preferred GHCB GPA request from a non-SNP guest terminates it');
      vcpu.ghcbMsr = msrResponse(
        request,
        GHCB_MSR_PREF_GPA_NONE,
        GHCB_MSR_GPA_VALUE_POS,
        GHCB_MSR.PREF_GPA_RESP,
      );
      return done('GHCB MSR: preferred GHCB GPA (none)');
    case GHCB_MSR.REG_GPA_REQ: {
      if (!vm.isSnp) return terminate('GHCB MSR: GHCB GPA registration from a non-SNP guest terminates it');
      const gfn = getMsrBits(request, GENMASK_51_0, GHCB_MSR_GPA_VALUE_POS);
      vcpu.ghcbRegisteredGpa = gfn << 12n;
      vcpu.ghcbMsr = msrResponse(request, gfn, GHCB_MSR_GPA_VALUE_POS, GHCB_MSR.REG_GPA_RESP);
      return done(`GHCB MSR: GHCB GPA ${hex(gfn << 12n)} registered for vCPU ${vcpu.vcpuId}`);
    }
    case GHCB_MSR.PSC_REQ:
      if (!vm.isSnp) return terminate('GHCB MSR: page state change from a non-SNP guest terminates it');
      vcpu.ghcbMsr = pscMsr(vm, request);
      return done('GHCB MSR: page state change');
    case GHCB_MSR.TERM_REQ: {
      const set = getMsrBits(request, GHCB_MSR_TERM_REASON_SET_MASK, GHCB_MSR_TERM_REASON_SET_POS);
      const code = getMsrBits(request, GHCB_MSR_TERM_REASON_MASK, GHCB_MSR_TERM_REASON_POS);
      return terminate(`SEV-ES guest requested termination: ${hex(set)}:${hex(code)}`);
    }
    default:
      return done(`GHCB MSR: unknown request ${hex(info)} (MSR left as is)`);
  }
}

/** setup_vmgexit_scratch (sync = true): the scratch bytes, a GHCB error, or -EFAULT. */
function readScratch(vcpu: Vcpu, ghcb: GhcbView, len: bigint): Uint8Array | 'bad' | 'efault' {
  const begin = vcpu.swScratch;
  if (begin === 0n) return 'bad';
  const end = begin + len;
  if (end > 0xffff_ffff_ffff_ffffn) return 'bad';
  const ghcbGpa = vcpu.ghcbMsr;
  if ((begin & ~0xfffn) === ghcbGpa) {
    const lo = ghcbGpa + BigInt(GHCB_SHARED_BUFFER_OFFSET);
    const hi = ghcbGpa + BigInt(GHCB_RESERVED_0XFF0_OFFSET);
    if (begin < lo || end > hi) return 'bad';
    return ghcb.readBytes(Number(begin - ghcbGpa), Number(len));
  }
  if (len > GHCB_SCRATCH_AREA_LIMIT) return 'bad';
  const out = new Uint8Array(Number(len));
  for (let done = 0; done < out.length; ) {
    const gpa = begin + BigInt(done);
    const spa = vcpu.vm.memory.translateBig(gpa);
    if (spa < 0) return 'efault';
    const n = Math.min(PAGE_SIZE - (spa % PAGE_SIZE), out.length - done);
    out.set(vcpu.vm.platform.memory.read(spa, n), done);
    done += n;
  }
  return out;
}

/** Writes the (updated) scratch bytes back where they came from (ghcb_sa_sync). */
function writeScratch(vcpu: Vcpu, ghcb: GhcbView, bytes: Uint8Array): void {
  const begin = vcpu.swScratch;
  if ((begin & ~0xfffn) === vcpu.ghcbMsr) {
    ghcb.writeBytes(Number(begin - vcpu.ghcbMsr), bytes);
    return;
  }
  for (let done = 0; done < bytes.length; ) {
    const spa = vcpu.vm.memory.translateBig(begin + BigInt(done));
    const n = Math.min(PAGE_SIZE - (spa % PAGE_SIZE), bytes.length - done);
    vcpu.vm.platform.memory.write(spa, bytes.subarray(done, done + n));
    done += n;
  }
}

/** kvm_emulate_hypercall for a VMMCALL that reached KVM through the GHCB (SW_EXITCODE 0x81). */
function hypercall(vcpu: Vcpu): string {
  const nr = vcpu.regs.rax;
  let ret: bigint;
  let detail: string;
  if (vcpu.cpl !== 0) {
    ret = -BigInt(KVM_EPERM);
    detail = `hypercall ${nr} at CPL ${vcpu.cpl}: -KVM_EPERM`;
  } else if (nr === BigInt(KVM_HC_KICK_CPU)) {
    const apicId = Number(vcpu.regs.rcx & 0xffff_ffffn);
    const delivered = vcpu.vm.pvKick(apicId);
    ret = 0n;
    detail = `KVM_HC_KICK_CPU ${apicId}: ${delivered ? 'pv_unhalted set' : 'no such APIC ID'}`;
  } else if (KVM_HC_KNOWN_NOT_MODELLED.has(nr)) {
    return `${KVM_HC_KNOWN_NOT_MODELLED.get(nr)} is not modelled (RAX left as is)`;
  } else {
    ret = -BigInt(KVM_ENOSYS);
    detail = `unknown hypercall ${nr}: -KVM_ENOSYS`;
  }
  vcpu.regs.rax = BigInt.asUintN(64, ret);
  return detail;
}

/**
 * The AP Creation result as the version reports it: RFC v4 silent (0,0); v5 … RFC v9 #GP event
 * (1, 0x8000030D); v10+ (2, GHCB_ERR_INVALID_INPUT).
 */
function encodeApCreationError(vcpu: Vcpu, result: ApCreationResult): void {
  if (result.accepted) return;
  switch (vcpu.vm.policy.errorEncoding) {
    case 'silent':
      return;
    case 'gp':
      vmgexitSetResult(vcpu, GHCB_HV_RESP.ISSUE_EXCEPTION, EVTINJ_GP);
      return;
    case 'malformed':
      vmgexitBadInput(vcpu, GHCB_ERR.INVALID_INPUT);
      return;
  }
}

/** sev_handle_vmgexit. Returns the outcome of the exit (the guest resumes unless the VM stops). */
export function* sevHandleVmgexit(vcpu: Vcpu, events: RunEvent[]): Steps<RunOutcome> {
  const { vm } = vcpu;
  const { policy } = vm;
  const ghcbGpa = vcpu.ghcbMsr;
  if (msrInfo(ghcbGpa) !== 0n) return msrProtocol(vcpu, events);
  if (ghcbGpa === 0n) {
    return resumed(events, 'vmgexit: GHCB gpa is not set', { protocol: 'none', reason: 'ghcb-gpa-not-set' });
  }
  const ghcb = mapGhcb(vcpu, ghcbGpa);
  if (ghcb === undefined) {
    return resumed(events, `vmgexit: error mapping GHCB [${hex(ghcbGpa)}] from guest`, {
      protocol: 'none',
      reason: 'ghcb-not-mappable',
    });
  }
  syncFromGhcb(vcpu, ghcb);
  if (vm.isSnp && vcpu.ghcbRegisteredGpa !== ghcbGpa) {
    const detail = `vmgexit: GHCB GPA [${hex(ghcbGpa)}] is not registered.`;
    if (policy.unregisteredGhcb === 'killVm') {
      return {
        kind: 'errno',
        errno: -ERRNO.EINVAL,
        vmgexit: ghcbResult(vcpu),
        events,
        layer: 'kvm',
        detail: `${detail} KVM_RUN returns -EINVAL`,
        vmStopped: true,
      };
    }
    vmgexitBadInput(vcpu, GHCB_ERR.NOT_REGISTERED);
    return resumed(events, detail, ghcbResult(vcpu), 'ghcb');
  }
  const invalid = validateVmgexit(
    {
      ghcbUsage: ghcb.usage(),
      validBitmap: vcpu.validBitmap,
      exitCode: vcpu.exitCode,
      exitInfo1: vcpu.exitInfo1,
      exitInfo2: vcpu.exitInfo2,
      rax: vcpu.regs.rax,
      snp: vm.isSnp,
    },
    policy,
  );
  if (invalid !== undefined) {
    if (policy.ghcbValidationFailure === 'killVm') {
      return {
        kind: 'errno',
        errno: -ERRNO.EINVAL,
        internal: {
          suberror: KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON,
          data: [vcpu.exitCode, BigInt(vcpu.lastVmentryCpu)],
        },
        vmgexit: ghcbResult(vcpu),
        events,
        layer: 'ghcb',
        detail: `${invalid.message}; KVM_RUN returns -EINVAL with KVM_EXIT_INTERNAL_ERROR (pre-ad5b353240c8)`,
        vmStopped: true,
      };
    }
    vmgexitBadInput(vcpu, invalid.reason);
    return resumed(events, invalid.message, ghcbResult(vcpu), 'ghcb');
  }
  vmgexitSuccess(vcpu, 0n);

  switch (vcpu.exitCode) {
    case SVM_VMGEXIT.AP_CREATION: {
      const result = yield* snpApCreation(vcpu, {
        info1: vcpu.exitInfo1,
        info2: vcpu.exitInfo2,
        rax: vcpu.regs.rax,
      });
      encodeApCreationError(vcpu, result);
      const detail = result.accepted
        ? `AP Creation request ${result.request} for APIC ID ${result.targetId} accepted`
        : `AP Creation rejected: ${result.reason}`;
      return resumed(events, detail, ghcbResult(vcpu));
    }
    case SVM_VMGEXIT.HV_FEATURES:
      vmgexitSuccess(vcpu, policy.advertisedHvFeatures);
      return resumed(events, 'hypervisor features', ghcbResult(vcpu));
    case SVM_VMGEXIT.TERM_REQUEST:
      return sevTerm(
        events,
        ghcbGpa,
        `SEV-ES guest requested termination: reason ${hex(vcpu.exitInfo1)} info ${hex(vcpu.exitInfo2)}`,
        ghcbResult(vcpu),
      );
    case SVM_VMGEXIT.AP_HLT_LOOP:
      vcpu.apResetHoldType = AP_RESET_HOLD.NAE_EVENT;
      emulateHalt(vcpu, KVM_MP_STATE.AP_RESET_HOLD);
      return resumed(events, 'AP reset hold (AP_HLT_LOOP)', ghcbResult(vcpu));
    case SVM_VMGEXIT.AP_JUMP_TABLE:
      if (vcpu.exitInfo1 === SVM_VMGEXIT_SET_AP_JUMP_TABLE) vm.apJumpTable = vcpu.exitInfo2;
      else if (vcpu.exitInfo1 === SVM_VMGEXIT_GET_AP_JUMP_TABLE) vmgexitSuccess(vcpu, vm.apJumpTable);
      else vmgexitBadInput(vcpu, GHCB_ERR.INVALID_INPUT);
      return resumed(events, 'AP jump table', ghcbResult(vcpu));
    case SVM_VMGEXIT.NMI_COMPLETE:
      return resumed(events, 'NMI complete', ghcbResult(vcpu));
    case SVM_VMGEXIT.PSC: {
      const scratch = readScratch(vcpu, ghcb, vcpu.exitInfo2);
      if (scratch === 'efault') {
        return {
          kind: 'errno',
          errno: -ERRNO.EFAULT,
          vmgexit: ghcbResult(vcpu),
          events,
          layer: 'kvm',
          detail: 'vmgexit: kvm_read_guest for scratch area failed; KVM_RUN returns -EFAULT',
          vmStopped: true,
        };
      }
      if (scratch === 'bad') {
        vmgexitBadInput(vcpu, GHCB_ERR.INVALID_SCRATCH_AREA);
        return resumed(events, 'vmgexit: invalid scratch area', ghcbResult(vcpu), 'ghcb');
      }
      const ret = processPsc(vm, scratch);
      writeScratch(vcpu, ghcb, scratch);
      vmgexitSuccess(vcpu, ret);
      return resumed(events, `page state change: SW_EXITINFO2 ${hex(ret)}`, ghcbResult(vcpu));
    }
    case SVM_VMGEXIT.UNSUPPORTED_EVENT:
      return {
        kind: 'errno',
        errno: -ERRNO.EINVAL,
        vmgexit: ghcbResult(vcpu),
        events,
        layer: 'guest',
        detail: `vmgexit: unsupported event - exit_info_1=${hex(vcpu.exitInfo1)}, exit_info_2=${hex(vcpu.exitInfo2)}`,
        vmStopped: true,
      };
    case BigInt(SVM_EXIT.VMMCALL): {
      const detail = hypercall(vcpu);
      return resumed(events, detail, ghcbResult(vcpu));
    }
    default:
      return resumed(
        events,
        `exit code ${hex(vcpu.exitCode)} passed validation; its emulation is not modelled`,
        ghcbResult(vcpu, hex(vcpu.exitCode)),
      );
  }
}
