import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeTcb,
  encodeTcb,
  FIRMWARE_PRESETS,
  firmwareProfileToJson,
  GENOA_FIRMWARE,
  loadProfile,
  MILAN_FIRMWARE,
  PLATFORM_PROFILES,
  parseFirmwareProfile,
  parsePlatformProfile,
} from '../../psp-firmware/index.js';

describe('FirmwareProfile presets', () => {
  it('genoa is SEV FW 1.55.25 (hex 1.37.19), report version 2, FW PAGE_INFO order', () => {
    assert.deepEqual(
      [GENOA_FIRMWARE.apiMajor, GENOA_FIRMWARE.apiMinor, GENOA_FIRMWARE.buildId],
      [1, 0x37, 0x19],
    );
    assert.equal(GENOA_FIRMWARE.reportVersion, 2);
    assert.equal(GENOA_FIRMWARE.pageInfoVmplOrder, 'firmware');
    assert.equal(GENOA_FIRMWARE.policyReservedMask, 0xffff_ffff_ffe0_0000n);
    assert.equal(GENOA_FIRMWARE.tscFactor, 200);
    assert.equal(GENOA_FIRMWARE.secretsPageVersion, 3);
    assert.ok(Object.isFrozen(GENOA_FIRMWARE));
  });

  it('milan carries the platform of the real virtee/sev Milan report', () => {
    assert.deepEqual([MILAN_FIRMWARE.apiMinor, MILAN_FIRMWARE.buildId], [52, 4]);
    assert.equal(encodeTcb(MILAN_FIRMWARE.currentTcb, MILAN_FIRMWARE.tcbLayout), 0x7308000000000003n);
    assert.equal(MILAN_FIRMWARE.cpuidSignature, 0xa00f11);
    assert.equal(PLATFORM_PROFILES.milan.cpu.physAddrBits, 48);
  });
});

describe('TCB_VERSION layouts (firmware-rmp.md §D.5)', () => {
  it('Milan/Genoa: [0] BL, [1] TEE, [6] SNP, [7] microcode; Turin: [0] FMC, [1] BL, [2] TEE, [3] SNP, [7] microcode', () => {
    const t = { bootLoader: 1, tee: 2, snp: 3, microcode: 4, fmc: 5 };
    assert.equal(encodeTcb(t, 'milan-genoa'), 0x0403000000000201n);
    assert.equal(encodeTcb(t, 'turin'), 0x0400000003020105n);
  });

  it('decode(encode(t)) == t and the reserved bytes are reported', () => {
    const svn = fc.integer({ min: 0, max: 255 });
    fc.assert(
      fc.property(svn, svn, svn, svn, (bootLoader, tee, snp, microcode) => {
        const d = decodeTcb(encodeTcb({ bootLoader, tee, snp, microcode }, 'milan-genoa'), 'milan-genoa');
        assert.deepEqual(d, { bootLoader, tee, snp, microcode, reservedZero: true });
      }),
    );
    assert.equal(decodeTcb(1n << 24n, 'milan-genoa').reservedZero, false);
  });
});

describe('JSON firmware profiles (TypeBox)', () => {
  it('merges over a preset and names itself +custom', () => {
    const r = parseFirmwareProfile({
      extends: 'milan',
      apiMinor: 55,
      policyReservedMask: '0xfffffffffc000000',
    });
    assert.ok(r.ok);
    assert.equal(r.profile.name, 'milan+custom');
    assert.equal(r.profile.apiMinor, 55);
    assert.equal(r.profile.buildId, 4);
    assert.equal(r.profile.policyReservedMask, 0xfffffffffc000000n);
    const plain = parseFirmwareProfile({});
    assert.ok(plain.ok);
    assert.equal(plain.profile.name, 'genoa');
  });

  it('errors name the JSON path: wrong types, ranges, unknown fields, cross-field rules', () => {
    const paths = (j: unknown) => {
      const r = parseFirmwareProfile(j);
      assert.equal(r.ok, false);
      return r.ok ? [] : r.errors.map((e) => e.path);
    };
    assert.ok(paths({ apiMinor: 256 }).includes('/apiMinor'));
    assert.ok(paths({ currentTcb: { bootLoader: 1, tee: 0, snp: 0 } }).includes('/currentTcb/microcode'));
    assert.ok(paths({ reportVersion: 4 }).includes('/reportVersion'));
    assert.ok(paths({ chipSeed: 'xyz' }).includes('/chipSeed'));
    assert.ok(paths({ bogus: 1 }).includes('/bogus'));
    assert.ok(
      paths({ cpuidRules: [{ eaxIn: 1, ecxIn: 0, regs: [] }] }).some((p) =>
        p.startsWith('/cpuidRules/0/regs'),
      ),
    );
    assert.deepEqual(paths({ maxAsid: 10, minSevAsid: 50 }), ['/minSevAsid']);
    assert.deepEqual(paths({ policyReservedMask: '0x20000' }), ['/policyReservedMask']);
  });

  it('firmwareProfileToJson is the inverse of parsing', () => {
    for (const p of Object.values(FIRMWARE_PRESETS)) {
      const r = parseFirmwareProfile(JSON.parse(JSON.stringify(firmwareProfileToJson(p))));
      assert.ok(r.ok, JSON.stringify(!r.ok && r.errors));
      assert.deepEqual(r.profile, p);
    }
  });
});

describe('platform profiles and loadProfile (--profile)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'snpsim-profile-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('loads presets by name and JSON files with cpu and firmware parts', () => {
    assert.equal((loadProfile('genoa') as { ok: true; profile: { name: string } }).profile.name, 'genoa');
    const file = join(dir, 'p.json');
    writeFileSync(
      file,
      JSON.stringify({ extends: 'milan', cpu: { psmashBadAddressCode: 7 }, firmware: { smtEnabled: false } }),
    );
    const r = loadProfile(file);
    assert.ok(r.ok);
    assert.equal(r.profile.name, 'milan+custom');
    assert.equal(r.profile.cpu.psmashBadAddressCode, 7);
    assert.equal(r.profile.cpu.physAddrBits, 48);
    assert.equal(r.profile.firmware.smtEnabled, false);
    assert.equal(r.profile.firmware.apiMinor, 52);
  });

  it('reports missing files, bad JSON and bad fields with paths under /cpu and /firmware', () => {
    const missing = loadProfile('/nonexistent/profile.json');
    assert.equal(missing.ok, false);
    assert.match(!missing.ok ? (missing.errors[0]?.message ?? '') : '', /neither a preset/);
    writeFileSync(join(dir, 'bad.json'), '{ nope');
    const bad = loadProfile(join(dir, 'bad.json'));
    assert.equal(bad.ok, false);
    assert.match(!bad.ok ? (bad.errors[0]?.message ?? '') : '', /invalid JSON/);
    const r = parsePlatformProfile({
      extends: 'turin',
      cpu: { vmplCount: 9 },
      firmware: { sockets: 'two' },
      x: 1,
    });
    assert.equal(r.ok, false);
    assert.deepEqual(!r.ok && r.errors.map((e) => e.path), ['/x', '/extends']);
    const r2 = parsePlatformProfile({ cpu: { vmplCount: 9 }, firmware: { sockets: 'two' } });
    assert.deepEqual(!r2.ok && r2.errors.map((e) => e.path).sort(), ['/cpu/vmplCount', '/firmware/sockets']);
  });
});
