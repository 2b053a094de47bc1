import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  defaultRunEnvironment,
  REPORT_SCHEMA_PATH,
  type RunReport,
  renderJunit,
  runCommand,
} from '../../guest-harness/index.js';
import { jsonSchemaErrors } from './json-schema-check.js';
import { capture, corpus, ROOT, tempDir } from './run-helpers.js';
import { parseXml } from './xml-check.js';

let dir: string;
let cleanup: () => Promise<void>;
let report: RunReport;
let terminal: string;
let junit: string;
let exitCode: number;

const SCENARIOS = corpus(
  'discovery-hv-features',
  'malformed-sev-features-debug-swap',
  'lifecycle-create-linux-vmsa',
  'malformed-sev-features-zero',
);

before(async () => {
  ({ dir, cleanup } = await tempDir('report'));
  const c = capture();
  // Reference: Linux 6.11. Target: the model running Linux 6.15, which compares RAX with
  // vmsa_features exactly (745ff82199b1), so CREATEs claiming other SEV_FEATURES diverge.
  exitCode = await runCommand(
    [
      ...SCENARIOS,
      '--target',
      'model:linux-6.15',
      '--json',
      join(dir, 'out', 'report.json'),
      '--junit',
      join(dir, 'out', 'junit.xml'),
      '--quiet',
    ],
    c.io,
    defaultRunEnvironment(),
  );
  terminal = c.out();
  report = JSON.parse(await readFile(join(dir, 'out', 'report.json'), 'utf8')) as RunReport;
  junit = await readFile(join(dir, 'out', 'junit.xml'), 'utf8');
});
after(async () => cleanup());

test('a target with another policy diverges: exit 1, the differing step found with both values', () => {
  assert.equal(exitCode, 1);
  const t = report.targets[0]!;
  assert.equal(t.target, 'model:linux-6.15');
  assert.deepEqual(
    t.scenarios.map((s) => [s.name, s.status]),
    [
      ['discovery-hv-features', 'pass'],
      ['malformed-sev-features-debug-swap', 'diff'],
      ['lifecycle-create-linux-vmsa', 'pass'],
      ['malformed-sev-features-zero', 'diff'],
    ],
  );
  const diff = t.scenarios[1]!;
  assert.deepEqual(
    {
      step: diff.firstDifference?.step,
      label: diff.firstDifference?.label,
      what: diff.firstDifference?.what,
      model: diff.firstDifference?.model,
      target: diff.firstDifference?.target,
    },
    { step: 5, label: 'create', what: 'sw_exit_info1', model: '0x0', target: '0x2' },
  );
  assert.ok(
    diff.differences.some(
      (d) => d.label === 'ran-a' && d.what === 'ran' && d.model === '1' && d.target === '0',
    ),
  );
  assert.deepEqual(t.summary, {
    total: 4,
    pass: 2,
    'expected-diff': 0,
    diff: 2,
    'unexpected-pass': 0,
    fail: 0,
    error: 0,
    skipped: 0,
  });
});

test('terminal summary: per scenario status and the first differing step with both values', () => {
  assert.match(
    terminal,
    /target model:linux-6\.15 \(model: policy linux-6\.11, profile genoa; backend=model\)/,
  );
  assert.match(
    terminal,
    /DIFF {2}malformed-sev-features-debug-swap: step 5 \(create\) sw_exit_info1: model 0x0 \| target 0x2 \(\+\d+ more\)/,
  );
  assert.match(terminal, /2 pass, 2 diff, 0 error \(of 4\)/);
  assert.match(terminal, /differences found \(exit 1\)/);
  assert.doesNotMatch(terminal, /PASS {2}discovery/, 'passing scenarios are listed only with --verbose');
});

test('the JSON report validates against the published schemas/report.schema.json', async () => {
  const schema = JSON.parse(await readFile(join(ROOT, REPORT_SCHEMA_PATH), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.deepEqual(jsonSchemaErrors(schema, report), []);
  assert.equal(report.format, 'snpsim-report');
  assert.equal(report.exitCode, 1);
  assert.equal(report.complete, true);
  const step = report.targets[0]!.scenarios[1]!.steps[4]!;
  assert.deepEqual(step.requests, ['ap-creation request=1 apic=1 vmpl=0 h=0 rax=0x21']);
  assert.equal(
    step.model?.model?.vcpus.length,
    2,
    'the model state is recorded for experiments (the scenario needs 2 vCPUs)',
  );
  // A schema that accepted anything would prove nothing: a broken report must fail.
  const broken = JSON.parse(JSON.stringify(report)) as { targets: { scenarios: { status: string }[] }[] };
  broken.targets[0]!.scenarios[0]!.status = 'maybe';
  assert.notDeepEqual(jsonSchemaErrors(schema, broken), []);
});

test('the JUnit XML: one suite per target, one case per scenario, failures carry the difference', () => {
  const root = parseXml(junit);
  assert.equal(root.name, 'testsuites');
  assert.deepEqual(
    {
      tests: root.attrs.tests,
      failures: root.attrs.failures,
      errors: root.attrs.errors,
      skipped: root.attrs.skipped,
    },
    { tests: '4', failures: '2', errors: '0', skipped: '0' },
  );
  const [suite] = root.children;
  assert.equal(suite?.name, 'testsuite');
  assert.equal(suite?.attrs.name, 'model:linux-6.15');
  const cases = suite!.children.filter((c) => c.name === 'testcase');
  assert.deepEqual(
    cases.map((c) => c.attrs.name),
    [
      'discovery-hv-features',
      'malformed-sev-features-debug-swap',
      'lifecycle-create-linux-vmsa',
      'malformed-sev-features-zero',
    ],
  );
  const props = suite!.children.find((c) => c.name === 'properties');
  assert.ok(props?.children.some((p) => p.attrs.name === 'policy' && p.attrs.value === 'linux-6.11'));
  const failure = cases[1]!.children.find((c) => c.name === 'failure');
  assert.equal(failure?.attrs.type, 'diff');
  assert.equal(failure?.attrs.message, 'step 5 (create) sw_exit_info1: model 0x0, target 0x2');
  assert.match(failure?.text ?? '', /ap-creation request=1 apic=1 vmpl=0 h=0 rax=0x21/);
  assert.equal(cases[0]!.children.length, 0, 'a passing case has no children');
});

test('JUnit escaping survives hostile text (quotes, angle brackets, control characters)', () => {
  const hostile = JSON.parse(JSON.stringify(report)) as RunReport;
  const s = hostile.targets[0]!.scenarios[1]!;
  (s as { name: string }).name = 'a"<b>&\'c\u0001';
  const root = parseXml(renderJunit(hostile));
  const cases = root.children[0]!.children.filter((c) => c.name === 'testcase');
  assert.equal(cases[1]!.attrs.name, 'a"<b>&\'c\ufffd');
});
