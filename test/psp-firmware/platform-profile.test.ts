import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  CPU_PROFILES,
  CpuProfileSchema,
  DEFAULT_CPU_PROFILE,
  Platform,
  parseCpuProfile,
  parseCpuProfileText,
  SystemMemory,
} from '../../psp-firmware/index.js';

test('presets: genoa is the default; milan differs in the GPA width; turin adds RMPREAD; all frozen', () => {
  assert.equal(DEFAULT_CPU_PROFILE, CPU_PROFILES.genoa);
  assert.equal(CPU_PROFILES.genoa.physAddrBits, 52);
  assert.equal(CPU_PROFILES.milan.physAddrBits, 48);
  assert.equal(CPU_PROFILES.turin.rmpreadSupported, true);
  assert.equal(CPU_PROFILES.genoa.rmpreadSupported, false);
  for (const p of Object.values(CPU_PROFILES)) {
    assert.equal(Object.isFrozen(p), true);
    // Every preset is a complete profile under the schema.
    assert.deepEqual(parseCpuProfile({ ...p, extends: 'genoa' }), { ok: true, profile: p });
  }
  assert.equal(Object.isFrozen(CPU_PROFILES), true);
  assert.equal(new Platform({ memoryBytes: 4096 }).profile.name, 'genoa');
});

test('every documented open point is a profile field', () => {
  const fields = Object.keys(CpuProfileSchema.properties).sort();
  for (const f of [
    'psmashBadAddressCode',
    'pvalidateBelowVmpl0',
    'rmpadjustVmsaOn2M',
    'rmpadjustNotValidated',
    'rmpadjustInUseVmsa',
    'rmpupdateGpaLowBits',
    'rmpqueryTargetBelowCurrent',
    'vmrunReverseMapCheck',
    'vmrunRequiresValidated',
    'vmsa2MAlignedErratum',
    'vmrunInUseVmsa',
    'physAddrBits',
    'vmplCount',
  ]) {
    assert.ok(fields.includes(f), f);
  }
});

test('user JSON: extends a preset, overrides fields, errors name the JSON path', () => {
  const ok = parseCpuProfileText('{ "extends": "milan", "psmashBadAddressCode": 7, "name": "lab-milan" }');
  assert.equal(ok.ok, true);
  if (ok.ok) {
    assert.equal(ok.profile.physAddrBits, 48);
    assert.equal(ok.profile.psmashBadAddressCode, 7);
    assert.equal(ok.profile.name, 'lab-milan');
    assert.equal(Object.isFrozen(ok.profile), true);
  }
  const unnamed = parseCpuProfile({ vmrunInUseVmsa: 'allowed' });
  assert.equal(unnamed.ok && unnamed.profile.name, 'genoa+custom');

  const errs = (json: unknown) => {
    const r = parseCpuProfile(json);
    assert.equal(r.ok, false);
    return r.ok ? [] : r.errors;
  };
  assert.deepEqual(errs({ extends: 'zen9' })[0]?.path, '/extends');
  assert.match(errs({ extends: 'zen9' })[0]?.message ?? '', /presets: genoa, milan, turin/);
  assert.deepEqual(
    errs({ psmashBadAddressCode: 5 }).map((e) => e.path),
    ['/psmashBadAddressCode'],
  );
  assert.ok(errs({ rmpadjustVmsaOn2M: 'maybe' }).some((e) => e.path === '/rmpadjustVmsaOn2M'));
  assert.ok(errs({ physAddrBits: 64 }).some((e) => e.path === '/physAddrBits'));
  assert.deepEqual(errs({ psmashCode: 4 }), [{ path: '/psmashCode', message: 'unknown profile field' }]);
  assert.equal(errs([1])[0]?.path, '');
  const bad = parseCpuProfileText('{ "extends": ');
  assert.equal(bad.ok, false);
  assert.match(bad.ok ? '' : (bad.errors[0]?.message ?? ''), /invalid JSON/);
});

test('SystemMemory: sparse pages, little-endian accessors, reads across pages, clear errors', () => {
  const m = new SystemMemory({ memoryBytes: 1 << 20 });
  assert.equal(m.readU64(0x5000), 0n);
  assert.equal(m.allocatedPages, 0);
  m.writeU64(0x1ffc, 0x1122334455667788n); // crosses a page boundary
  assert.equal(m.allocatedPages, 2);
  assert.deepEqual([...m.read(0x1ffc, 8)], [0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11]);
  assert.equal(m.readU32(0x2000), 0x11223344);
  assert.equal(m.readU16(0x1ffc), 0x7788);
  assert.equal(m.readU8(0x1fff), 0x55);
  m.writeU32(0x3000, 0xdeadbeef);
  m.writeU16(0x3004, 0xcafe);
  m.writeU8(0x3006, 0x7f);
  assert.equal(m.readU64(0x3000), 0x007fcafedeadbeefn);
  m.fill(0x3000, 4096);
  assert.equal(m.readU64(0x3000), 0n);
  assert.equal(m.allocatedPages, 2);
  m.fill(0x4000, 2, 0xab);
  assert.equal(m.readU16(0x4000), 0xabab);
  assert.throws(() => m.read(0xfffff, 2), /beyond system memory/);
  assert.throws(() => m.write(-1, new Uint8Array(1)), /non-negative/);
  assert.throws(() => m.writeU64(0, -1n), /u64/);
  assert.throws(() => m.fill(0, 1, 256), /byte/);
  assert.throws(() => new SystemMemory({ memoryBytes: 100 }), /multiple of 4096/);
  assert.throws(() => new Platform({ memoryBytes: 4096, coveredBytes: 8192 }), /exceeds memoryBytes/);
});
