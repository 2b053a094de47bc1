/** SEV hashes table (QEMU `SevHashTable`): vectors of shared/vectors/measure-small.md. */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  buildSevHashesPage,
  buildSevHashesTable,
  cmdlineBytes,
  MeasureErrorCode,
  SEV_HASH_TABLE_LENGTH,
  SEV_HASH_TABLE_SIZE,
  sevHashes,
} from '../../psp-firmware/index.js';

const EMPTY_TABLE =
  '06d63894224fc94cb479a793d411fd21a800d82dd09720bd944caa78e7714d36ab2a32006e340b9cffb37a989ca544e6bb780a2c78901d3f' +
  'b33738768511a30617afa01d31f7ba442f3ad74b9af141e29169781d3200e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca4959' +
  '91b7852b8553794e74dd2ab7f42b835d5b172d2045b3200e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8550000000000000000';

test('table for kernel = initrd = empty file, no append: 176 bytes, header length 168, byte-exact', () => {
  assert.equal(SEV_HASH_TABLE_LENGTH, 168);
  assert.equal(SEV_HASH_TABLE_SIZE, 176);
  const table = buildSevHashesTable(sevHashes({ kernel: new Uint8Array(0), initrd: new Uint8Array(0) }));
  assert.equal(table.toString('hex'), EMPTY_TABLE);
  // a missing initrd hashes as the empty string, as with /dev/null
  assert.deepEqual(buildSevHashesTable(sevHashes({ kernel: new Uint8Array(0) })), table);
});

test('append "console=ttyS0 loglevel=7": cmdline hash over the text plus NUL; the 4 KiB page at offset 0xC00', () => {
  const h = sevHashes({
    kernel: new Uint8Array(0),
    initrd: new Uint8Array(0),
    append: 'console=ttyS0 loglevel=7',
  });
  assert.equal(
    Buffer.from(h.cmdline).toString('hex'),
    '321c8eec6a77bad179511397f913a083067ad8cb737bb260aacbfe8df70fc50a',
  );
  assert.deepEqual(cmdlineBytes('ab'), Buffer.from([0x61, 0x62, 0]));
  assert.deepEqual(cmdlineBytes(undefined), Buffer.from([0]));
  const page = buildSevHashesPage(buildSevHashesTable(h), 0xc00);
  assert.ok(page.ok);
  assert.equal(
    createHash('sha384').update(page.value).digest('hex'),
    'adbef9bc7385f7a6dcb8774523cf024b403f193a47962309b277c4109aa70b4ba0355d1657b50e9625d5bd1129e7fd27',
  );
});

test('the table must fit in its page', () => {
  const table = buildSevHashesTable(sevHashes({ kernel: new Uint8Array(1) }));
  assert.ok(buildSevHashesPage(table, 4096 - 176).ok);
  for (const off of [4096 - 175, -1, 0.5]) {
    const r = buildSevHashesPage(table, off);
    assert.equal(r.ok ? 'ok' : r.error.code, MeasureErrorCode.INVALID_IMAGE, `offset ${off}`);
  }
  assert.throws(
    () =>
      buildSevHashesTable({
        kernel: new Uint8Array(31),
        initrd: new Uint8Array(32),
        cmdline: new Uint8Array(32),
      }),
    RangeError,
  );
});

test('property: each input lands in its own entry (cmdline, initrd, kernel order) and nowhere else', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }),
      fc.string(),
      (kernel, initrd, append) => {
        const t = buildSevHashesTable(sevHashes({ kernel, initrd, append }));
        const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
        return (
          t.toString('hex', 36, 68) === sha(Buffer.concat([Buffer.from(append, 'utf8'), Buffer.alloc(1)])) &&
          t.toString('hex', 86, 118) === sha(initrd) &&
          t.toString('hex', 136, 168) === sha(kernel) &&
          t.subarray(168).every((b) => b === 0)
        );
      },
    ),
    { numRuns: 50 },
  );
});
