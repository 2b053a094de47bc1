/**
 * OVMF footer-table and SEV-metadata parser: the two real fixtures (test/fixtures/ovmf, from
 * virtee/sev-snp-measure 8f2b337e), synthetic images, and clear errors for truncated or garbled ones.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  guidFromBytes,
  guidToBytes,
  MeasureErrorCode,
  OVMF_SEV_METADATA_GUID,
  OVMF_TABLE_FOOTER_GUID,
  parseOvmf,
  SEV_ES_RESET_BLOCK_GUID,
  SEV_HASH_TABLE_RV_GUID,
  SEV_SECRET_BLOCK_GUID,
  SVSM_INFO_GUID,
  SevMetadataSectionType as T,
} from '../../psp-firmware/index.js';

const FIXTURES = new URL('../../../test/fixtures/ovmf/', import.meta.url);
const amdSev = readFileSync(new URL('ovmf_AmdSev_suffix.bin', FIXTURES));
const ovmfX64 = readFileSync(new URL('ovmf_OvmfX64_suffix.bin', FIXTURES));

test('fixtures are the published files (SHA-256 as in test/fixtures/ovmf/README.md)', () => {
  const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
  assert.equal(sha256(amdSev), '8f765dfabc127fc0a938a0744a3103ec15864d7d794eb4c398aa976b6d6ab16c');
  assert.equal(sha256(ovmfX64), 'b4c021e085fb83ceffe6571a3d357b4a98773c83c474e47f76c876708fe316da');
});

test('GUIDs round-trip through the EFI (bytes_le) order', () => {
  const bytes = guidToBytes(OVMF_TABLE_FOOTER_GUID);
  assert.equal(bytes.toString('hex'), 'de82b596b21ff745baeaa366c55a082d');
  assert.equal(guidFromBytes(bytes, 0), OVMF_TABLE_FOOTER_GUID);
  assert.throws(() => guidToBytes('96B582DE-1FB2-45F7-BAEA-A366C55A082D'), RangeError);
});

test('AmdSevX64 fixture: AP reset EIP, hashes table, every SEV metadata section in order', () => {
  const r = parseOvmf(amdSev, 'amdsev');
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  const img = r.value;
  assert.equal(img.sevEsResetEip, 0x80b004);
  assert.deepEqual(img.sevHashesTable, { gpa: 0x810c00, size: 0x400 });
  assert.deepEqual(
    img.sevMetadata?.map((s) => [s.type, s.gpa, s.size]),
    [
      [T.SNP_SEC_MEM, 0x800000, 0x9000],
      [T.SNP_SEC_MEM, 0x80a000, 0x3000],
      [T.SNP_SECRETS, 0x80d000, 0x1000],
      [T.CPUID, 0x80e000, 0x1000],
      [T.SVSM_CAA, 0x80f000, 0x1000],
      [T.SNP_KERNEL_HASHES, 0x810000, 0x1000],
      [T.SNP_SEC_MEM, 0x811000, 0xf000],
    ],
  );
  for (const g of [
    SEV_ES_RESET_BLOCK_GUID,
    SEV_HASH_TABLE_RV_GUID,
    OVMF_SEV_METADATA_GUID,
    SEV_SECRET_BLOCK_GUID,
  ]) {
    assert.ok(img.footerTable.has(g), g);
  }
  assert.equal(img.svsmInfoOffset, undefined);
});

test('OvmfPkgX64 fixture: no kernel-hashes section, hashes-table GPA 0 reads as "no hashes table"', () => {
  const r = parseOvmf(ovmfX64);
  assert.ok(r.ok);
  assert.equal(r.value.sevEsResetEip, 0x80b004);
  assert.equal(r.value.sevHashesTable, undefined);
  assert.ok(r.value.footerTable.has(SEV_HASH_TABLE_RV_GUID));
  assert.equal(
    r.value.sevMetadata?.some((s) => s.type === T.SNP_KERNEL_HASHES),
    false,
  );
  assert.equal(r.value.sevMetadata?.length, 6);
});

test('a larger image (fixture behind zero pages) parses the same: offsets are from the end', () => {
  const big = Buffer.concat([Buffer.alloc(3 * 4096), amdSev]);
  const r = parseOvmf(big);
  assert.ok(r.ok);
  assert.equal(r.value.bytes.length, 4 * 4096);
  assert.equal(r.value.sevMetadata?.length, 7);
});

interface Entry {
  readonly guid: string;
  readonly data: Buffer;
}

/** An image of `size` bytes whose footer table holds `entries` (first = lowest address). */
function image(size: number, entries: readonly Entry[], extra?: (img: Buffer) => void): Buffer {
  const img = Buffer.alloc(size);
  const footerAt = size - 32 - 18;
  let at = footerAt;
  for (const e of [...entries].reverse()) {
    at -= 18;
    img.writeUInt16LE(e.data.length + 18, at);
    guidToBytes(e.guid).copy(img, at + 2);
    at -= e.data.length;
    e.data.copy(img, at);
  }
  img.writeUInt16LE(footerAt - at + 18, footerAt);
  guidToBytes(OVMF_TABLE_FOOTER_GUID).copy(img, footerAt + 2);
  extra?.(img);
  return img;
}

const u32s = (...v: number[]) => Buffer.from(Uint32Array.from(v).buffer);

/** SEV metadata at `offset` from the end of an 8 KiB image. */
function withMetadata(sections: readonly number[][], tweak?: (img: Buffer, start: number) => void): Buffer {
  const offset = 0x1800;
  return image(
    0x2000,
    [
      { guid: OVMF_SEV_METADATA_GUID, data: u32s(offset) },
      { guid: SEV_ES_RESET_BLOCK_GUID, data: u32s(0xffff1234) },
    ],
    (img) => {
      const start = img.length - offset;
      img.write('ASEV', start, 'latin1');
      img.writeUInt32LE(16 + 12 * sections.length, start + 4);
      img.writeUInt32LE(1, start + 8);
      img.writeUInt32LE(sections.length, start + 12);
      sections.forEach((s, i) => {
        u32s(...s).copy(img, start + 16 + 12 * i);
      });
      tweak?.(img, start);
    },
  );
}

test('synthetic image: entries, SVSM info, metadata', () => {
  const r = parseOvmf(
    withMetadata([
      [0x1000, 0x2000, T.SNP_SEC_MEM],
      [0x5000, 0x1000, T.CPUID],
    ]),
  );
  assert.ok(r.ok, r.ok ? '' : r.error.message);
  assert.equal(r.value.sevEsResetEip, 0xffff1234);
  assert.deepEqual(r.value.sevMetadata, [
    { type: T.SNP_SEC_MEM, gpa: 0x1000, size: 0x2000 },
    { type: T.CPUID, gpa: 0x5000, size: 0x1000 },
  ]);
  const svsm = parseOvmf(image(0x1000, [{ guid: SVSM_INFO_GUID, data: u32s(0x100) }]));
  assert.ok(svsm.ok);
  assert.equal(svsm.value.svsmInfoOffset, 0x100);
  assert.equal(svsm.value.sevMetadata, undefined);
  assert.equal(svsm.value.sevEsResetEip, undefined);
});

/** Asserts a refusal with INVALID_IMAGE whose message matches `re` and names the image. */
function refused(bytes: Uint8Array, re: RegExp): void {
  const r = parseOvmf(bytes, 'img.fd');
  assert.equal(r.ok, false, `accepted: ${re}`);
  if (r.ok) return;
  assert.equal(r.error.code, MeasureErrorCode.INVALID_IMAGE);
  assert.equal(r.error.layer, 'firmware');
  assert.match(r.error.message, /^img\.fd: /);
  assert.match(r.error.message, re);
}

test('truncated images are refused with the reason', () => {
  refused(new Uint8Array(0), /not a multiple of 4 KiB/);
  refused(amdSev.subarray(0, 4000), /size 4000 bytes is not a multiple of 4 KiB/);
  refused(amdSev.subarray(100, 100), /not a multiple/);
  // a page-aligned cut that loses the end of the image: no footer where it must be
  refused(Buffer.concat([amdSev, Buffer.alloc(4096)]), /no GUIDed footer table: expected GUID 96b582de/);
  // the metadata lives before the start of a cut image
  refused(
    withMetadata([[0x1000, 0x1000, T.SNP_SEC_MEM]]).subarray(0x1000),
    /SEV metadata offset 0x1800 .* outside/,
  );
});

test('garbled footer tables are refused with the offset and the reason', () => {
  const footerAt = 4096 - 50;
  const bigSize = Buffer.from(amdSev);
  bigSize.writeUInt16LE(0xffff, footerAt);
  refused(bigSize, /footer table size 65535 .* impossible/);
  const tiny = Buffer.from(amdSev);
  tiny.writeUInt16LE(3, footerAt);
  refused(tiny, /footer table size 3/);
  const entry = Buffer.from(amdSev);
  entry.writeUInt16LE(5, footerAt - 18); // last entry's size
  refused(entry, /declares size 5, outside 18\.\./);
  const stray = Buffer.from(amdSev);
  stray.writeUInt16LE(amdSev.readUInt16LE(footerAt) + 4, footerAt);
  refused(stray, /4 stray bytes at offset 0xf54.*garbled/);
  refused(
    image(0x1000, [
      { guid: SEV_ES_RESET_BLOCK_GUID, data: u32s(1) },
      { guid: SEV_ES_RESET_BLOCK_GUID, data: u32s(2) },
    ]),
    /appears twice/,
  );
  refused(
    image(0x1000, [{ guid: SEV_ES_RESET_BLOCK_GUID, data: Buffer.alloc(2) }]),
    /SEV-ES reset block entry .* holds 2 bytes, needs 4/,
  );
});

test('garbled SEV metadata is refused: signature, version, length, section type, alignment, size', () => {
  const ok = [[0x1000, 0x1000, T.SNP_SEC_MEM]];
  refused(
    withMetadata(ok, (img, s) => img.write('XSEV', s, 'latin1')),
    /does not start with "ASEV"/,
  );
  refused(
    withMetadata(ok, (img, s) => img.writeUInt32LE(2, s + 8)),
    /version 2 is not 1/,
  );
  refused(
    withMetadata(ok, (img, s) => img.writeUInt32LE(1000, s + 12)),
    /declares .* for 1000 sections/,
  );
  refused(withMetadata([[0x1000, 0x1000, 0x7]]), /section 0 .*unknown section type 0x7/);
  refused(withMetadata([[0x1800, 0x1000, T.SNP_SECRETS]]), /GPA is not 4 KiB aligned/);
  refused(withMetadata([[0x1000, 0x1234, T.SNP_SEC_MEM]]), /size is not a non-zero multiple of 4 KiB/);
  refused(withMetadata([[0x1000, 0, T.SVSM_CAA]]), /size is not a non-zero multiple/);
  refused(withMetadata([[0xfffff000, 0x2000, T.SNP_SEC_MEM]]), /below 4 GiB/);
});

test('property: any corruption of the fixture yields a parsed image or a clear refusal, never an exception', () => {
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.nat(4095), fc.nat(255)), { minLength: 1, maxLength: 8 }), (edits) => {
      const img = Buffer.from(amdSev);
      // bias the edits towards the footer table and metadata (the last ~2.5 KiB)
      for (const [at, value] of edits) img[4095 - (at % 2600)] = value;
      const r = parseOvmf(img, 'fuzzed');
      return (
        r.ok || (r.error.code === MeasureErrorCode.INVALID_IMAGE && r.error.message.startsWith('fuzzed: '))
      );
    }),
    { numRuns: 500 },
  );
});
