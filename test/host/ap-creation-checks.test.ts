/**
 * Every check of the AP Creation handler under every preset (plus custom policies for the knobs no
 * preset sets): accepted or not, whether the target was kicked, whether its state changed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type HostPolicy,
  INVALID_PAGE,
  KVM_MP_STATE,
  PRESET_NAMES,
  runSteps,
  SVM_SEV_FEAT,
  SVM_VMGEXIT_AP_CREATE,
  SVM_VMGEXIT_AP_CREATE_ON_INIT,
  snpApCreation,
  type Vm,
} from '../../host/index.js';
import {
  apInfo1,
  bringUpAp,
  halt,
  makeSystem,
  policyOf,
  SNP_DEBUG_SWAP,
  startAp,
  VMSA_GPA,
} from './support.js';

interface Case {
  readonly name: string;
  readonly info1: bigint;
  readonly info2: bigint;
  readonly rax: bigint;
}

const V = BigInt(VMSA_GPA);
const CREATE = apInfo1(1, SVM_VMGEXIT_AP_CREATE);
const ON_INIT = apInfo1(1, SVM_VMGEXIT_AP_CREATE_ON_INIT);
const RAX = SNP_DEBUG_SWAP;

const STATE_CHANGE = new Set(['rfc-v4', 'v5-v9', 'rfc-v9', 'linux-6.11']);
const EXACT = new Set(['linux-6.15', 'linux-6.16', 'strict']);
const GPA_CHECKED = new Set(PRESET_NAMES.filter((p) => p !== 'rfc-v4'));
const REJECT_2M = new Set(['rfc-v9', 'linux-6.11', 'linux-6.15', 'linux-6.16', 'strict']);

/** For each case: which presets reject it, and which of those still kick (state change on error). */
const CASES: readonly (Case & { readonly rejectedBy: ReadonlySet<string>; readonly kickOnError: boolean })[] =
  [
    {
      name: 'valid CREATE',
      info1: CREATE,
      info2: V,
      rax: RAX,
      rejectedBy: new Set(['strict']),
      kickOnError: false,
    },
    {
      name: 'bad APIC ID',
      info1: apInfo1(9, 1),
      info2: V,
      rax: RAX,
      rejectedBy: new Set(PRESET_NAMES),
      kickOnError: false,
    },
    {
      name: 'RAX changes the injection mode',
      info1: CREATE,
      info2: V,
      rax: RAX | SVM_SEV_FEAT.ALTERNATE_INJECTION,
      rejectedBy: new Set(PRESET_NAMES),
      kickOnError: true,
    },
    {
      name: 'CREATE_ON_INIT whose RAX changes the injection mode (kicked even though ON_INIT)',
      info1: ON_INIT,
      info2: V,
      rax: RAX | SVM_SEV_FEAT.RESTRICTED_INJECTION,
      rejectedBy: new Set(PRESET_NAMES),
      kickOnError: true,
    },
    {
      name: 'RAX differs outside the injection bits',
      info1: CREATE,
      info2: V,
      rax: SVM_SEV_FEAT.SNP_ACTIVE,
      rejectedBy: new Set([...EXACT]),
      kickOnError: true,
    },
    {
      name: 'GPA not page aligned',
      info1: CREATE,
      info2: V + 8n,
      rax: RAX,
      rejectedBy: GPA_CHECKED,
      kickOnError: true,
    },
    {
      name: 'GPA with a reserved bit (bit 48, guest MAXPHYADDR 48)',
      info1: CREATE,
      info2: V | (1n << 48n),
      rax: RAX,
      rejectedBy: GPA_CHECKED,
      kickOnError: true,
    },
    {
      name: 'GPA with the C-bit (51) set is a valid address',
      info1: CREATE,
      info2: V | (1n << 51n),
      rax: RAX,
      rejectedBy: new Set(['strict']),
      kickOnError: false,
    },
    {
      name: 'GPA 2 MiB aligned',
      info1: CREATE,
      info2: 0x40_0000n,
      rax: RAX,
      rejectedBy: REJECT_2M,
      kickOnError: true,
    },
    {
      name: 'GPA 0 (2 MiB aligned)',
      info1: CREATE,
      info2: 0n,
      rax: RAX,
      rejectedBy: REJECT_2M,
      kickOnError: true,
    },
    {
      name: 'unknown request 3',
      info1: apInfo1(1, 3),
      info2: V,
      rax: RAX,
      rejectedBy: new Set(PRESET_NAMES),
      kickOnError: true,
    },
    {
      name: 'VMPL 1 in SW_EXITINFO1[19:16] (upstream: an unknown request)',
      info1: apInfo1(1, 1, 1),
      info2: V,
      rax: RAX,
      rejectedBy: new Set(PRESET_NAMES),
      kickOnError: true,
    },
  ];

function setup(policy: HostPolicy | string): Vm {
  const sys = makeSystem(policy, { vmsaFeatures: SVM_SEV_FEAT.DEBUG_SWAP });
  bringUpAp(sys);
  return sys.vm;
}

function apSnapshot(vm: Vm): string {
  return JSON.stringify(vm.snapshot()[1]);
}

for (const c of CASES) {
  test(`AP Creation check on every preset: ${c.name}`, () => {
    for (const preset of PRESET_NAMES) {
      const vm = setup(preset);
      const before = apSnapshot(vm);
      const r = runSteps(snpApCreation(vm.vcpu(0), { info1: c.info1, info2: c.info2, rax: c.rax }));
      const rejected = c.rejectedBy.has(preset);
      assert.equal(r.accepted, !rejected, `${preset}: ${r.reason ?? 'accepted'}`);
      if (rejected) {
        assert.match(r.reason ?? '', /vmgexit: /, preset);
        const changes = c.kickOnError && STATE_CHANGE.has(preset) && !c.name.startsWith('bad APIC');
        assert.equal(r.kicked, changes, `${preset} kicked`);
        assert.equal(apSnapshot(vm) !== before, changes, `${preset} target changed`);
      } else {
        const onInit = Number(c.info1 & 0xffffn) === SVM_VMGEXIT_AP_CREATE_ON_INIT;
        assert.equal(r.kicked, !onInit, preset);
      }
    }
  });
}

test('6.11: a CREATE_ON_INIT rejected for its GPA is not kicked but arms an empty update for the next INIT', () => {
  const vm = setup('linux-6.11');
  const ap = vm.vcpu(1);
  const r = runSteps(snpApCreation(vm.vcpu(0), { info1: ON_INIT, info2: 0x40_0000n, rax: RAX }));
  assert.equal(r.accepted, false);
  assert.equal(r.kicked, false);
  assert.equal(ap.reqUpdateProtectedGuestState, false);
  assert.equal(ap.snpApWaitingForReset, true);
  assert.equal(ap.snpVmsaGpa, INVALID_PAGE);
  assert.equal(ap.run(halt).kind, 'blocked', 'nothing happens until INIT');
  vm.sendInit(1);
  const run = ap.run(halt);
  assert.ok(
    run.events.some((e) => e.kind === 'update-applied' && e.via === 'init' && e.installedGpa === undefined),
  );
  assert.equal(ap.mpState, KVM_MP_STATE.INIT_RECEIVED, 'INIT overwrites the state the update chose');
  assert.equal(ap.vmcbVmsaPa, INVALID_PAGE, 'the AP lost its VMSA');
});

test('6.15: the same rejected CREATE_ON_INIT leaves the AP untouched', () => {
  const vm = setup('linux-6.15');
  const before = apSnapshot(vm);
  const r = runSteps(snpApCreation(vm.vcpu(0), { info1: ON_INIT, info2: 0x40_0000n, rax: RAX }));
  assert.equal(r.accepted, false);
  assert.equal(apSnapshot(vm), before);
});

test('vmplField honour (Tom Lendacky SVSM RFC) decodes the VMPL instead of rejecting the request', () => {
  const vm = setup({ ...policyOf('linux-6.11'), vmplField: 'honour' });
  const r = runSteps(snpApCreation(vm.vcpu(0), { info1: apInfo1(1, 1, 2), info2: V, rax: RAX }));
  assert.equal(r.accepted, true, r.reason);
  assert.equal(r.request, 1);
  assert.equal(r.vmpl, 2);
});

test('allowSelfTarget false rejects a request naming the issuer; upstream allows it', () => {
  for (const [allow, accepted] of [
    [true, true],
    [false, false],
  ] as const) {
    const vm = setup({ ...policyOf('linux-6.15'), allowSelfTarget: allow });
    const r = runSteps(snpApCreation(vm.vcpu(0), { info1: apInfo1(0, 1), info2: V, rax: RAX }));
    assert.equal(r.accepted, accepted, r.reason);
  }
});

test("sevFeaturesCheck snpActive (the reviewer's minimum) rejects RAX without SNPActive", () => {
  const policy: HostPolicy = { ...policyOf('linux-6.15'), sevFeaturesCheck: 'snpActive' };
  const vm = setup(policy);
  const lacks = runSteps(
    snpApCreation(vm.vcpu(0), { info1: CREATE, info2: V, rax: SVM_SEV_FEAT.DEBUG_SWAP }),
  );
  assert.equal(lacks.accepted, false);
  assert.match(lacks.reason ?? '', /SNPActive/);
  const extra = runSteps(
    snpApCreation(vm.vcpu(0), { info1: CREATE, info2: V, rax: SVM_SEV_FEAT.SNP_ACTIVE }),
  );
  assert.equal(extra.accepted, true, 'bits other than the injection modes and SNPActive are not compared');
});

test("rejectCreateWhenOnline: 'guestVmsaOnly' accepts an AP on its launch VMSA, rejects one on a guest VMSA", () => {
  const policy: HostPolicy = { ...policyOf('linux-6.16'), rejectCreateWhenOnline: 'guestVmsaOnly' };
  const launchOnly = makeSystem(policy, { vmsaFeatures: SVM_SEV_FEAT.DEBUG_SWAP }).vm;
  startAp(launchOnly, 1);
  launchOnly.vcpu(1).run(halt);
  const first = runSteps(snpApCreation(launchOnly.vcpu(0), { info1: CREATE, info2: V, rax: RAX }));
  assert.equal(first.accepted, true, first.reason);
  const again = runSteps(snpApCreation(launchOnly.vcpu(0), { info1: CREATE, info2: V, rax: RAX }));
  assert.equal(again.accepted, false, 'a pending CREATE counts as created');

  const always: HostPolicy = { ...policy, rejectCreateWhenOnline: 'always' };
  const strictVm = makeSystem(always, { vmsaFeatures: SVM_SEV_FEAT.DEBUG_SWAP }).vm;
  startAp(strictVm, 1);
  strictVm.vcpu(1).run(halt);
  const literal = runSteps(snpApCreation(strictVm.vcpu(0), { info1: CREATE, info2: V, rax: RAX }));
  assert.equal(literal.accepted, false, "'always' rejects even Linux's first bring-up");
});

test('RFC v4: GPA 0 is the "no VMSA" sentinel, so CREATE with GPA 0 takes the AP offline', () => {
  const vm = setup('rfc-v4');
  const r = runSteps(snpApCreation(vm.vcpu(0), { info1: CREATE, info2: 0n, rax: RAX }));
  assert.equal(r.accepted, true);
  vm.vcpu(1).run(halt);
  assert.equal(vm.vcpu(1).mpState, KVM_MP_STATE.UNINITIALIZED);
  assert.equal(vm.vcpu(1).vmcbVmsaPa, 0n);
});

test('RFC v4: an unaligned GPA passes the handler and silently leaves the AP offline when applied', () => {
  const vm = setup('rfc-v4');
  runSteps(snpApCreation(vm.vcpu(0), { info1: CREATE, info2: V + 8n, rax: RAX }));
  const run = vm.vcpu(1).run(halt);
  assert.ok(run.events.some((e) => e.kind === 'update-applied' && e.failure === 'unaligned'));
  assert.equal(run.kind, 'blocked');
  assert.equal(vm.vcpu(1).mpState, KVM_MP_STATE.UNINITIALIZED);
});

test('v5: a VMSA GPA outside every memslot is KVM_EXIT_INTERNAL_ERROR when applied; 6.11 stays HALTED', () => {
  const far = 0x4000_0000n; // 1 GiB: beyond the 8 MiB of guest RAM, still a legal GPA
  for (const [preset, expected] of [
    ['v5-v9', 'userspace'],
    ['linux-6.11', 'blocked'],
  ] as const) {
    const vm = setup(preset);
    const r = runSteps(snpApCreation(vm.vcpu(0), { info1: CREATE, info2: far + 0x1000n, rax: RAX }));
    assert.equal(r.accepted, true, r.reason);
    const run = vm.vcpu(1).run(halt);
    assert.equal(run.kind, expected, run.detail);
    assert.ok(run.events.some((e) => e.kind === 'update-applied' && e.failure === 'no-memslot'));
  }
});

test('rejectCreateWhenOnline judges the target before a 6.11-style request resets its pending state', () => {
  const vm = makeSystem({ ...policyOf('linux-6.11'), rejectCreateWhenOnline: 'always' }).vm;
  startAp(vm, 1);
  vm.vcpu(1).run(halt);
  const before = apSnapshot(vm);
  const r = runSteps(snpApCreation(vm.vcpu(0), { info1: CREATE, info2: V, rax: vm.vmsaFeatures }));
  assert.equal(r.accepted, false, 'the AP runs its launch VMSA, so it is created');
  assert.equal(r.kicked, true, '6.11 still kicks it (state change on error)');
  assert.notEqual(apSnapshot(vm), before);
});
