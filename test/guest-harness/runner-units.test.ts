import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  type AgentReply,
  type AgentRequest,
  alignmentClass,
  batchObservations,
  createProgress,
  diffStep,
  parseTargetSpec,
  SnpsimError,
  type StepObservation,
} from '../../guest-harness/index.js';

const ok = (values: Record<string, string>, vm: StepObservation['vm'] = 'alive'): StepObservation => ({
  kind: 'ok',
  values,
  vm,
});

test('diff: only the keys the protocol defines are compared, numbers in any base, tokens exactly', () => {
  assert.deepEqual(
    diffStep(
      1,
      'c',
      'ap-creation',
      ok({ sw_exit_info1: '0x2', sw_exit_info2: '0x5' }),
      ok({ sw_exit_info1: '0x2', sw_exit_info2: '0x5', debug: 'x' }),
    ),
    [],
  );
  assert.deepEqual(diffStep(1, 'c', 'pv-kick', ok({ ret: '0' }), ok({ ret: '0x0' })), [], 'same integer');
  const d = diffStep(
    3,
    'create',
    'ap-creation',
    ok({ sw_exit_info1: '0x0', sw_exit_info2: '0x0' }),
    ok({ sw_exit_info1: '0x2', sw_exit_info2: '0x5' }),
  );
  assert.deepEqual(
    d.map((x) => [x.step, x.label, x.what, x.model, x.target]),
    [
      [3, 'create', 'sw_exit_info1', '0x0', '0x2'],
      [3, 'create', 'sw_exit_info2', '0x0', '0x5'],
    ],
  );
});

test('diff: guest addresses are compared by alignment class only', () => {
  assert.equal(alignmentClass('0x10a3c1000'), '4k-aligned');
  assert.equal(alignmentClass('0x200000'), '2m-aligned');
  assert.equal(alignmentClass('0x1010'), 'unaligned');
  assert.deepEqual(diffStep(1, 'a', 'vmsa-alloc', ok({ gpa: '0x1007000' }), ok({ gpa: '0x10a3c1000' })), []);
  const d = diffStep(1, 'a', 'vmsa-alloc', ok({ gpa: '0x1007000' }), ok({ gpa: '0x1200000' }));
  assert.deepEqual(
    d.map((x) => [x.model, x.target]),
    [['0x1007000 (4k-aligned)', '0x1200000 (2m-aligned)']],
  );
});

test('diff: refusals compare code, errno and reason; a lost answer as the VM stops is not a difference', () => {
  const busy = (reason: string): StepObservation => ({
    kind: 'err',
    code: 'busy',
    values: { reason },
    vm: 'alive',
  });
  assert.deepEqual(diffStep(1, 'f', 'vmsa-free', busy('ap-may-run'), busy('ap-may-run')), []);
  assert.equal(diffStep(1, 'f', 'vmsa-free', busy('ap-may-run'), busy('page-kept')).length, 1);
  assert.deepEqual(
    diffStep(2, 'c', 'ap-creation', ok({ sw_exit_info1: '0x0' }, 'dead'), { kind: 'dead', vm: 'dead' }),
    [],
  );
  assert.deepEqual(
    diffStep(2, 'c', 'ap-creation', ok({ sw_exit_info1: '0x0' }, 'alive'), { kind: 'dead', vm: 'dead' }).map(
      (x) => x.what,
    ),
    ['answer', 'vm'],
  );
  assert.deepEqual(
    diffStep(2, 'c', 'hv-features', ok({ msr: '0x3081' }, 'dead'), ok({ msr: '0x3081' }, 'unknown')),
    [],
    'unknown is not compared',
  );
});

test('property: an observation never differs from itself', () => {
  const obs = fc.oneof(
    fc.record({
      kind: fc.constant('ok' as const),
      values: fc.dictionary(
        fc.constantFrom('eax', 'cf', 'gpa', 'ran'),
        fc.constantFrom('0', '0x1', '6', 'x'),
      ),
      vm: fc.constantFrom('alive' as const, 'dead' as const, 'unknown' as const),
    }),
    fc.record({
      kind: fc.constant('err' as const),
      code: fc.constantFrom('busy', 'failed'),
      vm: fc.constantFrom('alive' as const, 'dead' as const),
    }),
    fc.constant<StepObservation>({ kind: 'dead', vm: 'dead' }),
  );
  fc.assert(
    fc.property(
      obs,
      fc.constantFrom(
        'rmpadjust',
        'pvalidate',
        'vmsa-alloc',
        'wait-marker',
        'vmsa-free',
      ) as fc.Arbitrary<'rmpadjust'>,
      (o, op) => {
        assert.deepEqual(diffStep(1, 'x', op, o, o), []);
      },
    ),
  );
});

test('batch observations: where the guest stopped, and what is known about the VM after each step', () => {
  const steps: AgentRequest[][] = [
    [{ verb: 'hv-features' }],
    [{ verb: 'sev-info' }],
    [{ verb: 'hv-features' }],
  ];
  const r = (verb: 'hv-features' | 'sev-info'): AgentReply =>
    verb === 'hv-features'
      ? { status: 'ok', verb, msr: 0x3081n, features: 3n }
      : { status: 'ok', verb, msr: 0x2000133000001n, max: 2, min: 1, cbit: 51 };
  const all = batchObservations(steps, [r('hv-features'), r('sev-info'), r('hv-features')], {
    died: false,
    aliveAtEnd: true,
  });
  assert.deepEqual(
    all.map((o) => [o.kind, o.vm]),
    [
      ['ok', 'alive'],
      ['ok', 'alive'],
      ['ok', 'alive'],
    ],
  );
  assert.deepEqual(all[1]!.values, { msr: '0x2000133000001', max: '2', min: '1', cbit: '51' });
  // Died during step 3 (or right after step 2's answer): step 2's VM state is unknown.
  const died = batchObservations(steps, [r('hv-features'), r('sev-info')], { died: true, aliveAtEnd: false });
  assert.deepEqual(
    died.map((o) => [o.kind, o.vm]),
    [
      ['ok', 'alive'],
      ['ok', 'unknown'],
      ['dead', 'dead'],
    ],
  );
  // Died after the last answer (the liveness probe got none): dead after the last step.
  const last = batchObservations(steps, [r('hv-features'), r('sev-info'), r('hv-features')], {
    died: true,
    aliveAtEnd: false,
  });
  assert.deepEqual(
    last.map((o) => o.vm),
    ['alive', 'alive', 'dead'],
  );
  const broke = batchObservations(steps, [r('hv-features')], {
    died: false,
    aliveAtEnd: false,
    brokeReason: 'SNPSIM_STEP_TIMEOUT: ...',
  });
  assert.deepEqual(
    broke.map((o) => o.kind),
    ['ok', 'not-run', 'not-run'],
  );
  assert.equal(broke[1]!.reason, 'SNPSIM_STEP_TIMEOUT: ...');
});

test('progress: a rewritten line on a terminal, at most ten lines in a log', () => {
  const lines: string[] = [];
  const log = createProgress({ write: (s: string) => lines.push(s), isTTY: false }, 57);
  for (let i = 0; i < 57; i++) log.tick(`t s${i}`);
  log.done();
  assert.equal(lines.length, 10);
  assert.equal(lines.at(-1), 'progress: 57/57 scenario runs (100%)\n');
  const tty: string[] = [];
  const bar = createProgress({ write: (s: string) => tty.push(s), isTTY: true }, 3);
  for (let i = 0; i < 3; i++) bar.tick(`sim scenario-${i}`);
  bar.done();
  assert.deepEqual(tty, [
    '\r\x1b[K[1/3] sim scenario-0',
    '\r\x1b[K[2/3] sim scenario-1',
    '\r\x1b[K[3/3] sim scenario-2',
    '\r\x1b[K',
  ]);
});

test('target specs: model, sim, ssh, fixture; errors are usage errors', () => {
  assert.deepEqual(parseTargetSpec('model'), { kind: 'model', text: 'model' });
  assert.deepEqual(parseTargetSpec('sim:rfc-v4:milan'), {
    kind: 'sim',
    text: 'sim:rfc-v4:milan',
    policy: 'rfc-v4',
    profile: 'milan',
  });
  assert.deepEqual(parseTargetSpec('ssh://root@10.0.0.5:2222'), {
    kind: 'ssh',
    text: 'ssh://root@10.0.0.5:2222',
    user: 'root',
    host: '10.0.0.5',
    port: 2222,
  });
  assert.deepEqual(parseTargetSpec('ssh://ubuntu@[fd00::1]'), {
    kind: 'ssh',
    text: 'ssh://ubuntu@[fd00::1]',
    user: 'ubuntu',
    host: 'fd00::1',
    port: 22,
  });
  assert.deepEqual(parseTargetSpec('fixture:runs/genoa.json'), {
    kind: 'fixture',
    text: 'fixture:runs/genoa.json',
    file: 'runs/genoa.json',
  });
  for (const bad of ['ssh://root@', 'ssh://r;m@host', 'model:', 'model:a:b:c', 'fixture:', 'http://x']) {
    assert.throws(
      () => parseTargetSpec(bad),
      (e: unknown) => SnpsimError.is(e) && e.exitCode === 2,
      bad,
    );
  }
});
