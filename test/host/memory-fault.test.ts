/**
 * A guest access whose privacy differs from the GPA's KVM memory attribute: KVM exits with
 * KVM_EXIT_MEMORY_FAULT (-EFAULT; KVM_MEMORY_EXIT_FLAG_PRIVATE for a private access), QEMU converts
 * the page (kvm_convert_memory) and runs the vCPU again, and the retried instruction succeeds.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  ERRNO,
  type GuestEntry,
  type GuestExit,
  getPreset,
  KVM_EXIT,
  KVM_MEMORY_EXIT_FLAG_PRIVATE,
  pscRequest,
  type RunOutcome,
  SNP_PAGE_STATE_SHARED,
  type Vcpu,
} from '../../host/index.js';
import { AccessKind } from '../../psp-firmware/index.js';
import { makeSystem, msrCall } from './support.js';

/** Guest pages the tests use (guest RAM is [0, 8 MiB); GHCBs and the AP VMSA sit lower). */
const PAGE = 0x100000;

/** One KVM_RUN in which the guest executes `op`; an #NPF is its exit, anything else ends with INTR. */
function runOp<T>(
  vcpu: Vcpu,
  op: (e: GuestEntry) => { npf: number; gpa: number } | { value: T },
): {
  outcome: RunOutcome;
  value: T | undefined;
} {
  let value: T | undefined;
  const outcome = vcpu.run((e): GuestExit => {
    const r = op(e);
    if ('npf' in r) return { kind: 'npf', gpa: r.gpa, exitInfo1: r.npf };
    value = r.value;
    return { kind: 'intr' };
  });
  return { outcome, value };
}

const pvalidate = (vcpu: Vcpu, gpa: number) => (e: GuestEntry) => {
  const r = vcpu.vm.platform.pvalidate(e.guest, gpa, 0, 1);
  if (r.kind === 'npf') return { npf: r.exitInfo1, gpa };
  assert.equal(r.kind, 'eax');
  return { value: r.kind === 'eax' ? r.eax : -1 };
};

/** A data access with effective C-bit `cbit`: 0 or the #VC code, or an #NPF. */
const access =
  (vcpu: Vcpu, gpa: number, cbit: 0 | 1, kind: number = AccessKind.WRITE) =>
  (e: GuestEntry) => {
    const r = vcpu.vm.platform.guestAccess(e.guest, gpa, kind as AccessKind, cbit);
    return r >= 2 ** 32 ? { npf: r, gpa } : { value: r };
  };

function assertMemoryFault(outcome: RunOutcome, gpa: number, toPrivate: boolean): void {
  assert.equal(outcome.kind, 'errno', outcome.detail);
  if (outcome.kind !== 'errno') return;
  assert.equal(outcome.errno, -ERRNO.EFAULT);
  assert.equal(outcome.exitReason, KVM_EXIT.MEMORY_FAULT);
  assert.deepEqual(outcome.memoryFault, {
    gpa: BigInt(gpa),
    size: 0x1000n,
    flags: toPrivate ? KVM_MEMORY_EXIT_FLAG_PRIVATE : 0n,
  });
  assert.equal(outcome.layer, 'kvm');
  assert.match(outcome.detail, /KVM_EXIT_MEMORY_FAULT/);
}

test('PVALIDATE of a shared page: memory-fault exit, QEMU converts it, the retried PVALIDATE validates it', () => {
  const { vm } = makeSystem();
  const bsp = vm.vcpu(0);
  const psc = msrCall(bsp, pscRequest(BigInt(PAGE / 0x1000), SNP_PAGE_STATE_SHARED));
  assert.ok(!psc.outcome.vmStopped);
  assert.equal(vm.isPrivate(PAGE), false);
  const spa = vm.memory.translate(PAGE);
  assert.equal(vm.platform.firmwareRead(spa / 0x1000)?.assigned, false);

  const first = runOp(bsp, pvalidate(bsp, PAGE));
  assertMemoryFault(first.outcome, PAGE, true);
  assert.deepEqual(first.outcome.kind === 'errno' && first.outcome.conversion, {
    toPrivate: true,
    converted: true,
  });
  assert.equal(first.outcome.vmStopped, false);
  assert.equal(vm.stopped, undefined);
  assert.equal(vm.isPrivate(PAGE), true, 'the attribute is private now');

  const retry = runOp(bsp, pvalidate(bsp, PAGE));
  assert.equal(retry.outcome.kind, 'exit', retry.outcome.detail);
  assert.equal(retry.value, 0, 'PVALIDATE succeeded');
  const e = vm.platform.firmwareRead(spa / 0x1000);
  assert.deepEqual(
    { assigned: e?.assigned, validated: e?.validated, asid: e?.asid, gpa: e?.gpa },
    { assigned: true, validated: true, asid: vm.asid, gpa: PAGE },
  );
});

test('a C=0 access to a private page: memory-fault exit without the PRIVATE flag, the page becomes shared', () => {
  const { vm } = makeSystem();
  const bsp = vm.vcpu(0);
  // The private page is faulted in and validated first (as the kernel's accepted memory is).
  for (let i = 0; i < 3 && runOp(bsp, pvalidate(bsp, PAGE)).value !== 0; i++);
  const spa = vm.memory.translate(PAGE);
  assert.equal(vm.platform.firmwareRead(spa / 0x1000)?.validated, true);

  const first = runOp(bsp, access(bsp, PAGE, 0));
  assertMemoryFault(first.outcome, PAGE, false);
  assert.equal(first.outcome.vmStopped, false);
  assert.equal(vm.isPrivate(PAGE), false);
  assert.equal(vm.platform.firmwareRead(spa / 0x1000)?.assigned, false, 'hypervisor-owned again');

  const retry = runOp(bsp, access(bsp, PAGE, 0));
  assert.equal(retry.outcome.kind, 'exit', retry.outcome.detail);
  assert.equal(retry.value, 0, 'the shared write goes through');
});

test("memoryFaultExit 'stop': the VMM does not convert, the VM stops, nothing changes", () => {
  const policy = { ...getPreset('linux-6.11')!.policy, memoryFaultExit: 'stop' as const };
  const { vm } = makeSystem(policy);
  const bsp = vm.vcpu(0);
  msrCall(bsp, pscRequest(BigInt(PAGE / 0x1000), SNP_PAGE_STATE_SHARED));
  const r = runOp(bsp, pvalidate(bsp, PAGE));
  assertMemoryFault(r.outcome, PAGE, true);
  assert.equal(r.outcome.vmStopped, true);
  assert.deepEqual(r.outcome.kind === 'errno' && r.outcome.conversion, { toPrivate: true, converted: false });
  assert.match(r.outcome.detail, /does not convert/);
  assert.equal(vm.isPrivate(PAGE), false);
  assert.equal(vm.platform.firmwareRead(vm.memory.translate(PAGE) / 0x1000)?.assigned, false);
  assert.equal(bsp.run(() => ({ kind: 'intr' })).kind, 'vm-stopped');
});

test('property: whatever the sequence of private and shared accesses, each completes within two KVM_RUNs', () => {
  type Op = { readonly page: number; readonly what: 'pvalidate' | 'private-read' | 'shared-write' };
  const op: fc.Arbitrary<Op> = fc.record({
    page: fc.integer({ min: 0, max: 3 }).map((i) => PAGE + i * 0x1000),
    what: fc.constantFrom('pvalidate' as const, 'private-read' as const, 'shared-write' as const),
  });
  fc.assert(
    fc.property(fc.array(op, { minLength: 1, maxLength: 16 }), (ops) => {
      const { vm } = makeSystem();
      const bsp = vm.vcpu(0);
      const entry = (page: number) => vm.platform.firmwareRead(vm.memory.translate(page) / 0x1000);
      for (const { page, what } of ops) {
        const code =
          what === 'pvalidate'
            ? pvalidate(bsp, page)
            : what === 'private-read'
              ? access(bsp, page, 1, AccessKind.READ)
              : access(bsp, page, 0);
        const wasAssigned = entry(page)?.assigned === true;
        let runs = 0;
        let done = false;
        // A mismatch converts; a private page not yet in the RMP is faulted in: at most two #NPFs.
        while (!done && runs < 3) {
          runs++;
          const r = runOp(bsp, code);
          assert.equal(r.outcome.vmStopped, false, r.outcome.detail);
          done = r.value !== undefined;
        }
        assert.ok(done, `${what} of 0x${page.toString(16)} still faults after ${runs} KVM_RUNs`);
        if (what === 'shared-write') {
          assert.equal(entry(page)?.assigned, false, 'a shared write went to a hypervisor-owned page');
          // A private page the guest used is converted; one never faulted in is not (no NPT model).
          if (wasAssigned) assert.equal(vm.isPrivate(page), false);
        } else {
          assert.equal(vm.isPrivate(page), true);
          assert.equal(entry(page)?.assigned, true, 'the RMP agrees with the attribute');
        }
      }
    }),
    { numRuns: 25 },
  );
});
