import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  defaultRunEnvironment,
  loadScenarios,
  type RunReport,
  runCommand,
} from '../../guest-harness/index.js';
import { CORPUS, capture, corpus, tempDir } from './run-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await tempDir('sim'));
});
after(async () => cleanup());

test('npm start: the corpus against the simulated guest over loopback SSH (pinned host key, key auth) exits 0', async () => {
  const c = capture();
  const json = join(dir, 'sim.json');
  const code = await runCommand([CORPUS, '--target', 'sim', '--json', json], c.io, defaultRunEnvironment());
  assert.equal(code, 0, c.out());
  const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
  const t = report.targets[0]!;
  assert.equal(t.kind, 'sim');
  assert.equal(t.platform.backend, 'sim');
  assert.equal(t.platform.host_steps, '1');
  assert.match(t.platform.host_key ?? '', /^SHA256:[A-Za-z0-9+/]{43}$/);
  assert.match(t.platform.endpoint ?? '', /^127\.0\.0\.1:\d+$/);
  assert.equal(t.summary.diff + t.summary.error + t.summary.fail, 0);
  // Only model-only steps (host-run, concurrent) cannot go over the agent protocol.
  const modelOnly = (await loadScenarios([CORPUS])).filter((s) => s.modelOnly).map((s) => s.name);
  const skipped = t.scenarios.filter((s) => s.status === 'skipped');
  assert.ok(modelOnly.length > 0);
  assert.deepEqual(skipped.map((s) => s.name).sort(), modelOnly.sort());
  assert.match(skipped[0]!.reason ?? '', /model-only steps/);
  // Non-TTY progress: at most ten lines.
  assert.ok(
    c
      .err()
      .split('\n')
      .filter((l) => l.startsWith('progress:')).length <= 10,
  );
});

test('a fleet: several targets in one run, in parallel, each with its own section', async () => {
  const c = capture();
  const json = join(dir, 'fleet.json');
  const code = await runCommand(
    [
      ...corpus('malformed-sev-features-debug-swap', 'discovery-hv-features'),
      '--target',
      'sim',
      '--target',
      'sim:linux-6.15',
      '--target',
      'model',
      '--json',
      json,
      '--quiet',
    ],
    c.io,
    defaultRunEnvironment(),
  );
  assert.equal(code, 1);
  const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
  assert.deepEqual(
    report.targets.map((t) => [t.target, t.summary.pass, t.summary.diff]),
    [
      ['sim', 2, 0],
      ['sim:linux-6.15', 1, 1],
      ['model', 2, 0],
    ],
  );
  assert.equal(report.targets[1]!.platform.policy, 'linux-6.15');
  assert.match(c.out(), /target sim:linux-6\.15 \(model: policy linux-6\.11/);
});
