/**
 * The interleaving scheduler: explicit orders, exhaustive enumeration grouped by resulting state,
 * deadlock detection, and the two experiments it exists for: the 6.16 DESTROY-vs-VMRUN race
 * (reproduced under linux-6.15, absent under linux-6.16) and two CREATEs racing for one AP.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type Activity,
  atomic,
  canonicalJson,
  enumerate,
  type Interleaving,
  KvmMutex,
  lock,
  point,
  type RunOutcome,
  runOrder,
  type Steps,
  SVM_VMGEXIT,
  SVM_VMGEXIT_AP_CREATE,
  SVM_VMGEXIT_AP_DESTROY,
  sequence,
  unlock,
  type Vm,
} from '../../host/index.js';
import {
  apInfo1,
  bringUpAp,
  ghcbAt,
  ghcbGpaOf,
  makeSystem,
  naeCode,
  prepareVmsa,
  setupGhcb,
  startAp,
  VMSA_GPA,
  writeGhcb,
} from './support.js';

const spin = () => ({ kind: 'intr' }) as const;

function summarize(o: unknown): string {
  const r = o as RunOutcome;
  if (r.kind === 'userspace' && r.failEntry) return `FAIL_ENTRY(${r.layer}): ${r.detail.split(';')[0]}`;
  return r.kind;
}

/**
 * AP 1 runs a guest VMSA with HLT not intercepted (it stays RUNNABLE in guest mode); the BSP
 * DESTROYs it and then clears the VMSA bit of its page with RMPADJUST (Linux's shutdown path).
 */
function destroyRace(preset: string): Interleaving<Vm> {
  return {
    setup: () => {
      const sys = makeSystem(preset);
      bringUpAp(sys);
      const { vm } = sys;
      vm.pvKick(1);
      vm.vcpu(1).run(spin);
      writeGhcb(vm, ghcbGpaOf(0), {
        exitCode: SVM_VMGEXIT.AP_CREATION,
        info1: apInfo1(1, SVM_VMGEXIT_AP_DESTROY),
        info2: 0n,
      });
      vm.vcpu(0).ghcbMsr = BigInt(ghcbGpaOf(0));
      return vm;
    },
    activities: [
      sequence<Vm>('BSP', [
        { name: 'BSP: VMGEXIT(AP DESTROY)', start: (vm) => vm.vcpu(0).vmgexitSteps() },
        atomic('BSP guest: RMPADJUST clears the VMSA bit', (vm) => {
          const ctx = vm.guestContext(vm.vcpu(0), vm.vmsaFeatures);
          return vm.platform.rmpadjust(ctx, VMSA_GPA, 0, 0x1n);
        }),
      ]),
      { name: 'AP 1: KVM_RUN', start: (vm) => vm.vcpu(1).runSteps(spin) },
    ],
    observe: (_vm, results) => {
      const [bsp, ap] = results;
      const adjust = bsp?.status === 'done' ? (bsp.value as unknown[])[1] : 'stuck';
      return { rmpadjust: adjust, ap: ap?.status === 'done' ? summarize(ap.value) : 'stuck' };
    },
  };
}

test('linux-6.15: some interleaving of DESTROY + RMPADJUST with the AP entering VMRUN fails the VMRUN', () => {
  const e = enumerate(destroyRace('linux-6.15'));
  assert.equal(e.truncated, false);
  const failures = e.outcomes.filter((o) => canonicalJson(o.observation).includes('FAIL_ENTRY(cpu)'));
  assert.equal(failures.length > 0, true, canonicalJson(e.outcomes.map((o) => o.observation)));
  const [bad] = failures;
  assert.ok(bad);
  assert.match(canonicalJson(bad.observation), /VMSA_BIT_CLEAR/);
  const replay = runOrder(destroyRace('linux-6.15'), bad.example.order);
  assert.equal(replay.fingerprint, bad.fingerprint, 'the example order reproduces the race');
  const labels = bad.example.trace.map((t) => t.label);
  const rmpadjustAt = labels.findIndex((l) => l.includes('RMPADJUST'));
  const vmrunAt = labels.findIndex((l) => l.includes('AP 1') || l.includes('vCPU 1: VMRUN'));
  assert.ok(rmpadjustAt >= 0 && vmrunAt >= 0);
});

test('linux-6.16: KVM_REQUEST_WAIT removes the race in every interleaving', () => {
  const e = enumerate(destroyRace('linux-6.16'));
  assert.equal(e.truncated, false);
  assert.ok(e.runs > 10, `explored ${e.runs} orders`);
  for (const o of e.outcomes) {
    assert.doesNotMatch(canonicalJson(o.observation), /FAIL_ENTRY/, canonicalJson(o.observation));
    assert.doesNotMatch(canonicalJson(o.observation), /stuck/);
  }
});

/** BSP and AP 2 both CREATE AP 1 (different VMSA pages) while AP 1 runs once. */
function doubleCreate(preset: string): Interleaving<Vm> {
  const A = VMSA_GPA;
  const B = 0x23000;
  const create = (issuer: number, gpa: number): Activity<Vm> => ({
    name: `vCPU ${issuer}: CREATE 0x${gpa.toString(16)}`,
    start: function* (vm): Steps<unknown> {
      writeGhcb(vm, ghcbGpaOf(issuer), {
        exitCode: SVM_VMGEXIT.AP_CREATION,
        info1: apInfo1(1, SVM_VMGEXIT_AP_CREATE),
        info2: BigInt(gpa),
        rax: vm.vmsaFeatures,
      });
      vm.vcpu(issuer).ghcbMsr = BigInt(ghcbGpaOf(issuer));
      yield* vm.vcpu(issuer).vmgexitSteps();
      return ghcbAt(vm, ghcbGpaOf(issuer)).get('sw_exit_info_1');
    },
  });
  return {
    setup: () => {
      const sys = makeSystem(preset, { vcpus: 3 });
      const { vm } = sys;
      startAp(vm, 1);
      vm.vcpu(1).run(spin);
      startAp(vm, 2);
      vm.vcpu(2).run(spin);
      setupGhcb(vm.vcpu(0));
      setupGhcb(vm.vcpu(2));
      prepareVmsa(vm.vcpu(0), A);
      prepareVmsa(vm.vcpu(2), B);
      if (vm.policy.rejectCreateWhenOnline !== 'never') {
        vm.vcpu(0).run(
          naeCode(vm, ghcbGpaOf(0), { exitCode: SVM_VMGEXIT.AP_CREATION, info1: apInfo1(1, 2), info2: 0n }),
        );
        vm.vcpu(1).run(spin);
      }
      return vm;
    },
    activities: [
      create(0, A),
      create(2, B),
      { name: 'AP 1: KVM_RUN', start: (vm) => vm.vcpu(1).runSteps(spin) },
    ],
    observe: (vm, results) => {
      const ap = vm.vcpu(1);
      const told = results.slice(0, 2).map((r) => (r.status === 'done' ? String(r.value) : 'stuck'));
      const running = ap.vmsaGpa.toString(16);
      const pending = ap.reqUpdateProtectedGuestState ? ap.snpVmsaGpa.toString(16) : 'none';
      // A "lost" create: the issuer was told success, yet its VMSA is neither installed nor pending.
      const lost = [A, B].filter(
        (gpa, i) => told[i] === '0' && running !== gpa.toString(16) && pending !== gpa.toString(16),
      );
      return { told, running, pending, lost: lost.map((g) => g.toString(16)) };
    },
  };
}

test('two CREATEs race for one AP: under linux-6.11 a success can be silently overridden; strict reports it', () => {
  const loose = enumerate(doubleCreate('linux-6.11'));
  assert.equal(loose.truncated, false);
  const lostLoose = loose.outcomes.filter((o) => (o.observation as { lost: string[] }).lost.length > 0);
  assert.ok(lostLoose.length > 0, 'some order makes one issuer believe in a VMSA that never runs');

  const strict = enumerate(doubleCreate('strict'));
  assert.equal(strict.truncated, false);
  for (const o of strict.outcomes) {
    const obs = o.observation as { told: string[]; lost: string[] };
    assert.deepEqual(obs.lost, [], canonicalJson(obs));
    assert.ok(obs.told.includes('2'), 'the second CREATE on a created AP is rejected (2, 5)');
  }
});

test('runOrder runs a given order and completes the rest lowest-index first; an infeasible order throws', () => {
  const spec: Interleaving<{ m: KvmMutex; log: string[] }> = {
    setup: () => ({ m: new KvmMutex('m'), log: [] }),
    activities: [
      {
        name: 'A',
        start: function* (w) {
          yield* lock(w.m, 'A: lock');
          w.log.push('A in');
          yield* point('A: inside');
          w.log.push('A out');
          unlock(w.m);
        },
      },
      {
        name: 'B',
        start: function* (w) {
          yield* lock(w.m, 'B: lock');
          w.log.push('B in');
          unlock(w.m);
        },
      },
    ],
    observe: (w) => w.log,
  };
  const r = runOrder(spec, [1, 1]);
  assert.deepEqual(r.observation, ['B in', 'A in', 'A out']);
  assert.deepEqual(
    r.trace.map((t) => t.label),
    ['B: start', 'B: lock', 'A: start', 'A: lock', 'A: inside'],
  );
  assert.throws(() => runOrder(spec, [0, 0, 1, 1]), /cannot take a step/, 'B cannot lock while A holds m');
  const all = enumerate(spec);
  assert.deepEqual(all.outcomes.map((o) => o.observation).sort(), [
    ['A in', 'A out', 'B in'],
    ['B in', 'A in', 'A out'],
  ]);
  for (const o of all.outcomes) assert.equal(runOrder(spec, o.example.order).fingerprint, o.fingerprint);
});

test('enumerate reports a deadlock (ABBA locking) as stuck activities', () => {
  const spec: Interleaving<{ a: KvmMutex; b: KvmMutex }> = {
    setup: () => ({ a: new KvmMutex('a'), b: new KvmMutex('b') }),
    activities: [
      {
        name: 'AB',
        start: function* (w) {
          yield* lock(w.a, 'AB: lock a');
          yield* lock(w.b, 'AB: lock b');
          unlock(w.b);
          unlock(w.a);
        },
      },
      {
        name: 'BA',
        start: function* (w) {
          yield* lock(w.b, 'BA: lock b');
          yield* lock(w.a, 'BA: lock a');
          unlock(w.a);
          unlock(w.b);
        },
      },
    ],
  };
  const e = enumerate(spec);
  const deadlocks = e.outcomes.filter((o) => o.example.deadlock);
  assert.equal(deadlocks.length, 1);
  assert.match(canonicalJson(deadlocks[0]?.observation), /stuck/);
  assert.ok(e.outcomes.length === 2);
});

test("the issuer's steps: lock, then the kick under the lock (6.11) or after the unlock (RFC v4, strict)", () => {
  for (const [preset, afterUnlock] of [
    ['linux-6.11', false],
    ['rfc-v4', true],
    ['strict', true],
  ] as const) {
    const spec: Interleaving<Vm> = {
      setup: () => {
        const sys = makeSystem(preset);
        bringUpAp(sys);
        writeGhcb(sys.vm, ghcbGpaOf(0), {
          exitCode: SVM_VMGEXIT.AP_CREATION,
          info1: apInfo1(1, SVM_VMGEXIT_AP_DESTROY),
          info2: 0n,
          rax: sys.vm.vmsaFeatures,
        });
        sys.vm.vcpu(0).ghcbMsr = BigInt(ghcbGpaOf(0));
        return sys.vm;
      },
      activities: [{ name: 'BSP', start: (vm) => vm.vcpu(0).vmgexitSteps() }],
    };
    const labels = runOrder(spec, []).trace.map((t) => t.label);
    assert.deepEqual(
      labels,
      afterUnlock
        ? ['BSP: start', 'vCPU 0: lock vCPU 1 snp_vmsa_mutex', 'vCPU 0: unlocked vCPU 1, kick next']
        : ['BSP: start', 'vCPU 0: lock vCPU 1 snp_vmsa_mutex'],
      preset,
    );
  }
});

test('a target whose snp_vmsa_mutex is held cannot apply its update until the issuer unlocks', () => {
  const spec: Interleaving<Vm> = {
    setup: () => {
      const sys = makeSystem('linux-6.11');
      bringUpAp(sys);
      sys.vm.vcpu(1).snpVmsaMutex.locked = true;
      sys.vm.vcpu(1).reqUpdateProtectedGuestState = true;
      return sys.vm;
    },
    activities: [
      { name: 'AP 1', start: (vm) => vm.vcpu(1).runSteps(spin) },
      atomic('owner unlocks', (vm) => {
        vm.vcpu(1).snpVmsaMutex.locked = false;
        return 'unlocked';
      }),
    ],
  };
  const e = enumerate(spec);
  for (const o of e.outcomes) {
    const labels = o.example.trace.map((t) => t.label);
    const unlocked = labels.indexOf('owner unlocks');
    const acquired = labels.indexOf('vCPU 1: lock own snp_vmsa_mutex (reset)');
    assert.ok(unlocked >= 0 && acquired > unlocked, labels.join(' | '));
    assert.equal(o.example.deadlock, false);
  }
  assert.throws(() => {
    const sys = makeSystem('linux-6.11');
    bringUpAp(sys);
    sys.vm.vcpu(1).snpVmsaMutex.locked = true;
    sys.vm.vcpu(1).reqUpdateProtectedGuestState = true;
    sys.vm.vcpu(1).run(spin);
  }, /deadlock: vCPU 1: lock own snp_vmsa_mutex/);
});
