import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  INVALID_PAGE,
  KVM_EXIT,
  KVM_MP_STATE,
  SVM_EXIT,
  SVM_VMGEXIT,
  SVM_VMGEXIT_AP_CREATE,
  SVM_VMGEXIT_AP_DESTROY,
} from '../../host/index.js';
import { apInfo1, halt, makeSystem, nae, prepareVmsa, setupGhcb, startAp, VMSA_GPA } from './support.js';

test('Linux bring-up on 6.11: CREATE replaces a parked AP, which then runs its new VMSA', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  const ap = vm.vcpu(1);
  startAp(vm, 1);
  const parked = ap.run(halt);
  assert.equal(parked.kind, 'exit', parked.detail);
  assert.equal(ap.mpState, KVM_MP_STATE.HALTED);

  setupGhcb(bsp);
  prepareVmsa(bsp);
  const r = nae(bsp, {
    exitCode: SVM_VMGEXIT.AP_CREATION,
    info1: apInfo1(1, SVM_VMGEXIT_AP_CREATE),
    info2: BigInt(VMSA_GPA),
    rax: vm.vmsaFeatures,
  });
  assert.equal(r.outcome.kind, 'exit', r.outcome.detail);
  assert.deepEqual([r.info1, r.info2], [0n, 0n]);
  assert.equal(ap.reqUpdateProtectedGuestState, true);

  let entered: { vmsaGpa: number } | undefined;
  const run = ap.run((e) => {
    entered = { vmsaGpa: e.vmsaGpa };
    return { kind: 'hlt' };
  });
  assert.equal(run.kind, 'exit', run.detail);
  assert.equal(run.kind === 'exit' ? run.vmexitCode : -1, SVM_EXIT.HLT);
  assert.deepEqual(entered, { vmsaGpa: VMSA_GPA });
  assert.equal(ap.snpHasGuestVmsa, true);
  assert.equal(ap.vmcbVmsaPa, BigInt(vm.memory.translate(VMSA_GPA)));
  assert.ok(run.events.some((e) => e.kind === 'update-applied' && e.installedGpa === BigInt(VMSA_GPA)));
});

test('DESTROY on 6.11 leaves the AP HALTED with INVALID_PAGE; a PV kick then fails VMRUN (0xffffffff)', () => {
  const { vm } = makeSystem('linux-6.11');
  const bsp = vm.vcpu(0);
  const ap = vm.vcpu(1);
  startAp(vm, 1);
  setupGhcb(bsp);
  prepareVmsa(bsp);
  nae(bsp, {
    exitCode: SVM_VMGEXIT.AP_CREATION,
    info1: apInfo1(1, 1),
    info2: BigInt(VMSA_GPA),
    rax: vm.vmsaFeatures,
  });
  assert.equal(ap.run(halt).kind, 'exit');
  const d = nae(bsp, {
    exitCode: SVM_VMGEXIT.AP_CREATION,
    info1: apInfo1(1, SVM_VMGEXIT_AP_DESTROY),
    info2: 0n,
  });
  assert.deepEqual([d.info1, d.info2], [0n, 0n]);
  const applied = ap.run(halt);
  assert.equal(applied.kind, 'blocked', applied.detail);
  assert.equal(ap.mpState, KVM_MP_STATE.HALTED);
  assert.equal(ap.vmcbVmsaPa, INVALID_PAGE);
  vm.pvKick(1);
  const failed = ap.run(halt);
  assert.equal(failed.kind, 'userspace', failed.detail);
  if (failed.kind === 'userspace') {
    assert.equal(failed.exitReason, KVM_EXIT.FAIL_ENTRY);
    assert.equal(failed.failEntry?.hardwareEntryFailureReason, 0xffff_ffffn);
    assert.equal(failed.layer, 'cpu');
  }
  assert.equal(failed.vmStopped, true);
  assert.equal(bsp.run(halt).kind, 'vm-stopped');
});
