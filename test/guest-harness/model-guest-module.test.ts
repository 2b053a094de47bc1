import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type AgentReply,
  type AgentRequest,
  encodeResponse,
  isStopped,
  ModelGuest,
  resolvePolicy,
  resolveProfile,
} from '../../guest-harness/index.js';

function boot(policy = 'linux-6.11', vcpus = 4): ModelGuest {
  const p = resolvePolicy(policy);
  const f = resolveProfile('genoa');
  return ModelGuest.boot({
    policyName: p.name,
    policy: p.policy,
    profileName: f.name,
    profile: f.profile,
    vcpus,
  });
}

function ok(g: ModelGuest, request: AgentRequest): AgentReply & { status: 'ok' } {
  const r = g.execute(request);
  assert.ok(!isStopped(r), `the guest stopped on ${request.verb}`);
  assert.equal(
    r.status,
    'ok',
    `${request.verb}: ${JSON.stringify(r, (_k, v) => (typeof v === 'bigint' ? v.toString(16) : v))}`,
  );
  return r as AgentReply & { status: 'ok' };
}

function err(g: ModelGuest, request: AgentRequest) {
  const r = g.execute(request);
  assert.ok(!isStopped(r));
  assert.equal(r.status, 'err', `${request.verb} should be refused`);
  return r as Extract<AgentReply, { status: 'err' }>;
}

test('boot: the kernel brings every AP online with AP Creation; hello carries the platform', () => {
  const g = boot();
  const h = g.hello();
  assert.deepEqual(
    {
      backend: h.backend,
      cpus: h.cpus,
      possible: h.possibleCpus,
      sev: h.sevStatus,
      policy: h.policy,
      hostSteps: h.hostSteps,
    },
    { backend: 'sim', cpus: 4, possible: 4, sev: 0x7n, policy: 'linux-6.11', hostSteps: true },
  );
  const state = g.state();
  assert.deepEqual(
    state.vcpus.map((v) => v.mpState),
    ['RUNNABLE', 'HALTED', 'HALTED', 'HALTED'],
    'APs idle in HLT on their Linux VMSAs',
  );
  assert.ok(state.vcpus.slice(1).every((v) => v.vmsaPa !== 'INVALID_PAGE'));
});

test('the create flow on an offlined AP, with the RMP state the model records', () => {
  const g = boot();
  assert.equal(ok(g, { verb: 'cpu-offline', cpu: 1 }).verb, 'cpu-offline');
  assert.equal(g.state().vcpus[1]!.mpState, 'AP_RESET_HOLD', 'sev_es_play_dead parks it with AP_HLT_LOOP');
  const alloc = ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'private' }) as { gpa: bigint };
  assert.equal(alloc.gpa % 0x1000n, 0n);
  assert.notEqual(alloc.gpa % 0x200000n, 0n, 'a split page is never 2 MiB aligned');
  assert.deepEqual(ok(g, { verb: 'vmsa-init', h: 0, template: 'linux', stub: 1 }), {
    status: 'ok',
    verb: 'vmsa-init',
    sevFeatures: 1n,
  });
  assert.deepEqual(ok(g, { verb: 'rmpadjust', h: 0, rdx: 0x10001n, size: 0 }), {
    status: 'ok',
    verb: 'rmpadjust',
    eax: 0,
  });
  const names = new Map([[0, 'a']]);
  assert.deepEqual(
    {
      vmsa: g.state(names).pages.a?.vmsa,
      validated: g.state(names).pages.a?.validated,
      assigned: g.state(names).pages.a?.assigned,
    },
    { vmsa: true, validated: true, assigned: true },
  );
  const create = ok(g, { verb: 'ap-creation', request: 1, apic: 1, vmpl: 0, h: 0 }) as {
    swExitInfo1: bigint;
    swExitInfo2: bigint;
  };
  assert.deepEqual([create.swExitInfo1, create.swExitInfo2], [0n, 0n]);
  assert.deepEqual(ok(g, { verb: 'wait-marker', h: 0, timeoutMs: 500 }), {
    status: 'ok',
    verb: 'wait-marker',
    ran: 1,
  });
  assert.equal(g.state().vcpus[1]!.mpState, 'HALTED', 'the stub halts');
  // The page may still run on CPU 1 until Linux brings that CPU online again.
  const busy = err(g, { verb: 'vmsa-free', h: 0 });
  assert.deepEqual([busy.code, busy.extra?.reason], ['busy', 'ap-may-run']);
  ok(g, { verb: 'cpu-online', cpu: 1 });
  assert.deepEqual(ok(g, { verb: 'vmsa-free', h: 0 }), { status: 'ok', verb: 'vmsa-free', eax: 0, freed: 1 });
  assert.equal(err(g, { verb: 'vmsa-free', h: 0 }).code, 'bad-handle', 'a freed handle is gone');
});

test("the module's refusals: handles, unvalidated pages, 2 MiB on split pages, missing stub, field widths", () => {
  const g = boot();
  assert.equal(err(g, { verb: 'vmsa-init', h: 7, template: 'linux', stub: 1 }).code, 'bad-handle');
  ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'unvalidated' });
  assert.equal(
    err(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'private' }).code,
    'bad-handle',
  );
  const unvalidated = err(g, { verb: 'vmsa-init', h: 0, template: 'linux', stub: 1 });
  assert.deepEqual(
    [unvalidated.code, unvalidated.errno, unvalidated.extra?.reason],
    ['failed', 13, 'unvalidated'],
  );
  const sized = err(g, { verb: 'rmpadjust', h: 0, rdx: 0x10001n, size: 1 });
  assert.deepEqual([sized.code, sized.errno, sized.extra?.reason], ['failed', 22, 'needs-2m-aligned']);
  assert.deepEqual(ok(g, { verb: 'pvalidate', h: 0, validate: 1, size: 0 }), {
    status: 'ok',
    verb: 'pvalidate',
    eax: 0,
    cf: 0,
  });
  ok(g, { verb: 'vmsa-init', h: 0, template: 'linux', stub: 0 });
  const noStub = err(g, { verb: 'wait-marker', h: 0, timeoutMs: 10 });
  assert.deepEqual([noStub.code, noStub.errno, noStub.extra?.reason], ['failed', 22, 'no-stub']);
  const wide = err(g, { verb: 'vmsa-set', h: 0, field: 'vmpl', value: 0x100n });
  assert.deepEqual([wide.code, wide.extra?.reason], ['bad-request', 'bad-argument']);
  assert.deepEqual(
    ok(g, { verb: 'rmpadjust', h: 0, rdx: 0x10000n, size: 0 }),
    { status: 'ok', verb: 'rmpadjust', eax: 2 },
    'target VMPL0: FAIL_PERMISSION',
  );
});

test('GHCB answers per policy for a CREATE naming no vCPU: (2,5), #GP, silent', () => {
  for (const [policy, info1, info2] of [
    ['linux-6.11', 2n, 5n],
    ['v5-v9', 1n, 0xffffffff8000030dn],
    ['rfc-v4', 0n, 0n],
  ] as const) {
    const g = boot(policy);
    ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'private' });
    ok(g, { verb: 'vmsa-init', h: 0, template: 'linux', stub: 1 });
    ok(g, { verb: 'rmpadjust', h: 0, rdx: 0x10001n, size: 0 });
    const r = ok(g, { verb: 'ap-creation', request: 1, apic: 200, vmpl: 0, h: 0 }) as {
      swExitInfo1: bigint;
      swExitInfo2: bigint;
    };
    assert.deepEqual([r.swExitInfo1, r.swExitInfo2], [info1, info2], policy);
  }
});

test('the guest stops when its VM stops, and stays stopped', () => {
  const g = boot();
  ok(g, { verb: 'cpu-offline', cpu: 1 });
  ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'private' });
  ok(g, { verb: 'vmsa-init', h: 0, template: 'linux', stub: 1 });
  // No RMPADJUST: the page is no VMSA, so the AP's VMRUN fails (VMEXIT_INVALID) after the CREATE.
  const r = ok(g, { verb: 'ap-creation', request: 1, apic: 1, vmpl: 0, h: 0 }) as { swExitInfo1: bigint };
  assert.equal(r.swExitInfo1, 0n, 'KVM accepts it; the CPU refuses to run it');
  assert.match(g.stopped ?? '', /FAIL_ENTRY/);
  assert.ok(isStopped(g.execute({ verb: 'hv-features' })));
  assert.match(g.state().stopped ?? '', /FAIL_ENTRY/);
});

test('a #VC the kernel cannot handle terminates the guest with Linux reason set 0, GHCB_SEV_ES_GEN_REQ', () => {
  const g = boot();
  ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'unvalidated' });
  // RMPADJUST of a page that is not validated is #VC 0x404 (genoa); the kernel has no handler for it.
  assert.ok(isStopped(g.execute({ verb: 'rmpadjust', h: 0, rdx: 0x10001n, size: 0 })));
  assert.match(g.stopped ?? '', /requested termination: 0x0:0x0/);
});

test('host steps: KVM_SET_MP_STATE return values, and no vCPU', () => {
  const g = boot();
  assert.deepEqual(g.execute({ verb: 'host-set-mp-state', vcpu: 1, state: 5 }), {
    status: 'ok',
    verb: 'host-set-mp-state',
    ret: -22,
  });
  assert.deepEqual(g.execute({ verb: 'host-set-mp-state', vcpu: 1, state: 42 }), {
    status: 'ok',
    verb: 'host-set-mp-state',
    ret: -22,
  });
  const none = g.execute({ verb: 'host-set-mp-state', vcpu: 9, state: 0 });
  assert.ok(!isStopped(none) && none.status === 'err' && none.errno === 2);
  assert.deepEqual(g.hostRun(9), { exit: 'no-such-vcpu' });
  assert.equal((g.hostRun(2) as Record<string, string>).exit, 'blocked', 'an idle AP sleeps');
});

test('property: any request sequence gets protocol-valid answers of the same verb, or the guest stops', () => {
  const handle = fc.integer({ min: 0, max: 2 });
  const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
  const request: fc.Arbitrary<AgentRequest> = fc.oneof(
    fc.constant<AgentRequest>({ verb: 'hv-features' }),
    fc.constant<AgentRequest>({ verb: 'sev-info' }),
    fc.record({
      verb: fc.constant('vmsa-alloc' as const),
      h: handle,
      placement: fc.constantFrom('split' as const, '2m-aligned' as const),
      memory: fc.constantFrom('private' as const, 'shared' as const, 'unvalidated' as const),
    }),
    fc.record({
      verb: fc.constant('vmsa-init' as const),
      h: handle,
      template: fc.constantFrom('linux' as const, 'ovmf' as const, 'zero' as const),
      stub: fc.constantFrom(0 as const, 1 as const),
    }),
    fc.record({
      verb: fc.constant('vmsa-set' as const),
      h: handle,
      field: fc.constantFrom('sev_features' as const, 'rip' as const, 'efer' as const, 'vmpl' as const),
      value: u64,
    }),
    fc.record({
      verb: fc.constant('rmpadjust' as const),
      h: handle,
      rdx: fc.constantFrom(0x10001n, 0x1n, 0x10000n, 0x301n, 0x100001n),
      size: fc.constantFrom(0 as const, 1 as const),
    }),
    fc.record({
      verb: fc.constant('pvalidate' as const),
      h: handle,
      validate: fc.constantFrom(0 as const, 1 as const),
      size: fc.constantFrom(0 as const, 1 as const),
    }),
    fc.record({
      verb: fc.constant('ap-creation' as const),
      request: fc.integer({ min: 0, max: 4 }),
      apic: fc.integer({ min: 0, max: 5 }),
      vmpl: fc.integer({ min: 0, max: 1 }),
      h: handle,
    }),
    fc.record({
      verb: fc.constantFrom('cpu-offline' as const, 'cpu-online' as const),
      cpu: fc.integer({ min: 1, max: 3 }),
    }),
    fc.record({ verb: fc.constant('pv-kick' as const), apic: fc.integer({ min: 0, max: 5 }) }),
    fc.record({
      verb: fc.constant('init-sipi' as const),
      apic: fc.integer({ min: 1, max: 5 }),
      vector: fc.constant(0),
    }),
    fc.record({ verb: fc.constant('wait-marker' as const), h: handle, timeoutMs: fc.constant(10) }),
    fc.record({ verb: fc.constant('vmsa-free' as const), h: handle }),
  );
  fc.assert(
    fc.property(
      fc.constantFrom('linux-6.11', 'linux-6.16', 'rfc-v4'),
      fc.array(request, { maxLength: 14 }),
      (policy, requests) => {
        const g = boot(policy);
        let stopped = false;
        for (const r of requests) {
          const reply = g.execute(r);
          if (isStopped(reply)) {
            stopped = true;
            assert.ok(g.stopped !== undefined, 'a stopped answer means the guest is gone');
            continue;
          }
          assert.equal(stopped, false, 'no answer after the guest stopped');
          assert.equal(reply.verb, r.verb);
          assert.doesNotThrow(() => encodeResponse(1, reply), `${r.verb} reply is not protocol v1`);
        }
      },
    ),
    { numRuns: 60 },
  );
});
