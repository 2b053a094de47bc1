/**
 * The model's guest meets KVM_EXIT_MEMORY_FAULT: a PVALIDATE of a page the kernel made shared is a
 * private access to a shared GPA; QEMU converts the page and the retried PVALIDATE runs, so the guest
 * keeps running (before, KVM treated the RMP fault as spurious and the kernel spun on it).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AgentReply,
  type AgentRequest,
  isStopped,
  ModelGuest,
  resolvePolicy,
  resolveProfile,
} from '../../guest-harness/index.js';
import type { HostPolicy } from '../../host/index.js';

function boot(policy: HostPolicy = resolvePolicy('linux-6.11').policy, name = 'linux-6.11'): ModelGuest {
  const f = resolveProfile('genoa');
  return ModelGuest.boot({ policyName: name, policy, profileName: f.name, profile: f.profile, vcpus: 2 });
}

function ok(g: ModelGuest, request: AgentRequest): AgentReply & { status: 'ok' } {
  const r = g.execute(request);
  assert.ok(!isStopped(r), `the guest stopped on ${request.verb}: ${isStopped(r) ? r.stopped : ''}`);
  assert.equal(r.status, 'ok', request.verb);
  return r as AgentReply & { status: 'ok' };
}

const names = new Map([[0, 'a']]);

test('PVALIDATE of a shared page: QEMU converts it, the page ends private and validated, the guest runs on', () => {
  const g = boot();
  ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'shared' });
  const before = g.state(names).pages.a;
  assert.deepEqual([before?.assigned, before?.validated], [false, false], 'shared: hypervisor-owned');
  const pv = ok(g, { verb: 'pvalidate', h: 0, validate: 1, size: 0 });
  assert.deepEqual(pv, { status: 'ok', verb: 'pvalidate', eax: 0, cf: 0 });
  const state = g.state(names);
  assert.equal(state.stopped, undefined);
  assert.deepEqual(
    [state.pages.a?.assigned, state.pages.a?.validated, state.pages.a?.asid],
    [true, true, 1],
    'private and validated after the conversion',
  );
  assert.ok(
    state.events?.some((e) => /KVM_EXIT_MEMORY_FAULT.*converted it to private/.test(e)),
    `the conversion is reported: ${JSON.stringify(state.events)}`,
  );
  // The kernel still answers.
  assert.equal(ok(g, { verb: 'sev-info' }).verb, 'sev-info');
});

test('a kernel write through its shared mapping of a page made private converts it back to shared', () => {
  const g = boot();
  ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'shared' });
  ok(g, { verb: 'pvalidate', h: 0, validate: 1, size: 0 });
  // The module still maps the page shared (C=0), as set_memory_decrypted left it.
  ok(g, { verb: 'vmsa-init', h: 0, template: 'linux', stub: 0 });
  const state = g.state(names);
  assert.equal(state.pages.a?.assigned, false, 'shared again (KVM_EXIT_MEMORY_FAULT without PRIVATE)');
  assert.ok(state.events?.some((e) => /shared access .*converted it to shared/.test(e)));
});

test("a VMM that does not convert (memoryFaultExit 'stop') stops the VM", () => {
  const policy = { ...resolvePolicy('linux-6.11').policy, memoryFaultExit: 'stop' as const };
  const g = boot(policy, 'linux-6.11+memoryFaultExit=stop');
  ok(g, { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'shared' });
  const r = g.execute({ verb: 'pvalidate', h: 0, validate: 1, size: 0 });
  assert.ok(isStopped(r));
  assert.match(isStopped(r) ? r.stopped : '', /KVM_EXIT_MEMORY_FAULT.*does not convert/);
});
