import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import {
  type InputProblem,
  loadScenarioDocuments,
  loadScenarios,
  parseJson,
  requestText,
  SnpsimError,
  SnpsimErrorCode,
  scenarioRequests,
} from '../../guest-harness/index.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'snpsim-scenario-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const minimal = {
  description: 'a minimal valid scenario for the loader tests',
  steps: [{ op: 'hv-features', expect: { values: { features: '0x3' } } }],
};

function create(page = 'a') {
  return [
    { op: 'cpu-offline', cpu: 1 },
    { op: 'vmsa-alloc', page },
    { op: 'vmsa-init', page },
    { op: 'rmpadjust', page, vmsa: true },
    { id: 'create', op: 'ap-creation', request: 'create', apic: 1, page },
  ];
}

/** Loads one document and returns its problems (asserting that loading failed as an input error). */
function problemsOf(value: unknown, file = 'scenarios/bad.json'): InputProblem[] {
  try {
    loadScenarioDocuments([{ file, value }], { knownPolicies: ['linux-6.11', 'linux-6.15', 'rfc-v4'] });
  } catch (error) {
    assert.ok(SnpsimError.is(error), 'a bad scenario is a SnpsimError');
    assert.equal(error.code, SnpsimErrorCode.SCENARIO_INVALID);
    assert.equal(error.exitCode, 2);
    const problems = error.details.problems as InputProblem[];
    for (const p of problems) assert.ok(error.message.includes(`${p.file}: ${p.path}: ${p.message}`));
    assert.match(error.message, /nothing was run/);
    return problems;
  }
  assert.fail('the scenario was accepted');
}

function expectProblem(value: unknown, path: string, message: RegExp) {
  const problems = problemsOf(value);
  const hit = problems.find((p) => p.path === path && message.test(p.message));
  assert.ok(
    hit,
    `no problem at ${path} matching ${message}; got:\n${problems.map((p) => `${p.path}: ${p.message}`).join('\n')}`,
  );
  assert.equal(hit.file, 'scenarios/bad.json');
}

test('a valid scenario loads with derived name, labels, handles and requests', () => {
  const [s] = loadScenarioDocuments([
    {
      file: 'dir/create-basic.json',
      value: { description: 'creates an AP with a Linux VMSA', steps: create() },
    },
  ]);
  assert.ok(s);
  assert.equal(s.name, 'create-basic');
  assert.equal(s.vcpus, 4);
  assert.deepEqual(s.labels, ['1-cpu-offline', '2-vmsa-alloc', '3-vmsa-init', '4-rmpadjust', 'create']);
  assert.deepEqual([...s.pages], [['a', 0]]);
  assert.equal(s.needsHostSteps, false);
  const lines = scenarioRequests(s).map((reqs) => reqs.map((r) => `1 ${requestText(r)}`));
  assert.deepEqual(lines, [
    ['1 cpu-offline cpu=1'],
    ['1 vmsa-alloc h=0 placement=split memory=private'],
    ['1 vmsa-init h=0 template=linux stub=1'],
    ['1 rmpadjust h=0 rdx=0x10001 size=0'],
    ['1 ap-creation request=1 apic=1 vmpl=0 h=0'],
  ]);
});

test('raw AP Creation overrides and VMSA overrides become protocol keys', () => {
  const [s] = loadScenarioDocuments([
    {
      file: 'raw.json',
      value: {
        description: 'every raw field of the AP Creation request overridden',
        steps: [
          { op: 'vmsa-alloc', page: 'a', placement: '2m-aligned', memory: 'unvalidated' },
          {
            op: 'vmsa-init',
            page: 'a',
            template: 'zero',
            stub: false,
            fields: { sev_features: '0x21', rip: 16 },
            pokes: [{ offset: 0x3b0, width: 8, value: '0xffffffffffffffff' }],
          },
          { op: 'rmpadjust', page: 'a', rdx: '0x1', size: 1 },
          {
            op: 'ap-creation',
            request: 7,
            apic: 4294967295,
            vmpl: 15,
            gpa: '0x8000000000001000',
            exitCode: '0x80000013',
            info1: '0xffffffffffffffff',
            info2: 0,
            rax: '0x1',
            valid: ['rax', 'exit_code'],
          },
          { op: 'ap-creation', request: 'destroy', apic: 2, valid: [] },
          { op: 'host-set-mp-state', vcpu: 3, state: 'AP_RESET_HOLD' },
        ],
      },
    },
  ]);
  const lines = scenarioRequests(s!).flat().map(requestText);
  assert.deepEqual(lines, [
    'vmsa-alloc h=0 placement=2m-aligned memory=unvalidated',
    'vmsa-init h=0 template=zero stub=0',
    'vmsa-set h=0 field=sev_features value=0x21',
    'vmsa-set h=0 field=rip value=0x10',
    'vmsa-poke h=0 offset=0x3b0 width=8 value=0xffffffffffffffff',
    'rmpadjust h=0 rdx=0x1 size=1',
    'ap-creation request=7 apic=4294967295 vmpl=15 gpa=0x8000000000001000 exit_code=0x80000013 info1=0xffffffffffffffff info2=0x0 rax=0x1 valid=exit_code,rax',
    'ap-creation request=2 apic=2 vmpl=0 gpa=0x0 valid=none',
    'host-set-mp-state vcpu=3 state=9',
  ]);
  assert.equal(s!.needsHostSteps, true);
  assert.equal(s!.modelOnly, false);
});

test('JSON syntax errors name the file, line and column', () => {
  return (async () => {
    const file = join(dir, 'syntax.json');
    await writeFile(file, '{\n  "description": "x",\n  "steps": [,]\n}\n');
    await assert.rejects(loadScenarios([file]), (error: unknown) => {
      assert.ok(SnpsimError.is(error));
      assert.equal(error.code, SnpsimErrorCode.SCENARIO_INVALID);
      assert.match(
        error.message,
        new RegExp(
          `${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\$: not valid JSON: .*\\(line 3, column 13\\)`,
        ),
      );
      return true;
    });
  })();
});

test('schema errors: missing, unknown (with suggestion), wrong type, out of range, bad hex', () => {
  expectProblem({ steps: minimal.steps }, '$.description', /missing required property 'description'/);
  expectProblem({ ...minimal, stepz: [] }, '$.stepz', /unknown property 'stepz' \(did you mean 'steps'\?\)/);
  expectProblem(
    { ...minimal, steps: [{ op: 'ap-creation', request: 'create', apic: 1, gpaa: '0x1000' }] },
    '$.steps[0].gpaa',
    /unknown property 'gpaa' \(did you mean 'gpa'\?\)/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'ap-creation', request: 'create' }] },
    '$.steps[0].apic',
    /missing required property 'apic'/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'ap-creation', request: 'create', apic: 2 ** 32 }] },
    '$.steps[0].apic',
    /less or equal to 4294967295, got 4294967296/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'ap-creation', request: 'make', apic: 1 }] },
    '$.steps[0].request',
    /expected create-on-init \(0\), create \(1\), destroy \(2\) or a raw request code 0\.\.0xffff, got "make"/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'ap-creation', request: 1, apic: 1, rax: '0x10000000000000000' }] },
    '$.steps[0].rax',
    /expected an unsigned 64-bit value/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'vmsa-alloc', page: 'a', placement: '1g' }] },
    '$.steps[0].placement',
    /expected split/,
  );
  expectProblem({ ...minimal, vcpus: 1 }, '$.vcpus', /greater or equal to 2/);
  expectProblem({ ...minimal, steps: [] }, '$.steps', /at least one step/);
});

test('step errors: unknown op with suggestion, missing op, not an object', () => {
  expectProblem(
    { ...minimal, steps: [{ op: 'ap-create', apic: 1 }] },
    '$.steps[0].op',
    /unknown op 'ap-create' \(did you mean 'ap-creation'\?\)/,
  );
  expectProblem({ ...minimal, steps: [{ apic: 1 }] }, '$.steps[0].op', /missing 'op'; one of: hv-features/);
  expectProblem({ ...minimal, steps: [42] }, '$.steps[0]', /a step must be an object/);
});

test('sequence errors: pages, ids, CPUs, exclusive keys, orders, policies, death', () => {
  expectProblem(
    { ...minimal, steps: [{ op: 'vmsa-init', page: 'a' }] },
    '$.steps[0].page',
    /page 'a' is used before a vmsa-alloc step allocates it/,
  );
  expectProblem(
    {
      ...minimal,
      steps: [
        { op: 'vmsa-alloc', page: 'a' },
        { op: 'vmsa-alloc', page: 'a' },
      ],
    },
    '$.steps[1].page',
    /page 'a' is already allocated/,
  );
  expectProblem(
    {
      ...minimal,
      steps: [
        { id: 'x', op: 'hv-features' },
        { id: 'x', op: 'sev-info' },
      ],
    },
    '$.steps[1].id',
    /duplicate step id 'x' \(first used by step 1\)/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'cpu-offline', cpu: 4 }] },
    '$.steps[0].cpu',
    /CPU 4 does not exist \(the scenario has 4 vCPUs\)/,
  );
  expectProblem(
    {
      ...minimal,
      steps: [
        { op: 'vmsa-alloc', page: 'a' },
        { op: 'rmpadjust', page: 'a', vmsa: true, rdx: 1 },
      ],
    },
    '$.steps[1]',
    /exactly one of 'vmsa'/,
  );
  expectProblem(
    {
      ...minimal,
      steps: [
        { op: 'vmsa-alloc', page: 'a' },
        { op: 'ap-creation', request: 1, apic: 1, page: 'a', gpa: 4096 },
      ],
    },
    '$.steps[1]',
    /'page' or 'gpa', not both/,
  );
  expectProblem(
    {
      ...minimal,
      steps: [
        {
          op: 'concurrent',
          requests: [
            { from: 0, request: 'destroy', apic: 1 },
            { from: 2, request: 'destroy', apic: 1 },
          ],
          orders: [[0, 0]],
        },
      ],
    },
    '$.steps[0].orders[0]',
    /must be a permutation of 0\.\.1/,
  );
  expectProblem(
    {
      ...minimal,
      steps: [{ op: 'hv-features', expectPolicy: { 'linux-6.12': { values: { features: 3 } } } }],
    },
    '$.steps[0].expectPolicy.linux-6.12',
    /unknown host policy 'linux-6.12' \(did you mean 'linux-6.11'\?\)/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'hv-features', expect: { vm: 'dead' } }] },
    '$.destructive',
    /must set "destructive": true/,
  );
  expectProblem(
    {
      ...minimal,
      destructive: true,
      steps: [{ op: 'hv-features', expect: { vm: 'dead' } }, { op: 'sev-info' }],
    },
    '$.steps[1]',
    /step 1 expects the VM to be dead, so this step must expect it too/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'hv-features', expect: { code: 'failed' } }] },
    '$.steps[0].expect.code',
    /only expected with outcome 'err'/,
  );
  expectProblem(
    { ...minimal, steps: [{ op: 'hv-features', expect: { model: { mpState: { '9': 'HALTED' } } } }] },
    '$.steps[0].expect.model',
    /vCPU 9 does not exist/,
  );
});

test('a file name that is not a valid scenario name needs an explicit name', () => {
  const problems = problemsOf(minimal, 'dir/Bad Name.json');
  assert.match(problems[0]!.message, /set "name"/);
});

test('every problem of every file is reported at once, and nothing loads', async () => {
  const sub = join(dir, 'corpus');
  await mkdir(join(sub, 'nested'), { recursive: true });
  await writeFile(join(sub, 'good.json'), JSON.stringify(minimal));
  await writeFile(join(sub, 'nested', 'bad1.json'), JSON.stringify({ steps: minimal.steps }));
  await writeFile(join(sub, 'bad2.json'), JSON.stringify({ ...minimal, steps: [{ op: 'nope' }] }));
  await writeFile(join(sub, 'expectations.json'), '{"not": "a scenario"}');
  await writeFile(join(sub, 'notes.txt'), 'ignored');
  await assert.rejects(loadScenarios([sub]), (error: unknown) => {
    assert.ok(SnpsimError.is(error));
    const problems = error.details.problems as InputProblem[];
    assert.deepEqual(
      problems.map((p) => p.file.slice(sub.length + 1)).sort(),
      ['bad2.json', join('nested', 'bad1.json')].sort(),
    );
    assert.match(error.message, /2 problems in 2 scenario files; nothing was run/);
    return true;
  });
  await rm(join(sub, 'nested'), { recursive: true });
  await rm(join(sub, 'bad2.json'));
  const loaded = await loadScenarios([sub]);
  assert.deepEqual(
    loaded.map((s) => s.name),
    ['good'],
  );
});

test('duplicate names and missing paths are problems', async () => {
  const a = join(dir, 'dup-a');
  const b = join(dir, 'dup-b');
  await mkdir(a, { recursive: true });
  await mkdir(b, { recursive: true });
  await writeFile(join(a, 'same.json'), JSON.stringify(minimal));
  await writeFile(join(b, 'same.json'), JSON.stringify(minimal));
  await assert.rejects(loadScenarios([a, b, join(dir, 'missing')]), (error: unknown) => {
    assert.ok(SnpsimError.is(error));
    assert.match(error.message, /scenario name 'same' is already used by/);
    assert.match(error.message, /missing: \$: no such file or directory/);
    return true;
  });
});

test('property: a hash identifies the content, not the key order or formatting', () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(fc.constantFrom('hv-features', 'sev-info'), { minLength: 1 }),
      fc.boolean(),
      (ops, reverse) => {
        const steps = ops.map((op, i) => ({ id: `s${i}`, op }));
        const doc = { description: 'hash property scenario', tags: ['x'], steps };
        const shuffled = reverse
          ? { steps: steps.map((s) => ({ op: s.op, id: s.id })), tags: ['x'], description: doc.description }
          : doc;
        const [a] = loadScenarioDocuments([{ file: 'h.json', value: doc }]);
        const [b] = loadScenarioDocuments([
          { file: 'h.json', value: JSON.parse(JSON.stringify(shuffled, null, 3)) },
        ]);
        const [c] = loadScenarioDocuments([
          { file: 'h.json', value: { ...doc, description: `${doc.description}!` } },
        ]);
        assert.equal(a!.hash, b!.hash);
        assert.notEqual(a!.hash, c!.hash);
      },
    ),
    { numRuns: 20 },
  );
});

test('property: the JSON error locator agrees with JSON.parse on valid and mangled documents', () => {
  const mangle = fc.tuple(
    fc.json(),
    fc.nat(),
    fc.constantFrom('', ',', '}', ']', '"', ':', 'x', ' ', '\\'),
    fc.boolean(),
  );
  fc.assert(
    fc.property(mangle, ([json, at, insert, cut]) => {
      const pos = json.length === 0 ? 0 : at % json.length;
      const text = cut
        ? json.slice(0, pos) + json.slice(pos + 1)
        : json.slice(0, pos) + insert + json.slice(pos);
      let parses = true;
      try {
        JSON.parse(text);
      } catch {
        parses = false;
      }
      const problems = loadScenarioDocumentsText(text);
      assert.equal(
        problems === 'valid-json',
        parses,
        `locator and JSON.parse disagree on ${JSON.stringify(text)}`,
      );
    }),
    { numRuns: 500 },
  );
});

/** 'valid-json' when the text parses (whatever the scenario problems), else the syntax message. */
function loadScenarioDocumentsText(text: string): string {
  const parsed = parseJson('p.json', text);
  return 'value' in parsed ? 'valid-json' : parsed.problem.message;
}
