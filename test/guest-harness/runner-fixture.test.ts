import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  defaultRunEnvironment,
  FIXTURE_SCHEMA_PATH,
  type Fixture,
  type RunReport,
  runCommand,
} from '../../guest-harness/index.js';
import { jsonSchemaErrors } from './json-schema-check.js';
import { capture, corpus, ROOT, tempDir } from './run-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
let recorded: { code: number; report: RunReport; fixture: Fixture };
let replayed: { code: number; report: RunReport };

// Passing, diverging (6.15 vs the 6.11 reference), host-step and destructive (the VM stops; the
// simulated guest gives the next agent run a new VM) scenarios.
const NAMES = [
  'discovery-sev-info',
  'malformed-sev-features-debug-swap',
  'lifecycle-create-linux-vmsa',
  'host-set-mp-state-stopped',
  'vmsa-bit-not-set',
  'vmsa-zero-template',
  'malformed-request-code-3',
];

async function run(args: string[]) {
  const c = capture();
  const code = await runCommand([...args, '--quiet'], c.io, defaultRunEnvironment());
  return { code, out: c.out() };
}

before(async () => {
  ({ dir, cleanup } = await tempDir('fixture'));
  for (const n of NAMES) await copyFile(corpus(n)[0]!, join(dir, `${n}.json`));
  const files = NAMES.map((n) => join(dir, `${n}.json`));
  const fixtureFile = join(dir, 'recorded', 'sim-6.15.fixture.json');
  const r1 = await run([
    ...files,
    ...[
      '--target',
      'sim:linux-6.15',
      '--record',
      fixtureFile,
      '--json',
      join(dir, 'a.json'),
      '--platform',
      'host_kernel=6.15.2',
    ],
  ]);
  recorded = {
    code: r1.code,
    report: JSON.parse(await readFile(join(dir, 'a.json'), 'utf8')) as RunReport,
    fixture: JSON.parse(await readFile(fixtureFile, 'utf8')) as Fixture,
  };
  const r2 = await run([...files, '--target', `fixture:${fixtureFile}`, '--json', join(dir, 'b.json')]);
  replayed = { code: r2.code, report: JSON.parse(await readFile(join(dir, 'b.json'), 'utf8')) as RunReport };
});
after(async () => cleanup());

test('the recording run over the simulated guest diverges where 6.15 differs from 6.11', () => {
  assert.equal(recorded.code, 1);
  const statuses = Object.fromEntries(recorded.report.targets[0]!.scenarios.map((s) => [s.name, s.status]));
  assert.equal(statuses['malformed-sev-features-debug-swap'], 'diff');
  assert.equal(statuses['vmsa-bit-not-set'], 'pass', 'the VM stops on both sides');
  assert.equal(
    statuses['vmsa-zero-template'],
    'pass',
    'after a stopped VM the simulated guest serves a new one',
  );
  assert.equal(statuses['lifecycle-create-linux-vmsa'], 'pass');
});

test('the fixture holds the observations and the platform details, and validates against its schema', async () => {
  const schema = JSON.parse(await readFile(join(ROOT, FIXTURE_SCHEMA_PATH), 'utf8')) as Record<
    string,
    unknown
  >;
  assert.deepEqual(jsonSchemaErrors(schema, recorded.fixture), []);
  const f = recorded.fixture;
  assert.equal(f.target, 'sim:linux-6.15');
  assert.equal(f.platform.policy, 'linux-6.15');
  assert.equal(f.platform.backend, 'sim');
  assert.equal(f.platform.host_kernel, '6.15.2', 'declared platform details are recorded');
  assert.equal(f.platform.sev_status, '0x7');
  assert.deepEqual(f.scenarios.map((s) => s.name).sort(), [...NAMES].sort());
  for (const s of f.scenarios) {
    for (const o of s.observations)
      assert.equal(o.model, undefined, 'a target observation carries no model state');
  }
  const dead = f.scenarios.find((s) => s.name === 'vmsa-bit-not-set')!;
  assert.equal(dead.observations.at(-1)?.kind, 'dead');
});

test('replaying the fixture gives the same result: exit code, statuses, differences, observations', () => {
  assert.equal(replayed.code, recorded.code);
  const a = recorded.report.targets[0]!;
  const b = replayed.report.targets[0]!;
  assert.equal(b.kind, 'fixture');
  assert.equal(b.platform.recorded_target, 'sim:linux-6.15');
  assert.deepEqual(b.summary, a.summary);
  for (const [i, s] of a.scenarios.entries()) {
    const t = b.scenarios[i]!;
    assert.equal(t.name, s.name);
    assert.equal(t.status, s.status, s.name);
    assert.deepEqual(t.differences, s.differences, s.name);
    assert.deepEqual(
      t.steps.map((x) => x.target),
      s.steps.map((x) => x.target),
      s.name,
    );
  }
});

test('a scenario edited since the recording is refused before anything runs (exit 2)', async () => {
  const file = join(dir, 'malformed-request-code-3.json');
  const doc = JSON.parse(await readFile(file, 'utf8')) as { description: string };
  doc.description += ' (edited)';
  await writeFile(file, JSON.stringify(doc));
  const c = capture();
  await assert.rejects(
    runCommand(
      [file, '--target', `fixture:${join(dir, 'recorded', 'sim-6.15.fixture.json')}`],
      c.io,
      defaultRunEnvironment(),
    ),
    /changed since it was recorded .*record it again/,
  );
});

test('a scenario the fixture does not hold is skipped, with the reason', async () => {
  const other = corpus('discovery-hv-features')[0]!;
  const r = await run([
    other,
    '--target',
    `fixture:${join(dir, 'recorded', 'sim-6.15.fixture.json')}`,
    '--verbose',
  ]);
  assert.equal(r.code, 0);
  assert.match(r.out, /SKIP {2}discovery-hv-features: not recorded in .*sim-6\.15\.fixture\.json/);
});
