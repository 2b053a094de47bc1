import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkScenarioExpectations,
  DEFAULT_POLICY,
  defaultRunEnvironment,
  loadScenarios,
  ModelReference,
  runCommand,
} from '../../guest-harness/index.js';
import { CORPUS, capture } from './run-helpers.js';

test('the corpus has at least 40 scenarios covering every area, each with a description', async () => {
  const scenarios = await loadScenarios([CORPUS]);
  assert.ok(scenarios.length >= 40, `${scenarios.length} scenarios`);
  const tags = new Set(scenarios.flatMap((s) => s.tags));
  for (const area of [
    'discovery',
    'malformed',
    'life-cycle',
    'vmsa',
    'page-state',
    'init-sipi',
    'pv-kick',
    'host',
    'concurrent',
    'sev-features',
    'gpa',
  ]) {
    assert.ok(tags.has(area), `no scenario tagged ${area}`);
  }
  for (const s of scenarios) {
    assert.ok(s.description.length >= 40, `${s.name}: describe what it probes and the expected outcome`);
    assert.ok(
      s.steps.some((st) => st.expect !== undefined),
      `${s.name} expects nothing`,
    );
  }
});

test('snpsim run scenarios/ --target model: every scenario passes with the expected per-step outcomes (default policy)', async () => {
  const c = capture();
  const code = await runCommand(
    [CORPUS, '--target', 'model', '--quiet', '--verbose'],
    c.io,
    defaultRunEnvironment(),
  );
  assert.equal(code, 0, c.out());
  assert.equal(DEFAULT_POLICY, 'linux-6.11');
  assert.match(c.out(), /target model \(model: policy linux-6\.11, profile genoa/);
  assert.match(c.out(), /(\d+) pass, 0 diff, 0 error \(of \1\)/);
  assert.match(c.out(), /PASS {2}lifecycle-create-linux-vmsa/);
});

for (const policy of ['rfc-v4', 'v5-v9', 'rfc-v9', 'linux-6.15', 'linux-6.16']) {
  test(`the corpus encodes what ${policy} does: the model under that policy meets every expectation`, async () => {
    const scenarios = await loadScenarios([CORPUS]);
    const reference = new ModelReference();
    const problems: string[] = [];
    for (const s of scenarios) {
      const run = await reference.run(s, { policy, profile: 'genoa' });
      assert.equal(run.error, undefined, `${s.name}: ${run.error?.message}`);
      for (const f of checkScenarioExpectations(s.steps, s.labels, run.observations, policy)) {
        problems.push(`${s.name} step ${f.step} (${f.label}): ${f.problem}`);
      }
    }
    assert.deepEqual(problems, []);
  });
}

test('a policy the corpus does not encode (strict) is reported as the model contradicting the scenarios', async () => {
  const c = capture();
  const code = await runCommand(
    [CORPUS, '--target', 'model', '--policy', 'strict', '--quiet'],
    c.io,
    defaultRunEnvironment(),
  );
  assert.equal(code, 1);
  assert.match(
    c.out(),
    /FAIL {2}lifecycle-create-linux-vmsa: step \d+ \(\S+\) the model contradicts the scenario/,
  );
});
