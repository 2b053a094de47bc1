/**
 * The SNP launch flow (KVM_SEV_SNP_LAUNCH_START / _UPDATE / _FINISH) through the real firmware
 * model: KVM's checks, the firmware's statuses, the RMP states left behind and the launch digest,
 * which must cover every vCPU's launch VMSA.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  ERRNO,
  INITIAL_VMSA_GPA,
  KVM_SEV_SNP_PAGE_TYPE,
  Kvm,
  PAGE_SIZE,
  PMD_SIZE,
  SNP_PAGE_TYPE_VMSA,
  SNP_POLICY_MASK_RSVD_MBO,
  SNP_POLICY_MASK_VALID,
  snpLaunchFinish,
  snpLaunchStart,
  snpLaunchUpdate,
  type Vm,
} from '../../host/index.js';
import {
  BSP_EIP,
  buildVmsa,
  createSnpSystem,
  LaunchDigest,
  SevStatus,
  SnpPageType,
  VmmType,
} from '../../psp-firmware/index.js';
import { GUEST_POLICY, GUEST_RAM, halt, MiB, makeSystem, policyOf } from './support.js';

function unlaunched(vcpus = 3): Vm {
  return makeSystem('linux-6.11', { vcpus, launch: false }).vm;
}

const page = (fill: number): Uint8Array => new Uint8Array(4096).fill(fill);

test("KVM's launch constants are the Linux values (aliases of the platform's definitions)", () => {
  assert.deepEqual(
    { ...KVM_SEV_SNP_PAGE_TYPE },
    { NORMAL: 1, ZERO: 3, UNMEASURED: 4, SECRETS: 5, CPUID: 6 },
    'KVM_SEV_SNP_PAGE_TYPE_* (uapi kvm.h)',
  );
  assert.equal(SNP_PAGE_TYPE_VMSA, 2);
  assert.equal(
    SNP_POLICY_MASK_VALID,
    0x1b_ffffn,
    'API_MINOR | API_MAJOR | SMT | RSVD_MBO | DEBUG | SINGLE_SOCKET',
  );
  assert.equal(SNP_POLICY_MASK_RSVD_MBO, 1n << 17n);
  assert.equal(INITIAL_VMSA_GPA, 0xffff_ffff_f000);
  assert.deepEqual([PAGE_SIZE, PMD_SIZE], [0x1000, 0x20_0000]);
});

test('LAUNCH_START: KVM checks the flags and policy before any firmware command', () => {
  const vm = unlaunched();
  const cases: readonly [bigint, number, string][] = [
    [GUEST_POLICY, 1, 'flags'],
    [0x10000n, 0, 'bit 17'],
    [GUEST_POLICY | (1n << 18n), 0, 'SNP_POLICY_MASK_VALID'],
    [GUEST_POLICY | (1n << 21n), 0, 'SNP_POLICY_MASK_VALID'],
  ];
  for (const [policy, flags, why] of cases) {
    const r = snpLaunchStart(vm, { policy, flags });
    assert.equal(r.ret, -ERRNO.EINVAL, why);
    assert.equal(r.fwError, 0);
    assert.match(r.detail, /^kvm: /);
  }
  assert.equal(vm.gctxPa, undefined, 'nothing was allocated');
});

test('LAUNCH_START: a firmware policy failure is -EIO with the status; the context is decommissioned', () => {
  const vm = unlaunched();
  const tooNew = GUEST_POLICY | (0xffn << 8n); // ABI major 255 exceeds the firmware's
  const r = snpLaunchStart(vm, { policy: tooNew });
  assert.equal(r.ret, -ERRNO.EIO);
  assert.equal(r.fwError, SevStatus.POLICY_FAILURE);
  assert.match(r.detail, /^firmware: SNP_LAUNCH_START failed/);
  assert.equal(vm.gctxPa, undefined);
  assert.equal(snpLaunchStart(vm, { policy: GUEST_POLICY }).ret, 0, 'a retry with a good policy works');
  assert.equal(snpLaunchStart(vm, { policy: GUEST_POLICY }).ret, -ERRNO.EINVAL, 'only one context per VM');
});

test('LAUNCH_START on an SEV-ES VM is -ENOTTY; LAUNCH_UPDATE before LAUNCH_START is -EINVAL', () => {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  const kvm = new Kvm({ platform, firmware });
  const es = kvm.createVm({ policy: policyOf('linux-6.11'), vmType: 'sev-es', vcpus: 1 });
  assert.ok(es.ok);
  assert.equal(snpLaunchStart(es.vm, { policy: GUEST_POLICY }).ret, -ERRNO.ENOTTY);
  const vm = unlaunched();
  assert.equal(snpLaunchUpdate(vm, { gfnStart: 0x100, data: page(1), type: 1 }).ret, -ERRNO.EINVAL);
});

test('LAUNCH_UPDATE: bad length, flags or page type are -EINVAL; a NORMAL page ends Guest-Valid', () => {
  const vm = unlaunched();
  assert.equal(snpLaunchStart(vm, { policy: GUEST_POLICY }).ret, 0);
  assert.equal(
    snpLaunchUpdate(vm, { gfnStart: 0x100, data: new Uint8Array(100), type: 1 }).ret,
    -ERRNO.EINVAL,
  );
  assert.equal(snpLaunchUpdate(vm, { gfnStart: 0x100, data: page(1), type: 1, flags: 1 }).ret, -ERRNO.EINVAL);
  assert.equal(
    snpLaunchUpdate(vm, { gfnStart: 0x100, data: page(1), type: 2 }).ret,
    -ERRNO.EINVAL,
    'VMSA is KVM-only',
  );
  const r = snpLaunchUpdate(vm, { gfnStart: 0x100, data: page(0xab), type: KVM_SEV_SNP_PAGE_TYPE.NORMAL });
  assert.deepEqual([r.ret, r.pages], [0, 1]);
  const spa = vm.memory.translate(0x100000);
  const e = vm.platform.firmwareRead(spa / 4096);
  assert.equal(e?.assigned, true);
  assert.equal(e?.validated, true);
  assert.equal(e?.immutable, false);
  assert.equal(e?.asid, vm.asid);
  assert.equal(e?.gpa, 0x100000);
});

test('LAUNCH_UPDATE: an assigned page is -EEXIST, a shared GPA -EINVAL; a later failure returns the pages done', () => {
  const vm = unlaunched();
  snpLaunchStart(vm, { policy: GUEST_POLICY });
  assert.equal(snpLaunchUpdate(vm, { gfnStart: 0x101, data: page(1), type: 1 }).ret, 0);
  assert.equal(snpLaunchUpdate(vm, { gfnStart: 0x101, data: page(1), type: 1 }).ret, -ERRNO.EEXIST);
  const two = new Uint8Array(8192);
  const partial = snpLaunchUpdate(vm, { gfnStart: 0x100, data: two, type: 1 });
  assert.deepEqual([partial.ret, partial.pages], [0, 1], 'kvm_gmem_populate returns the count done');
  vm.setPrivate(0x200000, false);
  assert.equal(snpLaunchUpdate(vm, { gfnStart: 0x200, data: page(0), type: 1 }).ret, -ERRNO.EINVAL);
  assert.equal(
    snpLaunchUpdate(vm, { gfnStart: GUEST_RAM / 4096, data: page(0), type: 1 }).ret,
    -ERRNO.EINVAL,
  );
});

test('LAUNCH_UPDATE: a firmware rejection of a CPUID page is -EIO with INVALID_PARAM and the page is reclaimed', () => {
  const vm = unlaunched();
  snpLaunchStart(vm, { policy: GUEST_POLICY });
  const cpuid = new Uint8Array(4096);
  new DataView(cpuid.buffer).setUint32(0, 1000, true); // count > 64
  const r = snpLaunchUpdate(vm, { gfnStart: 0x102, data: cpuid, type: KVM_SEV_SNP_PAGE_TYPE.CPUID });
  assert.equal(r.ret, -ERRNO.EIO);
  assert.equal(r.fwError, SevStatus.INVALID_PARAM);
  assert.equal(vm.platform.firmwareRead(vm.memory.translate(0x102000) / 4096)?.assigned, false);
});

test('LAUNCH_FINISH measures every vCPU launch VMSA: the firmware digest equals an independent computation', () => {
  const vm = unlaunched(3);
  const fw = vm.kvm.firmware;
  assert.ok(fw);
  assert.equal(snpLaunchStart(vm, { policy: GUEST_POLICY }).ret, 0);
  const data = page(0x5a);
  assert.equal(snpLaunchUpdate(vm, { gfnStart: 0x80, data, type: 1 }).ret, 0);
  assert.equal(
    snpLaunchUpdate(vm, { gfnStart: 0x81, data: page(0), type: KVM_SEV_SNP_PAGE_TYPE.ZERO }).ret,
    0,
  );
  const apEip = 0xfffff000;
  const sig = 0xa10f10;
  const r = snpLaunchFinish(vm, { apEip, vcpuSignature: sig });
  assert.equal(r.ret, 0, r.detail);
  assert.equal(vm.launchState, 'running');

  const expected = new LaunchDigest();
  expected.updatePage(SnpPageType.NORMAL, data, 0x80000);
  expected.updatePage(SnpPageType.ZERO, null, 0x81000);
  for (let i = 0; i < 3; i++) {
    const vmsa = buildVmsa({
      eip: i === 0 ? BSP_EIP : apEip,
      vcpuSignature: sig,
      sevFeatures: vm.vmsaFeatures,
      vmmType: VmmType.QEMU,
    });
    expected.updatePage(SnpPageType.VMSA, vmsa, INITIAL_VMSA_GPA);
  }
  const gctx = vm.gctxPa === undefined ? undefined : fw.guestContext(vm.gctxPa);
  assert.ok(gctx);
  assert.equal(Buffer.from(gctx.measurement).toString('hex'), expected.digestHex());
  for (const v of vm.vcpus) {
    const e = vm.platform.firmwareRead((v.launchVmsaPa ?? 0) / 4096);
    assert.equal(e?.vmsa, true, `vCPU ${v.vcpuId} VMSA bit`);
    assert.equal(e?.validated, true);
    assert.equal(e?.gpa, INITIAL_VMSA_GPA);
    assert.equal(v.guestStateProtected, true);
  }
  assert.equal(vm.vcpu(0).run(halt).kind, 'exit', 'the BSP runs its measured VMSA');
});

test('LAUNCH_FINISH: KVM checks its inputs; after the launch a second FINISH fails in the firmware', () => {
  const vm = unlaunched(1);
  assert.equal(snpLaunchFinish(vm).ret, -ERRNO.EINVAL, 'no context yet');
  snpLaunchStart(vm, { policy: GUEST_POLICY });
  assert.equal(snpLaunchFinish(vm, { flags: 2 }).ret, -ERRNO.EINVAL);
  assert.equal(snpLaunchFinish(vm, { hostData: new Uint8Array(31) }).ret, -ERRNO.EINVAL);
  assert.equal(
    snpLaunchFinish(vm, { idBlock: new Uint8Array(96) }).ret,
    -ERRNO.EINVAL,
    'ID block without ID auth',
  );
  assert.equal(snpLaunchFinish(vm, { hostData: new Uint8Array(32).fill(7) }).ret, 0);
  const again = snpLaunchFinish(vm);
  assert.equal(again.ret, -ERRNO.EIO);
  assert.notEqual(again.fwError, 0);
});

test('KVM_CREATE_VM/KVM_SEV_INIT2 input errors are errno values with a reason', () => {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  const kvm = new Kvm({ platform, firmware });
  const policy = policyOf('linux-6.11');
  const bad = [
    kvm.createVm({ policy, vmsaFeatures: 1n << 9n }),
    kvm.createVm({ policy, ghcbVersion: 3 }),
    kvm.createVm({ policy, memory: [{ gpa: 0x800, bytes: 4096 }] }),
    kvm.createVm({
      policy,
      memory: [
        { gpa: 0, bytes: 8192 },
        { gpa: 4096, bytes: 4096 },
      ],
    }),
    kvm.createVm({ policy, memory: [{ gpa: 0, bytes: 1 << 30 }] }),
    kvm.createVm({ policy, vcpus: -1 }),
  ];
  const errnos = bad.map((r) => (r.ok ? 0 : r.errno));
  assert.deepEqual(errnos, [
    -ERRNO.EINVAL,
    -ERRNO.EINVAL,
    -ERRNO.EINVAL,
    -ERRNO.EINVAL,
    -ERRNO.ENOMEM,
    -ERRNO.EINVAL,
  ]);
  for (const r of bad) assert.match(r.ok ? '' : r.detail, /^kvm: \S.{10}/, 'names the layer and the reason');
  const good = kvm.createVm({ policy, vcpus: 1 });
  assert.ok(good.ok);
  assert.equal(good.vm.createVcpu(0), -ERRNO.EINVAL, 'duplicate vcpu_id');
  assert.equal(good.vm.vmsaFeatures, 0x1n, 'SNPActive forced on');
});

test('a VM that fails half-way through KVM_CREATE_VM gives back the pages it took', () => {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  // 16 host pages at 1 MiB; a memslot at GPA 1 MiB is backed there (SPA ≡ GPA mod 2 MiB).
  const kvm = new Kvm({ platform, firmware, hostMemory: { start: MiB, end: MiB + 16 * 4096 } });
  const policy = policyOf('linux-6.11');
  // Guest RAM (8 pages) fits, 16 launch VMSA pages do not.
  const tooMany = kvm.createVm({ policy, memory: [{ gpa: MiB, bytes: 8 * 4096 }], vcpus: 16 });
  assert.equal(tooMany.ok ? 0 : tooMany.errno, -ERRNO.ENOMEM);
  assert.match(tooMany.ok ? '' : tooMany.detail, /^kvm: KVM_CREATE_VCPU 8 failed \(-ENOMEM\)/);
  // Its 8 RAM pages and 8 VMSA pages are free again: 16 vCPUs fit now.
  const good = kvm.createVm({ policy, vcpus: 16 });
  assert.ok(good.ok, good.ok ? '' : good.detail);
  assert.equal(good.vm.asid, 1, 'the failed VM never held an ASID');
});

test('LAUNCH_FINISH copies the ID block and ID auth into host pages and frees them after the command', () => {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  // Three host pages: the context page and the two ID pages, so a leak shows as -ENOMEM.
  const kvm = new Kvm({ platform, firmware, hostMemory: { start: MiB, end: MiB + 3 * 4096 } });
  const created = kvm.createVm({ policy: policyOf('linux-6.11') });
  assert.ok(created.ok, created.ok ? '' : created.detail);
  assert.equal(snpLaunchStart(created.vm, { policy: GUEST_POLICY }).ret, 0);
  const id = { idBlock: new Uint8Array(96), idAuth: new Uint8Array(4096) };
  for (let attempt = 0; attempt < 3; attempt++) {
    const r = snpLaunchFinish(created.vm, id);
    assert.notEqual(r.ret, -ERRNO.ENOMEM, `attempt ${attempt}: ${r.detail}`);
  }
});
