/**
 * Guest RAM is backed with SPA ≡ GPA (mod 2 MiB), as hugepage-backed guest memory is, so a guest
 * VMSA at a 2 MiB-aligned GPA sits on a 2 MiB-aligned system page: the SNP erratum that KVM's
 * 2M-alignment check (reject2MAligned) and Linux's VMSA allocation avoid is reachable when a policy
 * lets such a VMSA through, and a CPU profile with `vmsa2MAlignedErratum` then fails the VMRUN.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type HostPolicy, KVM_EXIT } from '../../host/index.js';
import {
  CPU_PROFILES,
  PLATFORM_PROFILES,
  type PlatformProfile,
  VmrunFailure,
} from '../../psp-firmware/index.js';
import { apInfo1, halt, MiB, makeSystem, nae, policyOf, prepareVmsa, setupGhcb, startAp } from './support.js';

const ERRATUM: PlatformProfile = {
  ...PLATFORM_PROFILES.genoa,
  name: 'genoa-vmsa-2m-erratum',
  cpu: { ...CPU_PROFILES.genoa, vmsa2MAlignedErratum: true },
};
const VMSA_2M = 2 * MiB;
const NO_2M_CHECK: HostPolicy = { ...policyOf('linux-6.11'), reject2MAligned: false };

function createAt2M(profile: PlatformProfile) {
  const sys = makeSystem(NO_2M_CHECK, { profile });
  const { vm } = sys;
  const bsp = vm.vcpu(0);
  startAp(vm, 1);
  assert.equal(vm.vcpu(1).run(halt).kind, 'exit');
  setupGhcb(bsp);
  prepareVmsa(bsp, VMSA_2M);
  const c = nae(bsp, {
    exitCode: 0x8000_0013n,
    info1: apInfo1(1, 1),
    info2: BigInt(VMSA_2M),
    rax: vm.vmsaFeatures,
  });
  assert.deepEqual([c.info1, c.info2], [0n, 0n], `KVM accepted the CREATE: ${c.outcome.detail}`);
  return { sys, run: vm.vcpu(1).run(halt) };
}

test('guest RAM keeps GPA and SPA congruent mod 2 MiB', () => {
  const { vm } = makeSystem('linux-6.11', { launch: false });
  for (const gpa of [0, VMSA_2M, 4 * MiB, 0x21000]) {
    assert.equal(vm.memory.translate(gpa) % (2 * MiB), gpa % (2 * MiB), `GPA 0x${gpa.toString(16)}`);
  }
});

test('a 2 MiB-aligned guest VMSA fails VMRUN under the erratum profile and runs without it', () => {
  const { run } = createAt2M(ERRATUM);
  assert.equal(run.kind, 'userspace', run.detail);
  if (run.kind !== 'userspace') return;
  assert.equal(run.exitReason, KVM_EXIT.FAIL_ENTRY);
  assert.equal(run.layer, 'cpu');
  assert.equal(run.vmStopped, true);
  assert.match(run.detail, new RegExp(VmrunFailure.VMSA_2M_ALIGNED_ERRATUM));
  const plain = createAt2M(PLATFORM_PROFILES.genoa).run;
  assert.equal(plain.kind, 'exit', plain.detail);
});
