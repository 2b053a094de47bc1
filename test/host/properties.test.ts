/**
 * Property tests (fast-check) over random guest-driven sequences and random inputs.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  atomic,
  canonicalJson,
  diffPolicies,
  enumerate,
  GHCB_ERR,
  GHCB_MSR,
  GHCB_MSR_INFO_MASK,
  getPreset,
  type HostPolicy,
  hasVmsa,
  type Interleaving,
  KNOB_NAMES,
  KNOBS,
  KVM_MP_STATE,
  KvmMutex,
  knobToJson,
  kvmSetMpState,
  lock,
  PRESET_NAMES,
  parsePolicy,
  point,
  type RunOutcome,
  runChoices,
  runOrder,
  SVM_SEV_FEAT,
  SVM_VMGEXIT,
  sequence,
  unlock,
  type Vm,
  validateVmgexit,
} from '../../host/index.js';
import {
  apInfo1,
  bringUpAp,
  ghcbGpaOf,
  halt,
  makeSystem,
  msrCall,
  nae,
  prepareVmsa,
  setupGhcb,
  startAp,
  VMSA_GPA,
  writeGhcb,
} from './support.js';

const V2 = 0x23000; // a second VMSA page, prepared like VMSA_GPA
const FAR = 0x4000_1000; // a legal GPA outside guest RAM

type Op =
  | {
      readonly op: 'request';
      readonly target: number;
      readonly request: number;
      readonly gpa: number;
      readonly rax: bigint;
      readonly raxValid: boolean;
    }
  | { readonly op: 'run'; readonly target: number; readonly hlt: boolean }
  | { readonly op: 'init' | 'sipi' | 'kick' | 'nmi'; readonly target: number }
  | { readonly op: 'setMpState'; readonly target: number; readonly state: number };

const target = fc.constantFrom(1, 2);
const guestOp: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('request' as const),
    target: fc.constantFrom(1, 2, 9),
    request: fc.constantFrom(0, 1, 1, 1, 2, 2, 3, 0x1_0001),
    gpa: fc.constantFrom(VMSA_GPA, VMSA_GPA, V2, VMSA_GPA + 8, 0x20_0000, FAR, 0),
    rax: fc.constantFrom(0x1n, 0x1n, 0x9n, 0x21n),
    raxValid: fc.boolean(),
  }),
  fc.record({ op: fc.constant('run' as const), target, hlt: fc.boolean() }),
  fc.record({
    op: fc.constantFrom('init' as const, 'sipi' as const, 'kick' as const, 'nmi' as const),
    target,
  }),
);
const userspaceOp: fc.Arbitrary<Op> = fc.record({
  op: fc.constant('setMpState' as const),
  target,
  state: fc.constantFrom(0, 1, 2, 3, 4, 5, 9),
});

/** A launched 3-vCPU VM whose APs run (OVMF started them) and whose BSP has a GHCB and two VMSA pages. */
function world(policy: string): Vm {
  const { vm } = makeSystem(policy, { vcpus: 3 });
  startAp(vm, 1);
  startAp(vm, 2);
  setupGhcb(vm.vcpu(0));
  prepareVmsa(vm.vcpu(0), VMSA_GPA);
  prepareVmsa(vm.vcpu(0), V2);
  return vm;
}

/** Applies one op; returns the run outcome when the op ran a vCPU (or issued a request). */
function apply(vm: Vm, op: Op): { outcome?: RunOutcome; info1?: bigint } {
  const v = vm.vcpu(op.target === 9 ? 1 : op.target);
  switch (op.op) {
    case 'request': {
      const r = nae(vm.vcpu(0), {
        exitCode: SVM_VMGEXIT.AP_CREATION,
        info1: apInfo1(op.target, op.request & 0xffff, op.request >> 16),
        info2: BigInt(op.gpa),
        ...(op.raxValid ? { rax: op.rax } : {}),
      });
      return { outcome: r.outcome, info1: r.info1 };
    }
    case 'run':
      return { outcome: v.run(op.hlt ? halt : () => ({ kind: 'intr' })) };
    case 'init':
      vm.sendInit(op.target);
      return {};
    case 'sipi':
      vm.sendSipi(op.target, 0x9f);
      return {};
    case 'kick':
      vm.pvKick(op.target);
      return {};
    case 'nmi':
      vm.sendNmi(op.target);
      return {};
    case 'setMpState':
      kvmSetMpState(v, op.state);
      return {};
  }
}

test('linux-6.16: guest-driven sequences never leave a live VM with a RUNNABLE vCPU lacking a VMSA pointer', () => {
  fc.assert(
    fc.property(fc.array(guestOp, { minLength: 1, maxLength: 14 }), (ops) => {
      const vm = world('linux-6.16');
      for (const op of ops) {
        apply(vm, op);
        if (vm.stopped !== undefined) return;
        for (const v of vm.vcpus) {
          assert.ok(
            !(v.mpState === KVM_MP_STATE.RUNNABLE && !hasVmsa(v)),
            `${v.describe()} after ${canonicalJson(op)}`,
          );
        }
      }
    }),
    { numRuns: 60 },
  );
});

/**
 * Linux's correct teardown (DESTROY, then RMPADJUST to clear the VMSA bit) racing the AP's KVM_RUN
 * iterations, in a random order per run.
 */
function teardownRace(preset: string, apRuns: number): Interleaving<Vm> {
  const spin = () => ({ kind: 'intr' }) as const;
  return {
    setup: () => {
      const sys = makeSystem(preset);
      bringUpAp(sys);
      const { vm } = sys;
      vm.pvKick(1);
      vm.vcpu(1).run(spin);
      writeGhcb(vm, ghcbGpaOf(0), { exitCode: SVM_VMGEXIT.AP_CREATION, info1: apInfo1(1, 2), info2: 0n });
      vm.vcpu(0).ghcbMsr = BigInt(ghcbGpaOf(0));
      return vm;
    },
    activities: [
      sequence<Vm>('BSP', [
        { name: 'DESTROY', start: (vm) => vm.vcpu(0).vmgexitSteps() },
        atomic('RMPADJUST clear', (vm) =>
          vm.platform.rmpadjust(vm.guestContext(vm.vcpu(0), vm.vmsaFeatures), VMSA_GPA, 0, 0x1n),
        ),
      ]),
      sequence<Vm>(
        'AP',
        Array.from({ length: apRuns }, (_, i) => ({
          name: `run ${i}`,
          start: (vm: Vm) => vm.vcpu(1).runSteps(spin),
        })),
      ),
    ],
    observe: (_vm, results) => {
      const runs = results[1]?.status === 'done' ? (results[1].value as RunOutcome[]) : [];
      return runs
        .filter((r) => r.kind === 'userspace' && r.failEntry !== undefined && r.layer === 'cpu')
        .map((r) => r.detail);
    },
  };
}

const raceRun = fc.tuple(fc.integer({ min: 1, max: 3 }), fc.array(fc.nat(), { maxLength: 16 }));

test('linux-6.16: in random interleavings of Linux teardown and AP runs, VMRUN never meets an invalidated VMSA', () => {
  fc.assert(
    fc.property(raceRun, ([apRuns, choices]) => {
      assert.deepEqual(runChoices(teardownRace('linux-6.16', apRuns), choices).observation, []);
    }),
    { numRuns: 150 },
  );
});

test('linux-6.15 (contrast): random interleavings find the VMRUN failure 309d28576f0a fixed', () => {
  const result = fc.check(
    fc.property(raceRun, ([apRuns, choices]) => {
      return (runChoices(teardownRace('linux-6.15', apRuns), choices).observation as string[]).length === 0;
    }),
    { numRuns: 300, seed: 7 },
  );
  assert.equal(result.failed, true);
});

/** (linux-6.11 does attempt it: see the preset table, 'a destroyed AP woken by a PV kick'.) */
test('linux-6.16: VMRUN is never attempted with an invalid VMSA pointer, even when userspace forces mp_state', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(guestOp, userspaceOp), { minLength: 1, maxLength: 14 }), (ops) => {
      const vm = world('linux-6.16');
      for (const op of ops) {
        const { outcome } = apply(vm, op);
        if (outcome !== undefined)
          assert.doesNotMatch(outcome.detail, /VMSA_ADDRESS_INVALID/, canonicalJson(op));
        if (vm.stopped !== undefined) return;
      }
    }),
    { numRuns: 60 },
  );
});

test('linux-6.15: a rejected AP Creation request never changes any other vCPU', () => {
  fc.assert(
    fc.property(
      fc.array(guestOp, { maxLength: 6 }),
      fc.record({
        target: fc.constantFrom(1, 2, 7),
        request: fc.integer({ min: 0, max: 5 }),
        vmpl: fc.constantFrom(0, 0, 1, 3),
        gpa: fc.oneof(
          fc.constantFrom(VMSA_GPA, V2, 0, 0x20_0000),
          fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        ),
        rax: fc.constantFrom(0x1n, 0x9n, 0x11n, 0x21n, 0n),
        raxValid: fc.boolean(),
      }),
      (prefix, req) => {
        const vm = world('linux-6.15');
        for (const op of prefix) apply(vm, op);
        if (vm.stopped !== undefined) return;
        const others = () => canonicalJson(vm.snapshot().filter((s) => s.vcpuId !== 0));
        const before = others();
        const r = nae(vm.vcpu(0), {
          exitCode: SVM_VMGEXIT.AP_CREATION,
          info1: apInfo1(req.target, req.request, req.vmpl),
          info2: BigInt.asUintN(64, BigInt(req.gpa)),
          ...(req.raxValid ? { rax: req.rax } : {}),
        });
        if (r.info1 !== 0n) assert.equal(others(), before);
      },
    ),
    { numRuns: 80 },
  );
});

test('GHCB MSR protocol: every handled request is answered with its response code; others are left as written', () => {
  const handled = new Map<bigint, bigint>([
    [GHCB_MSR.SEV_INFO_REQ, GHCB_MSR.SEV_INFO_RESP],
    [GHCB_MSR.HV_FT_REQ, GHCB_MSR.HV_FT_RESP],
    [GHCB_MSR.REG_GPA_REQ, GHCB_MSR.REG_GPA_RESP],
    [GHCB_MSR.PREF_GPA_REQ, GHCB_MSR.PREF_GPA_RESP],
    [GHCB_MSR.PSC_REQ, GHCB_MSR.PSC_RESP],
  ]);
  const vm = makeSystem('linux-6.11', { vcpus: 1 }).vm;
  fc.assert(
    fc.property(
      fc.bigInt({ min: 1n, max: (1n << 52n) - 1n }),
      fc.constantFrom(...handled.keys(), 0x003n, 0x016n, 0x0ffn, 0xfffn),
      (data, info) => {
        const msr = (data << 12n) | info;
        const { response } = msrCall(vm.vcpu(0), msr);
        const expected = handled.get(info);
        if (expected === undefined) assert.equal(response, msr);
        else assert.equal(response & GHCB_MSR_INFO_MASK, expected);
      },
    ),
    { numRuns: 200 },
  );
});

test('sev_es_validate_vmgexit: a non-zero GHCB usage is always GHCB_ERR_INVALID_USAGE, whatever else is wrong', () => {
  const policy = getPreset('linux-6.11')?.policy as HostPolicy;
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 0xffff_ffff }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
      (usage, code, lo, hi) => {
        const e = validateVmgexit(
          {
            ghcbUsage: usage,
            validBitmap: [lo, hi],
            exitCode: code,
            exitInfo1: 0n,
            exitInfo2: 0n,
            rax: 0n,
            snp: true,
          },
          policy,
        );
        assert.equal(e?.reason, GHCB_ERR.INVALID_USAGE);
      },
    ),
  );
});

test('policy files: any preset with any overrides round-trips through JSON; diffs are symmetric', () => {
  const value = (name: (typeof KNOB_NAMES)[number]) => {
    const t = KNOBS[name].type;
    if (t === 'boolean') return fc.boolean();
    if (t === 'bigint') return fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
    return fc.constantFrom(...t);
  };
  const overrides = fc.record(Object.fromEntries(KNOB_NAMES.map((k) => [k, value(k)])), { requiredKeys: [] });
  fc.assert(
    fc.property(fc.constantFrom(...PRESET_NAMES), overrides, (base, knobs) => {
      const json = JSON.parse(
        JSON.stringify({
          extends: base,
          knobs: Object.fromEntries(Object.entries(knobs).map(([k, v]) => [k, knobToJson(v as never)])),
        }),
      );
      const parsed = parsePolicy(json);
      assert.ok(parsed.ok, parsed.ok ? '' : canonicalJson(parsed.problems));
      const expected = { ...getPreset(base)?.policy, ...knobs } as HostPolicy;
      assert.deepEqual(parsed.value.policy, expected);
      const d1 = diffPolicies(expected, getPreset(base)?.policy as HostPolicy);
      const d2 = diffPolicies(getPreset(base)?.policy as HostPolicy, expected);
      assert.deepEqual(
        d1.map((d) => [d.knob, d.a, d.b]),
        d2.map((d) => [d.knob, d.b, d.a]),
      );
    }),
  );
});

test('scheduler: every distinct outcome of random lock/point programs replays from its example order', () => {
  const program = fc.array(fc.constantFrom('point', 'lockA', 'lockB'), { minLength: 1, maxLength: 2 });
  fc.assert(
    fc.property(fc.array(program, { minLength: 2, maxLength: 3 }), (programs) => {
      const spec: Interleaving<{ a: KvmMutex; b: KvmMutex; log: string[] }> = {
        setup: () => ({ a: new KvmMutex('a'), b: new KvmMutex('b'), log: [] }),
        activities: programs.map((prog, i) => ({
          name: `P${i}`,
          start: function* (w) {
            for (const [j, s] of prog.entries()) {
              if (s === 'point') yield* point(`P${i}.${j}`);
              else {
                const m = s === 'lockA' ? w.a : w.b;
                yield* lock(m, `P${i}.${j} ${s}`);
                w.log.push(`${i}:${s}`);
                unlock(m);
              }
            }
          },
        })),
        observe: (w, results) => ({ log: w.log, done: results.every((r) => r.status === 'done') }),
      };
      const e = enumerate(spec);
      assert.equal(e.truncated, false);
      for (const o of e.outcomes) {
        assert.equal((o.observation as { done: boolean }).done, true, 'no nested locks, so no deadlock');
        assert.equal(runOrder(spec, o.example.order).fingerprint, o.fingerprint);
      }
    }),
    { numRuns: 40 },
  );
});

test('sanity of the property worlds: both APs run and the BSP issues requests', () => {
  const vm = world('linux-6.16');
  assert.equal(vm.vcpu(1).mpState, KVM_MP_STATE.RUNNABLE);
  const r = apply(vm, { op: 'request', target: 1, request: 1, gpa: VMSA_GPA, rax: 0x1n, raxValid: true });
  assert.equal(r.info1, 0n);
  assert.equal(SVM_SEV_FEAT.SNP_ACTIVE, vm.vmsaFeatures);
});
