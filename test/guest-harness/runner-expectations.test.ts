import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import {
  conditionHolds,
  defaultRunEnvironment,
  EXPECTATIONS_SCHEMA_PATH,
  parseExpectations,
  type RunReport,
  runCommand,
  SnpsimError,
} from '../../guest-harness/index.js';
import { jsonSchemaErrors } from './json-schema-check.js';
import { CORPUS, capture, corpus, ROOT, tempDir, writeJson } from './run-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await tempDir('expect'));
});
after(async () => cleanup());

const SCENARIOS = corpus('discovery-hv-features', 'malformed-sev-features-debug-swap');
const DIVERGENCE = {
  scenario: 'malformed-sev-features-debug-swap',
  when: { host_kernel: '>=6.15', backend: 'model' },
  reason: '745ff82199b1 (6.15) compares RAX with vmsa_features exactly; the reference models 6.11',
  link: 'https://lore.kernel.org/kvm/20250227012541.3234589-1-seanjc@google.com/',
};

async function run(expectations: unknown, platform = 'host_kernel=6.15.2') {
  const file = await writeJson(join(dir, `e${Math.random().toString(36).slice(2)}.json`), expectations);
  const json = join(dir, `r${Math.random().toString(36).slice(2)}.json`);
  const c = capture();
  const code = await runCommand(
    [
      ...SCENARIOS,
      '--target',
      'model:linux-6.15',
      '--expectations',
      file,
      '--platform',
      platform,
      '--json',
      json,
      '--quiet',
      '--verbose',
    ],
    c.io,
    defaultRunEnvironment(),
  );
  return { code, out: c.out(), report: JSON.parse(await readFile(json, 'utf8')) as RunReport };
}

test('a known divergence (any step, conditioned on the platform) is accepted with its reason: exit 0', async () => {
  const r = await run({ version: 1, divergences: [DIVERGENCE] });
  assert.equal(r.code, 0, r.out);
  const s = r.report.targets[0]!.scenarios[1]!;
  assert.equal(s.status, 'expected-diff');
  assert.deepEqual(s.differences, []);
  assert.ok(s.expectedDifferences.length >= 2, 'the CREATE answer and the marker both differ');
  assert.ok(s.expectedDifferences.every((d) => d.reason === DIVERGENCE.reason && d.link === DIVERGENCE.link));
  assert.match(
    r.out,
    /KNOWN malformed-sev-features-debug-swap: step 5 \(create\) sw_exit_info1 differs as expected: 745ff82199b1/,
  );
});

test('a known divergence restricted to one step and value leaves the other differences unexplained', async () => {
  const r = await run({
    version: 1,
    divergences: [{ ...DIVERGENCE, step: 'create', what: 'sw_exit_info1', target: '0x2' }],
  });
  assert.equal(r.code, 1);
  const s = r.report.targets[0]!.scenarios[1]!;
  assert.equal(s.status, 'diff');
  assert.deepEqual(
    s.expectedDifferences.map((d) => [d.step, d.what]),
    [[5, 'sw_exit_info1']],
  );
  assert.deepEqual(
    s.differences.map((d) => d.label),
    ['create', 'ran-a'],
    'sw_exit_info2 of the CREATE and the marker are not covered',
  );
});

test('an expected divergence that does not occur is an unexpected pass: exit 1', async () => {
  const r = await run({
    version: 1,
    divergences: [
      DIVERGENCE,
      {
        scenario: 'discovery-*',
        step: 'hv-features',
        reason: 'reviewed: hypothetical 6.15 feature bit change',
      },
    ],
  });
  assert.equal(r.code, 1);
  const s = r.report.targets[0]!.scenarios[0]!;
  assert.equal(s.status, 'unexpected-pass');
  assert.deepEqual(s.unexpectedPasses, [
    { entry: 1, step: 'hv-features', reason: 'reviewed: hypothetical 6.15 feature bit change' },
  ]);
  assert.match(
    r.out,
    /UPASS discovery-hv-features: known divergence \(expectations entry #1, step hv-features\) did not occur/,
  );
});

test('a divergence whose platform condition does not hold is not applied', async () => {
  const r = await run({ version: 1, divergences: [DIVERGENCE] }, 'host_kernel=6.11.0');
  assert.equal(r.code, 1);
  assert.equal(r.report.targets[0]!.scenarios[1]!.status, 'diff');
  assert.deepEqual(r.report.targets[0]!.scenarios[1]!.expectedDifferences, []);
});

test('entries naming scenarios that did not run are warned about', async () => {
  const r = await run({
    version: 1,
    divergences: [DIVERGENCE, { scenario: 'no-such-scenario', reason: 'a reason long enough' }],
  });
  assert.match(r.out, /warning: expectations entry #1 names scenario 'no-such-scenario'/);
});

test('the corpus expectations file is valid, matches its published schema, and names corpus scenarios', async () => {
  const text = await readFile(join(CORPUS, 'expectations.json'), 'utf8');
  const doc = parseExpectations('scenarios/expectations.json', text);
  const schema = JSON.parse(await readFile(join(ROOT, EXPECTATIONS_SCHEMA_PATH), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.deepEqual(jsonSchemaErrors(schema, JSON.parse(text)), []);
  assert.ok(doc.divergences.length > 0);
  for (const d of doc.divergences)
    assert.ok(d.reason.length >= 20, `entry for ${d.scenario} needs a real reason`);
});

test('bad expectation conditions are input errors naming the path', () => {
  assert.throws(
    () =>
      parseExpectations(
        'e.json',
        '{"version":1,"divergences":[{"scenario":"x","reason":"long enough reason","when":{"kernel":"<six"}}]}',
      ),
    (e: unknown) =>
      SnpsimError.is(e) &&
      /e\.json: \$\.divergences\[0\]\.when\.kernel: '<six' is not a version comparison/.test(e.message),
  );
});

test('conditions: version comparisons on dotted numbers, `*` globs, missing keys never match', () => {
  assert.equal(conditionHolds('<6.15', '6.12.11-amd64'), true);
  assert.equal(conditionHolds('>=6.15', '6.12.11-amd64'), false);
  assert.equal(conditionHolds('=6.12', '6.12.11'), true, '=6.12 matches 6.12.x');
  assert.equal(conditionHolds('=6.12.1', '6.12.11'), false);
  assert.equal(conditionHolds('linux-6.1*', 'linux-6.15'), true);
  assert.equal(conditionHolds('ssh://*', 'sim'), false);
  assert.equal(conditionHolds('*', undefined), false);
  const version = fc
    .array(fc.integer({ min: 0, max: 30 }), { minLength: 1, maxLength: 3 })
    .map((a) => a.join('.'));
  fc.assert(
    fc.property(version, version, (a, b) => {
      assert.notEqual(conditionHolds(`<${b}`, a), conditionHolds(`>=${b}`, a));
      assert.notEqual(conditionHolds(`>${b}`, a), conditionHolds(`<=${b}`, a));
      if (conditionHolds(`=${a}`, b) && conditionHolds(`=${b}`, a))
        assert.equal(conditionHolds(`<${b}`, a), false);
    }),
  );
});
