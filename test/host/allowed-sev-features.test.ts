/**
 * ALLOWED_SEV_FEATURES: on a CPU with the feature (the turin profile) KVM programs VMCB 0x138 =
 * vmsa_features | BIT(63) for every vCPU, so VMRUN of a VMSA whose SEV_FEATURES has a bit KVM did not
 * allow fails (VMEXIT_INVALID → KVM_EXIT_FAIL_ENTRY) even when the AP Creation request's RAX matched.
 * On genoa VMCB 0x138 is not honoured and the same VMSA runs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { KVM_EXIT, type RunOutcome, SVM_SEV_FEAT } from '../../host/index.js';
import {
  ALLOWED_SEV_FEATURES_ENABLE,
  CPU_PROFILES,
  PLATFORM_PROFILES,
  type PlatformProfile,
  VmrunFailure,
} from '../../psp-firmware/index.js';
import {
  apInfo1,
  halt,
  makeSystem,
  nae,
  prepareVmsa,
  setupGhcb,
  startAp,
  type TestSystem,
  VMSA_GPA,
} from './support.js';

const TURIN: PlatformProfile = { ...PLATFORM_PROFILES.genoa, name: 'turin', cpu: CPU_PROFILES.turin };

/**
 * linux-6.15 (RAX must equal vmsa_features exactly): AP 1 is started, the BSP builds a VMSA whose
 * SEV_FEATURES are `vmsaSevFeatures` and CREATEs it with RAX = vmsa_features; AP 1's next KVM_RUN.
 */
function createAndRun(
  profile: PlatformProfile,
  vmsaSevFeatures: bigint,
): { sys: TestSystem; run: RunOutcome } {
  const sys = makeSystem('linux-6.15', { profile });
  const { vm } = sys;
  const bsp = vm.vcpu(0);
  startAp(vm, 1);
  assert.equal(vm.vcpu(1).run(halt).kind, 'exit');
  setupGhcb(bsp);
  prepareVmsa(bsp, VMSA_GPA, vmsaSevFeatures);
  const c = nae(bsp, {
    exitCode: 0x8000_0013n,
    info1: apInfo1(1, 1),
    info2: BigInt(VMSA_GPA),
    rax: vm.vmsaFeatures,
  });
  assert.deepEqual([c.info1, c.info2], [0n, 0n], `KVM accepted the CREATE: ${c.outcome.detail}`);
  return { sys, run: vm.vcpu(1).run(halt) };
}

test('KVM programs VMCB 0x138 = vmsa_features | BIT(63) only on a CPU with ALLOWED_SEV_FEATURES', () => {
  const turin = makeSystem('linux-6.15', { profile: TURIN, launch: false });
  assert.equal(turin.vm.allowedSevFeatures, turin.vm.vmsaFeatures | ALLOWED_SEV_FEATURES_ENABLE);
  assert.equal(turin.vm.allowedSevFeatures, 0x8000_0000_0000_0001n);
  const genoa = makeSystem('linux-6.15', { launch: false });
  assert.equal(genoa.vm.allowedSevFeatures, 0n);
});

test('turin: the launch VMSAs (SEV_FEATURES = vmsa_features) run', () => {
  const { vm } = makeSystem('linux-6.15', { profile: TURIN });
  const r = vm.vcpu(0).run(halt);
  assert.equal(r.kind, 'exit', r.detail);
});

test('turin: a VMSA with SEV_FEATURES bits beyond vmsa_features fails VMRUN; genoa runs it', () => {
  // Bits VMRUN has no other check for (not the injection modes, not the opt-in PMC/Secure AVIC).
  const extraBits = [1n, 2n, 5n, 6n, 7n, 8n, 9n, 10n, 12n, 13n, 14n, 15n, 21n].map((b) => 1n << b);
  for (const extra of extraBits) {
    const features = SVM_SEV_FEAT.SNP_ACTIVE | extra;
    const onTurin = createAndRun(TURIN, features).run;
    assert.equal(onTurin.kind, 'userspace', `bit 0x${extra.toString(16)}: ${onTurin.detail}`);
    if (onTurin.kind !== 'userspace') continue;
    assert.equal(onTurin.exitReason, KVM_EXIT.FAIL_ENTRY);
    assert.equal(onTurin.layer, 'cpu');
    assert.equal(onTurin.vmStopped, true);
    assert.match(onTurin.detail, new RegExp(VmrunFailure.SEV_FEATURES_NOT_ALLOWED));
    // linux-6.15 reports SVM_EXIT_ERR as a u64.
    assert.equal(onTurin.failEntry?.hardwareEntryFailureReason, 0xffff_ffff_ffff_ffffn);

    const onGenoa = createAndRun(PLATFORM_PROFILES.genoa, features).run;
    assert.equal(onGenoa.kind, 'exit', `genoa, bit 0x${extra.toString(16)}: ${onGenoa.detail}`);
  }
});

test('turin: a VMSA whose SEV_FEATURES equal vmsa_features runs', () => {
  const { sys, run } = createAndRun(TURIN, SVM_SEV_FEAT.SNP_ACTIVE);
  assert.equal(run.kind, 'exit', run.detail);
  assert.equal(sys.vm.vcpu(1).snpHasGuestVmsa, true);
});
