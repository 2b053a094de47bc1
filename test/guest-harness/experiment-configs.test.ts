/**
 * Experiment configurations: policy and profile specs (presets, files, variants, inline knob and
 * switch overrides, `*` sweeps) and their errors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  combinations,
  describeSwitches,
  PROFILE_VARIANT_NAMES,
  PROFILE_VARIANTS,
  parsePolicySpec,
  parseProfileSpec,
  parseSpecList,
  SnpsimError,
  SnpsimErrorCode,
} from '../../guest-harness/index.js';
import { getPreset, KNOBS } from '../../host/index.js';
import { CpuProfileSchema, PLATFORM_PROFILES } from '../../psp-firmware/index.js';

function rejects(fn: () => unknown, code: string, message: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(SnpsimError.is(e), `not a SnpsimError: ${String(e)}`);
    assert.equal(e.code, code);
    assert.match(e.message, message);
    return true;
  });
}

test('a preset policy is the preset itself', () => {
  const [p] = parsePolicySpec('linux-6.15');
  assert.equal(p?.name, 'linux-6.15');
  assert.deepEqual(p?.policy, getPreset('linux-6.15')?.policy);
});

test('knob overrides change exactly those knobs, and * sweeps every value in knob order', () => {
  const [p] = parsePolicySpec('linux-6.16+rejectCreateWhenOnline=guestVmsaOnly+kickWait=false');
  const base = getPreset('linux-6.16')!.policy;
  assert.deepEqual(p?.policy, { ...base, rejectCreateWhenOnline: 'guestVmsaOnly', kickWait: false });
  assert.equal(p?.name, 'linux-6.16+rejectCreateWhenOnline=guestVmsaOnly+kickWait=false');

  const swept = parsePolicySpec('linux-6.11+rejectCreateWhenOnline=*+kickWait=*');
  assert.deepEqual(
    swept.map((x) => [x.policy.rejectCreateWhenOnline, x.policy.kickWait]),
    (KNOBS.rejectCreateWhenOnline.type as readonly string[]).flatMap((v) => [
      [v, false],
      [v, true],
    ]),
  );
  assert.equal(new Set(swept.map((x) => x.name)).size, 6);
  const [hv] = parsePolicySpec('linux-6.11+advertisedHvFeatures=0x1');
  assert.equal(hv?.policy.advertisedHvFeatures, 0x1n);
});

test('bad policy specs name the knob, the JSON path and what is wrong', () => {
  rejects(
    () => parsePolicySpec('linux-6.11+kikWait=true'),
    SnpsimErrorCode.POLICY_INVALID,
    /\/knobs\/kikWait: unknown knob 'kikWait' \(did you mean 'kickWait'\?\)/,
  );
  rejects(
    () => parsePolicySpec('linux-6.11+kickWait=maybe'),
    SnpsimErrorCode.POLICY_INVALID,
    /\/knobs\/kickWait: must be true or false/,
  );
  rejects(
    () => parsePolicySpec('linux-6.11+advertisedHvFeatures=*'),
    SnpsimErrorCode.USAGE,
    /sweeps only enumerated or boolean/,
  );
  rejects(() => parsePolicySpec('linux-9.9'), SnpsimErrorCode.POLICY_INVALID, /neither a preset/);
  rejects(
    () => parsePolicySpec('/no/such/policy.json+kickWait=true'),
    SnpsimErrorCode.USAGE,
    /start from a preset/,
  );
});

test('profile specs: presets, variants as data, CPU and firmware switches', () => {
  assert.deepEqual(parseProfileSpec('milan')[0]?.profile, PLATFORM_PROFILES.milan);
  for (const name of PROFILE_VARIANT_NAMES) {
    const v = parseProfileSpec(name)[0]!;
    assert.equal(v.name, name);
    // Every switch the variant document sets is in the resolved profile; the rest is its base.
    const doc = PROFILE_VARIANTS[name]!.doc;
    for (const [field, value] of Object.entries(doc.cpu ?? {})) {
      assert.deepEqual(
        (v.profile.cpu as unknown as Record<string, unknown>)[field],
        value,
        `${name}.${field}`,
      );
      assert.notDeepEqual(
        (PLATFORM_PROFILES[doc.extends].cpu as unknown as Record<string, unknown>)[field],
        value,
        `${name} must change ${field}`,
      );
    }
  }
  const [fw] = parseProfileSpec(
    'genoa+pageInfoVmplOrder=tools+firmware.smtEnabled=false+cpu.psmashBadAddressCode=7',
  );
  assert.equal(fw?.profile.firmware.pageInfoVmplOrder, 'tools');
  assert.equal(fw?.profile.firmware.smtEnabled, false);
  assert.equal(fw?.profile.cpu.psmashBadAddressCode, 7);
  const [onVariant] = parseProfileSpec('genoa-vmsa-2m-erratum+vmrunRequiresValidated=true');
  assert.equal(onVariant?.profile.cpu.vmsa2MAlignedErratum, true);
  assert.equal(onVariant?.profile.cpu.vmrunRequiresValidated, true);
});

test('every enumerated or boolean CPU profile switch can be swept, and each value reaches the profile', () => {
  const fields = Object.entries(CpuProfileSchema.properties).filter(
    ([name, s]) => name !== 'name' && (s.type === 'boolean' || Array.isArray(s.anyOf)),
  );
  assert.ok(fields.length >= 10, 'the CPU profile has its open points as switches');
  for (const [field, schema] of fields) {
    const expected =
      schema.type === 'boolean' ? [false, true] : (schema.anyOf as { const: unknown }[]).map((s) => s.const);
    const profiles = parseProfileSpec(`genoa+${field}=*`);
    assert.deepEqual(
      profiles.map((p) => (p.profile.cpu as unknown as Record<string, unknown>)[field]),
      expected,
      field,
    );
    assert.equal(new Set(profiles.map((p) => p.name)).size, expected.length);
  }
});

test('bad profile specs name the field and what is wrong', () => {
  rejects(
    () => parseProfileSpec('genoa+vmsa2MAligned=true'),
    SnpsimErrorCode.PROFILE_INVALID,
    /unknown profile field 'vmsa2MAligned'.*vmsa2MAlignedErratum/,
  );
  rejects(
    () => parseProfileSpec('genoa+vmsa2MAlignedErratum=yes'),
    SnpsimErrorCode.PROFILE_INVALID,
    /\/cpu\/vmsa2MAlignedErratum/,
  );
  rejects(
    () => parseProfileSpec('genoa+name=x'),
    SnpsimErrorCode.PROFILE_INVALID,
    /unknown profile field 'name'/,
  );
  rejects(
    () => parseProfileSpec('genoa+physAddrBits=*'),
    SnpsimErrorCode.USAGE,
    /sweeps only enumerated or boolean/,
  );
  rejects(
    () => parseProfileSpec('/no/such/profile.json'),
    SnpsimErrorCode.PROFILE_INVALID,
    /neither a preset/,
  );
});

test('lists: duplicates and empty entries are usage errors; combinations put policies slowest', () => {
  rejects(
    () => parseSpecList('linux-6.11,linux-6.11', '--policies', parsePolicySpec),
    SnpsimErrorCode.USAGE,
    /given twice/,
  );
  rejects(
    () => parseSpecList('linux-6.11,,linux-6.15', '--policies', parsePolicySpec),
    SnpsimErrorCode.USAGE,
    /empty entry/,
  );
  const configs = combinations(
    parseSpecList('rfc-v4,linux-6.11', '--policies', parsePolicySpec),
    parseSpecList('genoa,milan', '--profiles', parseProfileSpec),
  );
  assert.deepEqual(
    configs.map((c) => c.label),
    ['rfc-v4 · genoa', 'rfc-v4 · milan', 'linux-6.11 · genoa', 'linux-6.11 · milan'],
  );
});

test('--list shows the presets, every variant and the sweepable switches', () => {
  const text = describeSwitches();
  for (const name of PROFILE_VARIANT_NAMES) assert.match(text, new RegExp(`^  ${name}: `, 'm'));
  assert.match(text, /^ {2}vmsa2MAlignedErratum: false \| true$/m);
  assert.match(text, /^ {2}rejectCreateWhenOnline: never \| guestVmsaOnly \| always$/m);
  assert.match(text, /^ {2}pageInfoVmplOrder: firmware \| tools$/m);
  assert.doesNotMatch(text, /advertisedHvFeatures/);
});
