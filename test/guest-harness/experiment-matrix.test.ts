/**
 * `snpsim experiment`: the matrix of scenarios × configurations, its classes and first differences,
 * the profile switches a guest scenario can reach, and the command's output and exit codes.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import {
  combinations,
  ExitCode,
  main,
  parsePolicySpec,
  parseProfileSpec,
  renderMatrix,
  runMatrix,
} from '../../guest-harness/index.js';
import {
  buffers,
  DEBUG_SWAP_RAX,
  HV_FEATURES,
  RESCINDED_VMSA,
  scenarioDir,
  scenarios,
  UNVALIDATED_RMPADJUST,
} from './experiment-support.js';

const configs = (policies: string, profiles = 'genoa') =>
  combinations(policies.split(',').flatMap(parsePolicySpec), profiles.split(',').flatMap(parseProfileSpec));

test('two policies that differ on a known scenario: exactly that cell diverges, with its first difference', () => {
  const report = runMatrix(scenarios(DEBUG_SWAP_RAX, HV_FEATURES), configs('linux-6.11,linux-6.15'));
  assert.deepEqual(report.summary, { scenarios: 2, diverging: 1, errors: 0 });
  const [swap, hv] = report.rows;
  assert.equal(swap?.diverges, true);
  assert.deepEqual(
    swap?.cells.map((c) => c.class),
    ['A', 'B'],
  );
  assert.equal(swap?.cells[0]?.firstDifference, undefined);
  // 6.11 compares only the injection-mode bits; 6.15 (745ff82199b1) wants RAX == vmsa_features.
  assert.deepEqual(swap?.cells[1]?.firstDifference, {
    step: 5,
    label: '5-ap-creation',
    op: 'ap-creation',
    what: 'sw_exit_info1',
    a: '0x0',
    b: '0x2',
  });
  assert.equal(hv?.diverges, false);
  assert.deepEqual(
    hv?.cells.map((c) => c.class),
    ['A', 'A'],
  );

  const text = renderMatrix(report);
  assert.match(text, /\[1\] linux-6\.11 · genoa\n {2}\[2\] linux-6\.15 · genoa/);
  assert.match(text, /^debug-swap-rax +A +B$/m);
  assert.doesNotMatch(text, /^hv-features/m, 'agreeing scenarios are listed only with --all');
  assert.match(text, /\[2\] step 5 \(5-ap-creation\) sw_exit_info1: \[1\] 0x0 \| \[2\] 0x2 \(\+\d+ more\)/);
  assert.match(text, /1 of 2 scenarios diverge across 2 configurations/);
  assert.match(renderMatrix(report, { all: true }), /^hv-features +A +A$/m);
});

test('configurations with identical runs share a class; the first difference is printed once per class', () => {
  const report = runMatrix(scenarios(DEBUG_SWAP_RAX), configs('linux-6.11,linux-6.15,linux-6.16,rfc-v4'));
  const classes = report.rows[0]?.cells.map((c) => c.class);
  // 6.15 and 6.16 reject the request the same way; RFC v4 accepts it silently like 6.11.
  assert.deepEqual(classes, ['A', 'B', 'B', 'A']);
  const text = renderMatrix(report);
  assert.match(text, /\[2\] \(= \[3\]\) step 5/);
  assert.doesNotMatch(text, /\[3\] step 5/);
});

test('firmware/CPU switches a guest scenario reaches change the outcome (profiles are honoured)', () => {
  const report = runMatrix(
    scenarios(UNVALIDATED_RMPADJUST, RESCINDED_VMSA),
    configs('linux-6.11', 'genoa,genoa-rmpadjust-unvalidated-allowed,genoa-vmrun-needs-validated'),
  );
  const [rmpadjust, rescinded] = report.rows;
  // genoa: RMPADJUST of an unvalidated page is #VC, which the kernel cannot survive; 'allowed': EAX 0.
  assert.deepEqual(
    rmpadjust?.cells.map((c) => c.class),
    ['A', 'B', 'A'],
  );
  assert.deepEqual(rmpadjust?.cells[1]?.firstDifference?.step, 2);
  assert.match(rmpadjust?.cells[1]?.firstDifference?.b ?? '', /^ok eax=0/);
  // VMRUN of the rescinded VMSA: entered on genoa, VMEXIT_INVALID (VM stopped, 6.11) when Validated is required.
  assert.deepEqual(
    rescinded?.cells.map((c) => c.class),
    ['A', 'A', 'B'],
  );
  assert.equal(rescinded?.cells[2]?.firstDifference?.step, 6);
  assert.equal(rescinded?.cells[2]?.firstDifference?.what, 'vm');
});

test('--compare model also compares the internal state (here only mp_state differs)', () => {
  const destroyOffline = {
    name: 'destroy-offline',
    description: 'DESTROY of an offlined AP',
    steps: [
      { op: 'cpu-offline', cpu: 1 },
      { op: 'ap-creation', request: 'destroy', apic: 1 },
    ],
  };
  const both = configs('linux-6.11,linux-6.11+offlineState=UNINITIALIZED');
  assert.equal(runMatrix(scenarios(destroyOffline), both).summary.diverging, 0);
  const report = runMatrix(scenarios(destroyOffline), both, { compared: 'model' });
  assert.deepEqual(report.rows[0]?.cells[1]?.firstDifference, {
    step: 2,
    label: '2-ap-creation',
    op: 'ap-creation',
    what: 'model:vcpu1.mpState',
    a: 'HALTED',
    b: 'UNINITIALIZED',
  });
});

test('snpsim experiment: table on stdout, JSON report, exit 1 on a divergence and 0 without', async (t) => {
  const { dir, cleanup } = await scenarioDir(DEBUG_SWAP_RAX, HV_FEATURES);
  t.after(cleanup);
  const json = join(dir, 'out', 'matrix.json');
  const b = buffers();
  const code = await main(
    ['experiment', dir, '--policies', 'linux-6.11,linux-6.15', '--json', json, '--quiet'],
    b.io,
  );
  assert.equal(code, ExitCode.DIFFERENCES);
  assert.match(b.out(), /^debug-swap-rax +A +B$/m);
  assert.equal(b.err(), '');
  const doc = JSON.parse(readFileSync(json, 'utf8'));
  assert.equal(doc.format, 'snpsim-experiment');
  assert.deepEqual(
    doc.configurations.map((c: { label: string }) => c.label),
    ['linux-6.11 · genoa', 'linux-6.15 · genoa'],
  );
  assert.equal(doc.rows.length, 2);

  const calm = buffers();
  const hvOnly = await scenarioDir(HV_FEATURES);
  t.after(hvOnly.cleanup);
  assert.equal(
    await main(['experiment', hvOnly.dir, '--policies', 'linux-6.11,linux-6.15', '--quiet'], calm.io),
    ExitCode.OK,
  );
  assert.match(calm.out(), /0 of 1 scenario diverge across 2 configurations/);
});

test('snpsim experiment: progress in a log is a few lines, not one per run', async (t) => {
  const { dir, cleanup } = await scenarioDir(HV_FEATURES);
  t.after(cleanup);
  const b = buffers(false);
  await main(
    ['experiment', dir, '--policies', 'rfc-v4,v5-v9,rfc-v9,linux-6.11,linux-6.15,linux-6.16,strict'],
    b.io,
  );
  const lines = b
    .err()
    .split('\n')
    .filter((l) => l.length > 0);
  assert.ok(lines.length > 0 && lines.length <= 10, `progress lines: ${lines.length}`);
});

test('snpsim experiment: usage errors exit 2 before anything runs', async (t) => {
  const { dir, cleanup } = await scenarioDir(HV_FEATURES);
  t.after(cleanup);
  for (const [args, message] of [
    [['--policies', 'linux-6.11'], /at least two configurations/],
    [['--policies', 'linux-6.11,linux-6.15', '--compare', 'all'], /--compare all: expected guest or model/],
    [['--policies', 'linux-6.11+kickWait=maybe,linux-6.15'], /\/knobs\/kickWait/],
    [['--profiles', 'genoa,genoa+nope=1'], /unknown profile field 'nope'/],
    [['--bogus'], /Unknown option '--bogus'/],
  ] as const) {
    const b = buffers();
    assert.equal(await main(['experiment', dir, ...args, '--quiet'], b.io), ExitCode.USAGE, args.join(' '));
    assert.match(b.err(), message);
    assert.equal(b.out(), '');
  }
  const list = buffers();
  assert.equal(await main(['experiment', '--list'], list.io), ExitCode.OK);
  assert.match(list.out(), /genoa-vmsa-2m-erratum: /);
});
