/**
 * Policies as data: the presets' values against the reference, user policy files (TypeBox
 * validation, errors naming the JSON path), diffs, and the `snpsim policies` command.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { Value } from '@sinclair/typebox/value';
import { ExitCode, main } from '../../guest-harness/index.js';
import {
  diffPolicies,
  GHCB_HV_FT_SUPPORTED_KVM,
  getPreset,
  KNOB_NAMES,
  KNOBS,
  KVM_REQ_UPDATE_PROTECTED_GUEST_STATE,
  KVM_REQUEST_WAIT,
  PolicyFileSchema,
  PRESET_NAMES,
  PRESETS,
  parsePolicy,
  parsePolicyText,
} from '../../host/index.js';

test('presets: at least the seven named ones, every knob set, frozen', () => {
  for (const name of ['rfc-v4', 'v5-v9', 'rfc-v9', 'linux-6.11', 'linux-6.15', 'linux-6.16', 'strict']) {
    assert.ok(PRESET_NAMES.includes(name), name);
  }
  for (const name of PRESET_NAMES) {
    const p = PRESETS[name];
    assert.ok(p);
    assert.deepEqual(Object.keys(p.policy).sort(), [...KNOB_NAMES].sort(), name);
    assert.ok(Object.isFrozen(p.policy), name);
    assert.ok(p.summary.length > 0 && !p.summary.includes('\n'), `${name}: one-line summary`);
  }
  for (const k of KNOB_NAMES)
    assert.match(KNOBS[k].versions, /\d|RFC|v\d/, `${k} says which version does what`);
});

test('presets encode ap-creation.md §B.5 (side-by-side summary)', () => {
  const get = (n: string) => getPreset(n)?.policy;
  assert.equal(get('rfc-v4')?.errorEncoding, 'silent');
  assert.equal(get('v5-v9')?.errorEncoding, 'gp');
  assert.equal(get('linux-6.11')?.errorEncoding, 'malformed');
  assert.equal(get('rfc-v4')?.offlineState, 'UNINITIALIZED');
  assert.equal(get('v5-v9')?.offlineState, 'STOPPED');
  assert.equal(get('linux-6.11')?.offlineState, 'HALTED');
  assert.equal(get('strict')?.offlineState, 'OFFLINE');
  assert.equal(get('linux-6.11')?.stateChangeOnError, true);
  assert.equal(get('linux-6.15')?.stateChangeOnError, false);
  assert.equal(get('linux-6.11')?.sevFeaturesCheck, 'intInj');
  assert.equal(get('linux-6.15')?.sevFeaturesCheck, 'exact');
  assert.equal(get('linux-6.15')?.kickWait, false);
  assert.equal(get('linux-6.16')?.kickWait, true);
  assert.equal(get('linux-6.11')?.refuseVmrunWithInvalidVmsa, false);
  assert.equal(get('linux-6.15')?.refuseVmrunWithInvalidVmsa, true);
  assert.equal(get('strict')?.rejectCreateWhenOnline, 'always');
  for (const n of PRESET_NAMES.filter((x) => x !== 'strict'))
    assert.equal(get(n)?.rejectCreateWhenOnline, 'never');
  for (const n of PRESET_NAMES) assert.equal(get(n)?.advertisedHvFeatures, 0x3n);
  assert.equal(GHCB_HV_FT_SUPPORTED_KVM, 0x3n);
});

test('KVM_REQ_UPDATE_PROTECTED_GUEST_STATE numbering per version', () => {
  assert.equal(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE.rfcV4, 31 + 8);
  assert.equal(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE.v6_11, 34 + 8);
  assert.equal(KVM_REQ_UPDATE_PROTECTED_GUEST_STATE.v6_16, (34 + 8) | KVM_REQUEST_WAIT);
  assert.equal(KVM_REQUEST_WAIT, 0x200);
});

test('a user policy extends a preset and overrides knobs; bigints as hex strings or integers', () => {
  const r = parsePolicy({
    extends: 'linux-6.11',
    description: 'mine',
    knobs: { kickWait: true, advertisedHvFeatures: '0x1' },
  });
  assert.ok(r.ok);
  assert.equal(r.value.name, 'mine');
  assert.equal(r.value.base, 'linux-6.11');
  assert.deepEqual([...r.value.overrides].sort(), ['advertisedHvFeatures', 'kickWait']);
  assert.equal(r.value.policy.kickWait, true);
  assert.equal(r.value.policy.advertisedHvFeatures, 1n);
  assert.deepEqual(
    diffPolicies(r.value.policy, getPreset('linux-6.11')?.policy ?? r.value.policy).map((d) => d.knob),
    ['kickWait', 'advertisedHvFeatures'],
  );
  const n = parsePolicy({ extends: 'strict', knobs: { advertisedHvFeatures: 3 } });
  assert.ok(n.ok);
  assert.equal(n.value.policy.advertisedHvFeatures, 3n);
});

test('bad policies: every problem is reported with its JSON path, nothing throws', () => {
  const r = parsePolicy({
    extends: 'linux-6.99',
    knobs: { kickWait: 'yes', kikWait: true, offlineState: 'DEAD', advertisedHvFeatures: '0xZZ' },
    extra: 1,
  });
  assert.equal(r.ok, false);
  const problems = r.ok ? [] : r.problems;
  const byPath = new Map(problems.map((p) => [p.path, p.message]));
  assert.match(byPath.get('/extends') ?? '', /not a preset; presets: rfc-v4/);
  assert.match(byPath.get('/knobs/kickWait') ?? '', /must be true or false, got the string "yes"/);
  assert.match(byPath.get('/knobs/kikWait') ?? '', /unknown knob 'kikWait' \(did you mean 'kickWait'\?\)/);
  assert.match(
    byPath.get('/knobs/offlineState') ?? '',
    /one of "UNINITIALIZED", "STOPPED", "HALTED", "OFFLINE"/,
  );
  assert.match(byPath.get('/knobs/advertisedHvFeatures') ?? '', /hex string/);
  assert.match(byPath.get('/extra') ?? '', /unknown property/);
  assert.deepEqual(parsePolicy([]).ok ? [] : parsePolicy([]), {
    ok: false,
    problems: [{ path: '', message: 'a policy must be a JSON object, got an array' }],
  });
  const missing = parsePolicy({ knobs: {} });
  assert.match(missing.ok ? '' : (missing.problems[0]?.message ?? ''), /missing: name the preset/);
  const syntax = parsePolicyText('{"extends": "strict",');
  assert.match(syntax.ok ? '' : (syntax.problems[0]?.message ?? ''), /not valid JSON/);
});

test('the TypeBox policy schema agrees with the parser on valid and invalid files', () => {
  assert.equal(Value.Check(PolicyFileSchema, { extends: 'linux-6.15', knobs: { kickWait: true } }), true);
  assert.equal(Value.Check(PolicyFileSchema, { extends: 'linux-6.15', knobs: { kickWait: 1 } }), false);
  assert.equal(Value.Check(PolicyFileSchema, { extends: 'nope' }), false);
  assert.equal(
    Value.Check(PolicyFileSchema, { extends: 'strict', knobs: { advertisedHvFeatures: '0x3' } }),
    true,
  );
  assert.doesNotThrow(() => JSON.parse(JSON.stringify(PolicyFileSchema)));
});

function buffers() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

test('snpsim policies lists the presets, one line each', async () => {
  const b = buffers();
  assert.equal(await main(['policies'], b.io), ExitCode.OK);
  for (const name of PRESET_NAMES) assert.match(b.out(), new RegExp(`^${name} +\\S`, 'm'));
});

test('snpsim policies --diff shows knob by knob and exits 1 when they differ, 0 when equal', async () => {
  const b = buffers();
  assert.equal(await main(['policies', '--diff', 'linux-6.15', 'linux-6.16'], b.io), ExitCode.DIFFERENCES);
  assert.match(b.out(), /^kickWait +false +true$/m);
  assert.doesNotMatch(b.out(), /errorEncoding/);
  const same = buffers();
  assert.equal(await main(['policies', '--diff', 'strict', 'strict'], same.io), ExitCode.OK);
  const j = buffers();
  await main(['policies', '--diff', 'rfc-v4', 'linux-6.11', '--json'], j.io);
  const parsed = JSON.parse(j.out()) as { differences: { knob: string; a: unknown; b: unknown }[] };
  assert.deepEqual(
    parsed.differences.find((d) => d.knob === 'errorEncoding'),
    {
      knob: 'errorEncoding',
      a: 'silent',
      b: 'malformed',
    },
  );
  assert.deepEqual(
    parsed.differences.find((d) => d.knob === 'applyViaVcpuReset'),
    {
      knob: 'applyViaVcpuReset',
      a: false,
      b: true,
    },
  );
});

test('snpsim policies --show reads a policy file and marks its overrides; a bad file is exit 2 with paths', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'snpsim-policy-'));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify({ extends: 'linux-6.11', knobs: { kickWait: true } }));
  const b = buffers();
  assert.equal(await main(['policies', '--show', good], b.io), ExitCode.OK);
  assert.match(b.out(), /^kickWait \* +true$/m);
  assert.match(b.out(), /^errorEncoding +malformed$/m);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ extends: 'linux-6.11', knobs: { offlineState: 'X' } }));
  const e = buffers();
  assert.equal(await main(['policies', '--show', bad], e.io), ExitCode.USAGE);
  assert.match(e.err(), /SNPSIM_POLICY_INVALID/);
  assert.match(e.err(), /bad\.json: \/knobs\/offlineState: must be one of/);
  const u = buffers();
  assert.equal(await main(['policies', '--show', 'a', '--diff', 'b', 'c'], u.io), ExitCode.USAGE);
  assert.equal(await main(['policies', '--bogus'], buffers().io), ExitCode.USAGE);
});

test('snpsim policies --knobs documents every knob', async () => {
  const b = buffers();
  assert.equal(await main(['policies', '--knobs', '--json'], b.io), ExitCode.OK);
  const knobs = JSON.parse(b.out()) as { name: string; versions: string }[];
  assert.deepEqual(
    knobs.map((k) => k.name),
    [...KNOB_NAMES],
  );
});
