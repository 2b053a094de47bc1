import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AgentResponse,
  AgentScenarioTarget,
  loadScenarios,
  ModelAgentTarget,
  resolvePolicy,
  resolveProfile,
  SnpsimErrorCode,
} from '../../guest-harness/index.js';
import { corpus } from './run-helpers.js';

const target = () =>
  new ModelAgentTarget({ policy: resolvePolicy('linux-6.11'), profile: resolveProfile('genoa') });

test('the in-process model AgentTarget answers a batch with typed, sequenced responses', async () => {
  const t = target();
  const hello = await t.open();
  assert.deepEqual([hello.backend, hello.policy, hello.hostSteps], ['sim', 'linux-6.11', true]);
  const seen: number[] = [];
  const r = await t.runBatch(
    [
      { verb: 'hv-features' },
      { verb: 'cpu-offline', cpu: 1 },
      { verb: 'vmsa-init', h: 3, template: 'linux', stub: 1 },
    ],
    { stepTimeoutMs: 1000, onResponse: (_r, i) => seen.push(i) },
  );
  assert.equal(r.error, undefined);
  assert.deepEqual(seen, [0, 1, 2]);
  const [hv, off, bad] = r.responses as AgentResponse[];
  assert.deepEqual([hv?.seq, hv?.status, hv?.verb], [1, 'ok', 'hv-features']);
  assert.deepEqual(off, { status: 'ok', verb: 'cpu-offline', apic: 1, seq: 2 });
  assert.deepEqual([bad?.seq, bad?.status, bad?.status === 'err' ? bad.code : ''], [3, 'err', 'bad-handle']);
  await t.close();
});

test('a guest that stops mid-batch ends the batch with GUEST_DIED and the responses so far', async () => {
  const t = target();
  await t.open();
  const r = await t.runBatch(
    [
      { verb: 'cpu-offline', cpu: 1 },
      { verb: 'vmsa-alloc', h: 0, placement: 'split', memory: 'private' },
      { verb: 'vmsa-init', h: 0, template: 'zero', stub: 1 },
      { verb: 'rmpadjust', h: 0, rdx: 0x10001n, size: 0 },
      { verb: 'ap-creation', request: 1, apic: 1, vmpl: 0, h: 0, rax: 1n },
      { verb: 'hv-features' },
    ],
    { stepTimeoutMs: 1000 },
  );
  assert.equal(r.error?.code, SnpsimErrorCode.GUEST_DIED);
  assert.equal(r.responses.length, 5, 'the CREATE is answered; the AP then fails VMRUN and the VM stops');
  assert.match(r.error?.message ?? '', /request 6 of 6 \(hv-features\).*FAIL_ENTRY/);
});

test('the runner drives it like any agent target', async () => {
  const scenarios = await loadScenarios(corpus('lifecycle-create-linux-vmsa', 'vmsa-zero-template'));
  const st = new AgentScenarioTarget('model-agent', 'sim', target(), 1000);
  const platform = await st.open();
  assert.equal(platform.host_steps, '1');
  const ok = await st.run(scenarios[0]!);
  assert.equal(ok.error, undefined);
  assert.deepEqual(
    ok.observations.map((o) => o.kind),
    scenarios[0]!.steps.map(() => 'ok'),
  );
  const dead = await st.run(scenarios[1]!);
  assert.deepEqual(
    dead.observations.map((o) => [o.kind, o.vm]),
    // The CREATE was answered and the next request was not: from outside, the VM stopped during that
    // request or right after the answer (unknown); the model's reference places it exactly.
    [
      ['ok', 'alive'],
      ['ok', 'alive'],
      ['ok', 'alive'],
      ['ok', 'alive'],
      ['ok', 'unknown'],
      ['dead', 'dead'],
    ],
  );
});
