/**
 * The model-only `concurrent` step with explicit `orders`: each order runs the requests one after
 * the other, each to completion, on a fresh guest replaying the earlier steps; orders that end alike
 * are one outcome.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  loadScenarioDocuments,
  resolvePolicy,
  resolveProfile,
  runScenarioOnModel,
  type Step,
} from '../../guest-harness/index.js';

const config = { policy: resolvePolicy('linux-6.11'), profile: resolveProfile('genoa') };

/** AP 1 offline, pages a and b prepared as Linux prepares a VMSA (concurrent-two-creates). */
const PREPARE: readonly Step[] = [
  { op: 'cpu-offline', cpu: 1 },
  { op: 'vmsa-alloc', page: 'a' },
  { op: 'vmsa-init', page: 'a' },
  { op: 'rmpadjust', page: 'a', vmsa: true },
  { op: 'vmsa-alloc', page: 'b' },
  { op: 'vmsa-init', page: 'b' },
  { op: 'rmpadjust', page: 'b', vmsa: true },
];

function run(name: string, last: readonly Step[]) {
  const [scenario] = loadScenarioDocuments([
    {
      file: `${name}.json`,
      value: { description: 'concurrent orders under test', vcpus: 3, steps: [...PREPARE, ...last] },
    },
  ]);
  const execution = runScenarioOnModel(scenario!, config);
  assert.equal(execution.error, undefined, execution.error?.message);
  return execution.observations;
}

/** The concurrent step with the given orders: its values and its outcome lines. */
function concurrent(orders: number[][]) {
  const observations = run(`orders-${orders.map((o) => o.join('')).join('-')}`, [
    {
      op: 'concurrent',
      requests: [
        { from: 0, request: 'create', apic: 1, page: 'a' },
        { from: 2, request: 'create', apic: 1, page: 'b' },
      ],
      orders,
    },
  ]);
  const last = observations.at(-1)!;
  return { values: last.values ?? {}, outcomes: last.model?.events ?? [] };
}

/** The VMSA pointer of vCPU 1 in an outcome line (`vcpu1 RUNNABLE vmsa=0x...`). */
function targetVmsa(outcome: string): string {
  const m = /vcpu1 \S+ vmsa=(0x[0-9a-f]+|INVALID_PAGE)/.exec(outcome);
  assert.ok(m, outcome);
  return m[1]!;
}

test('concurrent orders: each given order runs once, and the last CREATE decides the VMSA the AP runs', () => {
  const ab = concurrent([[0, 1]]);
  const ba = concurrent([[1, 0]]);
  for (const r of [ab, ba]) {
    assert.equal(r.values.orders, '1');
    assert.equal(r.values.outcomes, '1');
    assert.equal(r.values.truncated, '0');
    assert.equal(r.values.r0_sw_exit_info1, '0x0');
    assert.equal(r.values.r1_sw_exit_info1, '0x0');
    assert.match(r.outcomes[0] ?? '', /^outcome 1 \(1 order\): /);
  }
  // The same two CREATEs as sequential steps from the BSP: the AP ends on the second one's page.
  const sequential = (first: string, second: string) => {
    const obs = run(`sequential-${first}${second}`, [
      { op: 'ap-creation', request: 'create', apic: 1, page: first },
      { op: 'ap-creation', request: 'create', apic: 1, page: second },
    ]);
    return obs.at(-1)?.model?.vcpus.find((v) => v.index === 1)?.vmsaPa;
  };
  assert.equal(targetVmsa(ab.outcomes[0]!), sequential('a', 'b'));
  assert.equal(targetVmsa(ba.outcomes[0]!), sequential('b', 'a'));
  assert.notEqual(targetVmsa(ab.outcomes[0]!), targetVmsa(ba.outcomes[0]!));
});

test('concurrent orders: orders that end alike are one outcome, counted; different endings are separate', () => {
  const same = concurrent([
    [0, 1],
    [0, 1],
  ]);
  assert.equal(same.values.orders, '2');
  assert.equal(same.values.outcomes, '1');
  assert.match(same.outcomes[0] ?? '', /^outcome 1 \(2 orders\): /);

  const both = concurrent([
    [0, 1],
    [1, 0],
  ]);
  assert.equal(both.values.orders, '2');
  assert.equal(both.values.outcomes, '2');
  assert.equal(both.values.vm_dead_outcomes, '0');
  // Both answers agree across the orders (each CREATE is accepted), so none is `varies`.
  assert.equal(both.values.r0_sw_exit_info1, '0x0');
  assert.equal(both.values.r1_sw_exit_info2, '0x0');
  assert.deepEqual(
    both.outcomes.map((o) => o.replace(/^outcome \d+ /, '')).map((o) => o.startsWith('(1 order)')),
    [true, true],
  );
});
