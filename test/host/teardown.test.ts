/**
 * VM teardown and ASID reuse: kvm_destroy_vm decommissions the SNP context, gives every private page
 * back to the hypervisor and puts the ASID in the reclaim map; KVM reuses it only when no free ASID is
 * left, after WBINVD on all CPUs and SNP_DF_FLUSH (sev_flush_asids), and the firmware then lets
 * SNP_ACTIVATE bind it again.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Kvm, snpLaunchFinish, snpLaunchStart, type Vm } from '../../host/index.js';
import {
  AccessKind,
  createSnpSystem,
  type Firmware,
  type Platform,
  SevStatus,
} from '../../psp-firmware/index.js';
import { bringUpAp, GUEST_POLICY, GUEST_RAM, halt, MiB, policyOf } from './support.js';

interface Host {
  readonly platform: Platform;
  readonly firmware: Firmware;
  readonly kvm: Kvm;
  /** WBINVD-on-all-CPUs count. */
  wbinvds: () => number;
}

function host(minSevAsid?: number): Host {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  let n = 0;
  platform.onWbinvd(() => {
    n++;
  });
  const kvm = new Kvm({ platform, firmware, ...(minSevAsid === undefined ? {} : { minSevAsid }) });
  return { platform, firmware, kvm, wbinvds: () => n };
}

/** A launched SNP VM with 2 vCPUs whose BSP has run once. */
function launchedVm(h: Host): Vm {
  const created = h.kvm.createVm({
    policy: policyOf('linux-6.11'),
    memory: [{ gpa: 0, bytes: GUEST_RAM }],
    vcpus: 2,
  });
  assert.ok(created.ok, created.ok ? '' : created.detail);
  const { vm } = created;
  const start = snpLaunchStart(vm, { policy: GUEST_POLICY });
  assert.equal(start.ret, 0, start.detail);
  const finish = snpLaunchFinish(vm, { apEip: 0xfffff000 });
  assert.equal(finish.ret, 0, finish.detail);
  const run = vm.vcpu(0).run(halt);
  assert.equal(run.kind, 'exit', run.detail);
  return vm;
}

/** Every page the VM's memory and KVM's launch VMSAs occupy is hypervisor-owned again. */
function assertAllShared(h: Host, spas: readonly number[], asid: number): void {
  assert.equal(h.platform.rmp.asidCount(asid), 0, `RMP entries still assigned to ASID ${asid}`);
  for (const spa of spas)
    assert.equal(h.platform.hostAccess(spa, AccessKind.WRITE), 0, `0x${spa.toString(16)}`);
}

test('a destroyed VM leaves no private page, and its ASID waits for reclaim (dirty in the firmware)', () => {
  const h = host();
  const vm = launchedVm(h);
  const asid = vm.asid;
  assert.equal(h.firmware.asidState(asid), 'in-use');
  const spas = [
    ...vm.vcpus.map((v) => v.launchVmsaPa!),
    ...Array.from({ length: GUEST_RAM / 4096 }, (_, i) => vm.memory.translate(i * 4096)),
  ];
  assert.ok(h.platform.rmp.asidCount(asid) > 0);
  const r = h.kvm.destroyVm(vm);
  assert.ok(r.ok, r.detail);
  assert.equal(r.asidState, 'reclaim');
  assert.equal(r.decommissionStatus, SevStatus.SUCCESS);
  assert.deepEqual(r.pagesLeaked, []);
  assert.ok(r.pagesReclaimed >= 3, r.detail); // two launch VMSAs and the context page at least
  assertAllShared(h, spas, asid);
  assert.equal(vm.gctxPa, undefined);
  assert.equal(h.firmware.asidState(asid), 'dirty');
  assert.deepEqual(h.kvm.sevAsids, { bound: [], reclaim: [asid] });
  // The VMM is gone: KVM_RUN answers vm-stopped; a second destroy is refused.
  assert.equal(vm.vcpu(0).run(halt).kind, 'vm-stopped');
  const again = h.kvm.destroyVm(vm);
  assert.equal(again.ok, false);
  assert.match(again.detail, /already destroyed/);
});

test('ASIDs are reused only when none is free: WBINVD, then SNP_DF_FLUSH, then SNP_ACTIVATE succeeds', () => {
  const h = host(3); // SEV-ES/SNP ASIDs 1 and 2
  const vm1 = launchedVm(h);
  const vm2 = launchedVm(h);
  assert.deepEqual([vm1.asid, vm2.asid], [1, 2]);
  const full = h.kvm.createVm({ policy: policyOf('linux-6.11'), vcpus: 1 });
  assert.equal(full.ok, false);
  assert.match(full.ok ? '' : full.detail, /no free SEV-ES\/SNP ASID \(none awaits reclaim\)/);

  assert.ok(h.kvm.destroyVm(vm1).ok);
  // The firmware refuses to clean a deactivated ASID before WBINVD: DF_FLUSH alone does not do.
  assert.equal(h.firmware.dfFlush(), SevStatus.WBINVD_REQUIRED);
  assert.equal(h.firmware.asidState(1), 'dirty');
  const before = h.wbinvds();
  const vm3 = launchedVm(h);
  assert.equal(vm3.asid, 1, 'the reclaimed ASID is reused');
  assert.equal(h.wbinvds(), before + 1, 'one WBINVD on all CPUs for the recycle');
  assert.equal(h.firmware.asidState(1), 'in-use');
  assert.deepEqual(h.kvm.sevAsids, { bound: [1, 2], reclaim: [] });
  // vm2 is unaffected: its halted BSP, kicked, enters the guest again.
  assert.equal(h.firmware.asidState(2), 'in-use');
  vm2.pvKick(0);
  const again = vm2.vcpu(0).run(halt);
  assert.equal(again.kind, 'exit', again.detail);
});

test("while free ASIDs remain, a destroyed VM's ASID is not reused (no flush)", () => {
  const h = host();
  const vm1 = launchedVm(h);
  assert.ok(h.kvm.destroyVm(vm1).ok);
  const before = h.wbinvds();
  const vm2 = launchedVm(h);
  assert.equal(vm2.asid, vm1.asid + 1);
  assert.equal(h.wbinvds(), before);
  assert.deepEqual(h.kvm.sevAsids, { bound: [vm2.asid], reclaim: [vm1.asid] });
});

test('guest-owned VMSA pages (AP Creation) are given back too', () => {
  const h = host();
  const created = h.kvm.createVm({
    policy: policyOf('linux-6.11'),
    memory: [{ gpa: 0, bytes: GUEST_RAM }],
    vcpus: 2,
  });
  assert.ok(created.ok);
  const { vm } = created;
  assert.equal(snpLaunchStart(vm, { policy: GUEST_POLICY }).ret, 0);
  assert.equal(snpLaunchFinish(vm, { apEip: 0xfffff000 }).ret, 0);
  bringUpAp({ platform: h.platform, firmware: h.firmware, kvm: h.kvm, vm }, 1);
  assert.equal(vm.vcpu(1).snpHasGuestVmsa, true);
  const guestVmsa = h.platform.firmwareRead(Number(vm.vcpu(1).vmcbVmsaPa) / 4096);
  assert.equal(guestVmsa?.vmsa, true);
  const r = h.kvm.destroyVm(vm);
  assert.ok(r.ok, r.detail);
  assert.equal(h.platform.rmp.asidCount(vm.asid), 0);
  assert.equal(h.platform.firmwareRead(Number(vm.vcpu(1).vmcbVmsaPa) / 4096)?.assigned, false);
});

test('a failed SNP_DECOMMISSION leaks the ASID: it is never recycled', () => {
  const h = host(2); // one SEV-ES/SNP ASID
  const vm = launchedVm(h);
  const realContext = vm.gctxPa!;
  vm.gctxPa = realContext + 4096; // not a context page: DECOMMISSION fails
  const r = h.kvm.destroyVm(vm);
  assert.ok(r.ok);
  assert.equal(r.asidState, 'leaked');
  assert.notEqual(r.decommissionStatus, SevStatus.SUCCESS);
  assert.equal(r.layer, 'firmware');
  assert.match(r.detail, /SNP_DECOMMISSION failed .* ASID 1 leaked/);
  assert.deepEqual(h.kvm.sevAsids, { bound: [1], reclaim: [] });
  const next = h.kvm.createVm({ policy: policyOf('linux-6.11'), vcpus: 1 });
  assert.equal(next.ok, false);
  assert.equal(next.ok ? 0 : next.errno, -16); // -EBUSY
});

test('a VM created after a reuse runs its launch VMSAs (VMRUN sees a clean, re-activated ASID)', () => {
  const h = host(2);
  const vm1 = launchedVm(h);
  assert.ok(h.kvm.destroyVm(vm1).ok);
  const vm2 = launchedVm(h); // asserts launch + first VMRUN
  assert.equal(vm2.asid, vm1.asid);
  const ap = vm2.vcpu(1);
  vm2.sendInit(ap.vcpuId);
  vm2.sendSipi(ap.vcpuId, 0);
  assert.equal(ap.run(halt).kind, 'errno'); // -EAGAIN: INIT/SIPI accepted
  const r = ap.run(halt);
  assert.equal(r.kind, 'exit', r.detail);
  assert.equal(r.kind === 'exit' ? r.exit : '', 'hlt');
});

test('2 MB private pages: made shared whole when the memslot covers them, else PSMASHed then per 4 KB', () => {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  // Host memory from 3 MiB: a memslot at GPA 1 MiB gets SPA 3 MiB, so GPA and SPA agree mod 2 MiB.
  const kvm = new Kvm({ platform, firmware, hostMemory: { start: 3 * MiB, end: 32 * MiB } });
  const created = kvm.createVm({
    policy: policyOf('linux-6.11'),
    memory: [{ gpa: MiB, bytes: 4 * MiB }],
    vcpus: 1,
  });
  assert.ok(created.ok);
  const { vm } = created;
  assert.equal(snpLaunchStart(vm, { policy: GUEST_POLICY }).ret, 0);
  const spaOf = (gpa: number) => gpa + 2 * MiB;
  assert.equal(vm.memory.translate(MiB), spaOf(MiB));
  // 2 MB guest pages at GPA 0 (the slot holds only its second half) and GPA 2 MiB (inside the slot).
  for (const gpa of [0, 2 * MiB]) {
    const status = platform.rmpupdate(spaOf(gpa), {
      gpa,
      assigned: true,
      pageSize: 1,
      immutable: false,
      asid: vm.asid,
    });
    assert.equal(status, 0);
  }
  const r = kvm.destroyVm(vm);
  assert.ok(r.ok, r.detail);
  assert.deepEqual(r.pagesLeaked, []);
  const entry = (gpa: number) => platform.firmwareRead(spaOf(gpa) / 4096);
  // Inside the slot: one 2 MB RMPUPDATE.
  assert.deepEqual([entry(2 * MiB)?.assigned, entry(2 * MiB)?.pageSize], [false, 1]);
  // Partly covered: PSMASHed; the slot's half made shared per 4 KB, the other half untouched.
  for (let gpa = MiB; gpa < 2 * MiB; gpa += 4096) assert.equal(entry(gpa)?.assigned, false);
  const outside = entry(0);
  assert.deepEqual([outside?.assigned, outside?.pageSize, outside?.asid], [true, 0, vm.asid]);
});
