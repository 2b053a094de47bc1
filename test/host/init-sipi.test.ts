/**
 * INIT-SIPI (INIT resets and overwrites mp_state; SEV-ES SIPI semantics), AP Reset Hold, the LAPIC
 * side effects of an INIT-style reset, the PV kick, KVM_SET_MP_STATE, and targets never started.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ERRNO,
  GHCB_MSR,
  KVM_MP_STATE,
  kvmSetMpState,
  SVM_VMGEXIT,
  SVM_VMGEXIT_AP_CREATE,
  SVM_VMGEXIT_AP_CREATE_ON_INIT,
} from '../../host/index.js';
import {
  apInfo1,
  bringUpAp,
  halt,
  makeSystem,
  msrCall,
  nae,
  prepareVmsa,
  setupGhcb,
  startAp,
  VMSA_GPA,
} from './support.js';

test('an AP starts UNINITIALIZED; INIT then SIPI make it RUNNABLE, KVM_RUN returning -EAGAIN meanwhile', () => {
  const { vm } = makeSystem('linux-6.11');
  const ap = vm.vcpu(1);
  assert.equal(ap.mpState, KVM_MP_STATE.UNINITIALIZED);
  assert.equal(ap.run(halt).kind, 'blocked', 'nothing pending: the thread sleeps');
  vm.sendInit(1);
  const afterInit = ap.run(halt);
  assert.equal(afterInit.kind === 'errno' ? afterInit.errno : 0, -ERRNO.EAGAIN);
  assert.equal(ap.mpState, KVM_MP_STATE.INIT_RECEIVED);
  vm.sendSipi(1, 0x9f);
  const afterSipi = ap.run(halt);
  assert.equal(afterSipi.kind, 'exit', 'RUNNABLE: enters the launch VMSA');
  assert.ok(afterSipi.events.some((e) => e.kind === 'sipi-accepted' && e.first));
});

test('INIT drops a latched SIPI; a SIPI outside wait-for-SIPI is dropped', () => {
  const { vm } = makeSystem('linux-6.11');
  const ap = vm.vcpu(1);
  vm.sendSipi(1, 0x10);
  vm.sendInit(1);
  ap.run(halt);
  assert.equal(ap.mpState, KVM_MP_STATE.INIT_RECEIVED, 'the SIPI before the INIT was lost');
  vm.sendSipi(1, 0x10);
  ap.run(halt);
  const bsp = vm.vcpu(0);
  vm.sendSipi(0, 0x10);
  const r = bsp.run(halt);
  assert.ok(r.events.some((e) => e.kind === 'sipi-dropped'));
});

test('CREATE_ON_INIT + INIT: the update installs the VMSA, then INIT overwrites mp_state with INIT_RECEIVED', () => {
  const sys = makeSystem('linux-6.11');
  const { vm } = sys;
  startAp(vm, 1);
  vm.vcpu(1).run(halt);
  const bsp = vm.vcpu(0);
  setupGhcb(bsp);
  prepareVmsa(bsp);
  const r = nae(bsp, {
    exitCode: SVM_VMGEXIT.AP_CREATION,
    info1: apInfo1(1, SVM_VMGEXIT_AP_CREATE_ON_INIT),
    info2: BigInt(VMSA_GPA),
    rax: vm.vmsaFeatures,
  });
  assert.deepEqual([r.info1, r.info2], [0n, 0n]);
  const ap = vm.vcpu(1);
  assert.equal(ap.reqUpdateProtectedGuestState, false, 'CREATE_ON_INIT does not kick');
  assert.equal(ap.run(halt).kind, 'blocked');
  vm.sendInit(1);
  const init = ap.run(halt);
  assert.ok(
    init.events.some(
      (e) => e.kind === 'update-applied' && e.via === 'init' && e.installedGpa === BigInt(VMSA_GPA),
    ),
  );
  assert.equal(ap.mpState, KVM_MP_STATE.INIT_RECEIVED);
  assert.equal(ap.vmcbVmsaPa, BigInt(vm.memory.translate(VMSA_GPA)));
  vm.sendSipi(1, 0);
  let gpa = -1;
  const run = ap.run((e) => {
    gpa = e.vmsaGpa;
    return { kind: 'hlt' };
  });
  assert.equal(run.kind, 'exit', run.detail);
  assert.equal(gpa, VMSA_GPA);
});

test('the INIT-style reset of an applied update software-disables the LAPIC: fixed IPIs are dropped, PV kicks are not', () => {
  const sys = makeSystem('linux-6.11');
  bringUpAp(sys);
  const ap = sys.vm.vcpu(1);
  assert.equal(ap.lapic.softwareEnabled, false, 'kvm_lapic_reset left SVR = 0xFF');
  assert.equal(sys.vm.sendFixed(1, 0x30), false);
  assert.equal(ap.run(halt).kind, 'blocked', 'the dropped IPI does not wake the AP');
  ap.lapic.writeSvr(0x1ff);
  assert.equal(sys.vm.sendFixed(1, 0x30), true, 'once the guest re-enables its APIC');
  assert.equal(sys.vm.pvKick(1), true);
});

test('RFC v4 applies the update without a vCPU reset: the LAPIC keeps its enable bit', () => {
  const sys = makeSystem('rfc-v4');
  const ap = sys.vm.vcpu(1);
  startAp(sys.vm, 1);
  ap.run(halt);
  ap.lapic.writeSvr(0x1ff);
  const bsp = sys.vm.vcpu(0);
  setupGhcb(bsp);
  prepareVmsa(bsp);
  nae(bsp, {
    exitCode: SVM_VMGEXIT.AP_CREATION,
    info1: apInfo1(1, SVM_VMGEXIT_AP_CREATE),
    info2: BigInt(VMSA_GPA),
    rax: sys.vm.vmsaFeatures,
  });
  assert.equal(ap.run(halt).kind, 'exit');
  assert.equal(ap.lapic.softwareEnabled, true);
});

test('AP Reset Hold (MSR protocol): the AP parks in AP_RESET_HOLD; INIT + a second SIPI answer result 1', () => {
  const { vm } = makeSystem('linux-6.11');
  const ap = vm.vcpu(1);
  startAp(vm, 1);
  const hold = msrCall(ap, GHCB_MSR.AP_RESET_HOLD_REQ);
  assert.equal(hold.response, GHCB_MSR.AP_RESET_HOLD_RESP, 'result 0 preset');
  assert.equal(ap.mpState, KVM_MP_STATE.AP_RESET_HOLD);
  vm.sendInit(1);
  vm.sendSipi(1, 0x9f);
  const r = ap.run(halt);
  assert.ok(r.events.some((e) => e.kind === 'sipi-accepted' && !e.first));
  assert.equal(ap.ghcbMsr, (1n << 12n) | GHCB_MSR.AP_RESET_HOLD_RESP);
});

test('AP Reset Hold (NAE AP_HLT_LOOP): the second SIPI sets SW_EXITINFO2 = 1 in the still-mapped GHCB', () => {
  const { vm } = makeSystem('linux-6.11');
  const ap = vm.vcpu(1);
  startAp(vm, 1);
  setupGhcb(ap);
  const r = nae(ap, { exitCode: SVM_VMGEXIT.AP_HLT_LOOP, info1: 0n, info2: 0n });
  assert.deepEqual([r.info1, r.info2], [0n, 0n]);
  assert.equal(ap.mpState, KVM_MP_STATE.AP_RESET_HOLD);
  vm.sendInit(1);
  vm.sendSipi(1, 0x9f);
  ap.run(halt);
  assert.deepEqual([r.ghcb.get('sw_exit_info_1'), r.ghcb.get('sw_exit_info_2')], [0n, 1n]);
});

test('KVM_SET_MP_STATE accepts RUNNABLE, UNINITIALIZED, HALTED, AP_RESET_HOLD, INIT_RECEIVED, SIPI_RECEIVED; else -EINVAL', () => {
  const { vm } = makeSystem('linux-6.11');
  const ap = vm.vcpu(1);
  for (const ok of [0, 1, 3, 9, 2]) {
    assert.equal(kvmSetMpState(ap, ok), 0, `state ${ok}`);
    assert.equal(ap.mpState, ok);
  }
  assert.equal(kvmSetMpState(ap, KVM_MP_STATE.SIPI_RECEIVED), 0);
  assert.equal(
    ap.mpState,
    KVM_MP_STATE.INIT_RECEIVED,
    'SIPI_RECEIVED becomes INIT_RECEIVED + a latched SIPI',
  );
  assert.equal(ap.lapic.pendingSipi, true);
  for (const bad of [5, 6, 7, 8, 10, 11, -1, 0x100, 1.5]) {
    assert.equal(kvmSetMpState(ap, bad), -ERRNO.EINVAL, `state ${bad}`);
  }
});

test('pv_unhalted: cleared on every transition to RUNNABLE only where kvm_set_mp_state does it (6.16)', () => {
  for (const [preset, expected] of [
    ['linux-6.15', true],
    ['linux-6.16', false],
  ] as const) {
    const { vm } = makeSystem(preset);
    const ap = vm.vcpu(1);
    vm.pvKick(1);
    assert.equal(ap.pvUnhalted, true);
    kvmSetMpState(ap, KVM_MP_STATE.RUNNABLE);
    assert.equal(ap.pvUnhalted, expected, preset);
  }
});

test('CREATE to an AP never started: pending until INIT-SIPI (6.11), made RUNNABLE by the kick (RFC v9)', () => {
  for (const preset of ['linux-6.11', 'rfc-v9'] as const) {
    const { vm } = makeSystem(preset);
    const bsp = vm.vcpu(0);
    const ap = vm.vcpu(1);
    setupGhcb(bsp);
    prepareVmsa(bsp);
    nae(bsp, {
      exitCode: SVM_VMGEXIT.AP_CREATION,
      info1: apInfo1(1, SVM_VMGEXIT_AP_CREATE),
      info2: BigInt(VMSA_GPA),
      rax: vm.vmsaFeatures,
    });
    const r = ap.run(halt);
    if (preset === 'linux-6.11') {
      assert.equal(
        r.kind === 'errno' ? r.errno : 0,
        -ERRNO.EAGAIN,
        'KVM_RUN spins: the request is never applied',
      );
      assert.equal(ap.mpState, KVM_MP_STATE.UNINITIALIZED);
      assert.equal(ap.reqUpdateProtectedGuestState, true);
    } else {
      assert.equal(r.kind, 'exit', r.detail);
      assert.ok(r.events.some((e) => e.kind === 'update-applied' && e.installedGpa === BigInt(VMSA_GPA)));
    }
  }
});

test('v5: a STOPPED AP with a pending request returns -EINTR from vcpu_block and never applies it', () => {
  const sys = makeSystem('v5-v9');
  bringUpAp(sys);
  const { vm } = sys;
  const bsp = vm.vcpu(0);
  nae(bsp, { exitCode: SVM_VMGEXIT.AP_CREATION, info1: apInfo1(1, 2), info2: 0n, rax: vm.vmsaFeatures });
  vm.vcpu(1).run(halt);
  assert.equal(vm.vcpu(1).mpState, KVM_MP_STATE.STOPPED);
  nae(bsp, {
    exitCode: SVM_VMGEXIT.AP_CREATION,
    info1: apInfo1(1, SVM_VMGEXIT_AP_CREATE),
    info2: BigInt(VMSA_GPA),
    rax: vm.vmsaFeatures,
  });
  const r = vm.vcpu(1).run(halt);
  assert.equal(r.kind === 'errno' ? r.errno : 0, -ERRNO.EINTR);
  assert.equal(r.vmStopped, false, 'QEMU retries KVM_RUN on -EINTR');
  assert.equal(vm.vcpu(1).reqUpdateProtectedGuestState, true);
});
