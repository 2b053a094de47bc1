/**
 * `snpsim search`: generated sequences are valid scenarios; a fixed seed finds and shrinks the
 * known linux-6.11 / linux-6.15 divergence deterministically; the printed scenario loads and
 * reproduces it (its expectations hold under both policies); the command's output and exit codes.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  checkScenarioExpectations,
  combinations,
  ExitCode,
  HOST_OPS,
  loadScenarioDocuments,
  MODEL_ONLY_OPS,
  main,
  modelSide,
  parsePolicySpec,
  parseProfileSpec,
  runCommands,
  runMatrix,
  type SearchSide,
  StepList,
  searchDivergence,
  stepCommandArbitraries,
  validateScenario,
} from '../../guest-harness/index.js';
import { buffers } from './experiment-support.js';

const genoa = parseProfileSpec('genoa')[0]!;
const side = (policy: string): SearchSide => modelSide(parsePolicySpec(policy)[0]!, genoa);
/** A seed under which the search meets the RAX (SEV_FEATURES) check first. */
const SEED = 5;

test('every generated sequence is a scenario the loader accepts, with only the steps the sides can run', () => {
  for (const options of [
    { hostSteps: true, modelOnly: true },
    { hostSteps: true, modelOnly: false },
    { hostSteps: false, modelOnly: false },
  ]) {
    fc.assert(
      fc.property(fc.commands(stepCommandArbitraries<StepList>(options), { maxCommands: 12 }), (commands) => {
        const list = runCommands(new StepList(), commands);
        if (list.steps.length === 0) return;
        const r = validateScenario('generated.json', {
          description: 'a generated sequence',
          steps: list.steps,
        });
        assert.ok('scenario' in r, JSON.stringify('problems' in r ? r.problems : undefined));
        const ops = list.steps.map((s) => s.op);
        if (!options.hostSteps) assert.ok(!ops.some((op) => HOST_OPS.has(op)), ops.join(' '));
        if (!options.modelOnly) assert.ok(!ops.some((op) => MODEL_ONLY_OPS.has(op)), ops.join(' '));
        assert.equal(list.owners.length, list.steps.length);
      }),
      { seed: 42, numRuns: 150 },
    );
  }
});

test('a fixed seed finds and shrinks the linux-6.11 / linux-6.15 divergence, deterministically', async () => {
  const a = side('linux-6.11');
  const b = side('linux-6.15');
  const r = await searchDivergence({ a, b, seed: SEED, runs: 100 });
  const f = r.finding;
  assert.ok(f !== undefined, 'a divergence is found');
  assert.equal(f.reproduced, true);
  // Shrunk: allocate and prepare one VMSA page, then the CREATE whose RAX 0x21 only 6.15 rejects.
  assert.ok(f.scenario.steps.length <= 4, `${f.scenario.steps.length} steps`);
  const first = f.differences[0]!;
  assert.equal(first.step, f.scenario.steps.length, 'the scenario ends at its first difference');
  assert.deepEqual([first.op, first.what, first.a, first.b], ['ap-creation', 'sw_exit_info1', '0x0', '0x2']);
  assert.equal(f.document.name, `search-linux-6.11-vs-linux-6.15-${SEED}`);
  assert.match(f.document.description, new RegExp(`seed ${SEED}, path ${f.path}`));

  const again = await searchDivergence({ a, b, seed: SEED, runs: 100 });
  assert.deepEqual(again.finding?.document, f.document);
  const replay = await searchDivergence({ a, b, seed: SEED, runs: 100, path: f.path });
  assert.deepEqual(replay.finding?.document, f.document, 'the seed and path replay the counterexample');
});

test('the printed scenario loads, reproduces the divergence, and its expectations hold under both policies', async () => {
  const r = await searchDivergence({ a: side('linux-6.11'), b: side('linux-6.15'), seed: SEED, runs: 100 });
  const text = JSON.stringify(r.finding?.document, null, 2);
  const [scenario] = loadScenarioDocuments([{ file: 'found.json', value: JSON.parse(text) }], {
    knownPolicies: ['linux-6.11', 'linux-6.15'],
  });
  assert.ok(scenario !== undefined);
  const matrix = runMatrix(
    [scenario],
    combinations(['linux-6.11', 'linux-6.15'].flatMap(parsePolicySpec), [genoa]),
  );
  assert.deepEqual(matrix.rows[0]?.cells[1]?.firstDifference, r.finding?.differences[0]);
  const last = scenario.steps.at(-1)!;
  assert.deepEqual(Object.keys(last.expectPolicy ?? {}).sort(), ['linux-6.11', 'linux-6.15']);
  for (const policy of ['linux-6.11', 'linux-6.15']) {
    const run = await side(policy).run(scenario);
    assert.deepEqual(
      checkScenarioExpectations(scenario.steps, scenario.labels, run.observations, policy),
      [],
    );
  }
  // The expectations are not vacuous: each side's expectation fails on the other side's run.
  const other = await side('linux-6.15').run(scenario);
  assert.notDeepEqual(
    checkScenarioExpectations(scenario.steps, scenario.labels, other.observations, 'linux-6.11'),
    [],
  );
});

test('two identical sides never diverge', async () => {
  const r = await searchDivergence({ a: side('linux-6.16'), b: side('linux-6.16'), seed: 3, runs: 30 });
  assert.equal(r.finding, undefined);
  assert.ok(r.runs > 0);
});

test('a side that breaks ends the search with its error, not a divergence', async () => {
  const broken: SearchSide = {
    ...side('linux-6.11'),
    name: 'broken',
    run: async () => {
      throw new Error('connection reset');
    },
  };
  await assert.rejects(
    searchDivergence({ a: side('linux-6.11'), b: broken, seed: 1, runs: 10 }),
    /connection reset/,
  );
});

test('snpsim search: the scenario on stdout, the seed and the replay command on stderr, exit 1', async () => {
  const b = buffers();
  const code = await main(
    ['search', '--a', 'linux-6.11', '--b', 'linux-6.15', '--seed', String(SEED), '--quiet'],
    b.io,
  );
  assert.equal(code, ExitCode.DIFFERENCES);
  const doc = JSON.parse(b.out());
  assert.ok('scenario' in validateScenario('found.json', doc));
  assert.match(b.err(), new RegExp(`seed ${SEED}\\n`));
  assert.match(
    b.err(),
    /first difference: step \d+ \(\d+-ap-creation\) sw_exit_info1: linux-6\.11 0x0 \| linux-6\.15 0x2/,
  );
  assert.match(b.err(), /reproduced by the scenario on stdout: yes/);
  const replay = /replay: snpsim search (.*)\n/.exec(b.err())?.[1]?.split(' ');
  assert.ok(replay !== undefined);
  assert.deepEqual(replay.slice(0, 4), ['--a', 'linux-6.11', '--b', 'linux-6.15']);

  const again = buffers();
  assert.equal(await main(['search', ...replay], again.io), ExitCode.DIFFERENCES);
  assert.equal(again.out(), b.out(), 'the printed replay command prints the same scenario');
});

test('snpsim search: a model target as side B, and no divergence is exit 0', async () => {
  const b = buffers();
  const code = await main(
    ['search', '--a', 'linux-6.11', '--target', 'model:linux-6.15', '--seed', String(SEED), '--quiet'],
    b.io,
  );
  assert.equal(code, ExitCode.DIFFERENCES);
  assert.equal(JSON.parse(b.out()).steps.at(-1).op, 'ap-creation');

  const same = buffers();
  assert.equal(
    await main(
      ['search', '--a', 'linux-6.16', '--b', 'linux-6.16', '--runs', '10', '--seed', '1', '--quiet'],
      same.io,
    ),
    ExitCode.OK,
  );
  assert.equal(same.out(), '');
  assert.match(same.err(), /no divergence in \d+ sequences \(seed 1\)/);
});

test('snpsim search against the simulated guest over SSH: it agrees with the model, and recovers after its VM died', async () => {
  const same = buffers();
  assert.equal(
    await main(
      ['search', '--a', 'linux-6.11', '--target', 'sim', '--runs', '15', '--seed', '11', '--quiet'],
      same.io,
    ),
    ExitCode.OK,
    same.err(),
  );
  // 6.11 takes the AP offline on a rejected DESTROY; the PV kick then makes KVM run it: the sim's VM
  // stops, the search boots a fresh one for the next sequences and still reports the divergence.
  const found = buffers();
  const code = await main(
    [
      'search',
      '--a',
      'linux-6.15',
      '--target',
      'sim:linux-6.11',
      '--runs',
      '40',
      '--seed',
      String(SEED),
      '--quiet',
    ],
    found.io,
  );
  assert.equal(code, ExitCode.DIFFERENCES, found.err());
  assert.match(
    found.err(),
    /first difference: step \d+ \(\d+-[a-z-]+\) \w+: linux-6\.15 .* \| sim:linux-6\.11 /,
  );
  assert.match(found.err(), /reproduced by the scenario on stdout: yes/);
  assert.equal(JSON.parse(found.out()).destructive, true);
});

test('snpsim search: usage errors exit 2', async () => {
  for (const [args, message] of [
    [['--b', 'linux-6.15'], /--a POLICY is required/],
    [['--a', 'linux-6.11'], /exactly one of --b POLICY or --target SPEC/],
    [['--a', 'linux-6.11', '--b', 'linux-6.15', '--target', 'sim'], /exactly one of/],
    [['--a', 'linux-6.11', '--target', 'fixture:x.json'], /needs a live target/],
    [['--a', 'linux-6.11', '--b', 'linux-6.15', '--path', '1:2'], /--path replays a run of a given --seed/],
    [
      ['--a', 'linux-6.11', '--b', 'linux-6.15', '--runs', '0'],
      /--runs "0": expected a whole number in 1\.\./,
    ],
    [['--a', 'linux-6.11+kickWait=*', '--b', 'linux-6.15'], /names 2 configurations; give one/],
  ] as const) {
    const b = buffers();
    assert.equal(await main(['search', ...args], b.io), ExitCode.USAGE, args.join(' '));
    assert.match(b.err(), message);
    assert.match(b.err(), /\(see snpsim search --help\)\n$/);
    assert.equal(b.out(), '');
  }
});
