/**
 * The single-call host check's hot path (`Platform.hostAccess` inlines a write through a 4 KB mapping
 * on a flat table) gives exactly what the validating path gives, and every other argument still goes
 * through the validation: results are the same numbers, bad arguments the same RangeErrors.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AccessKind,
  hostAccessCheck,
  hostFaultCode,
  MappingSize,
  type MappingSize as MappingSizeT,
  makeRmpEntry,
  Platform,
} from '../../psp-firmware/index.js';

const MiB = 2 ** 20;
const K = AccessKind;

/** Entries the checks distinguish: assigned 4K, assigned 2 MB heads, unassigned 2 MB heads. */
const entryArb = fc.record({
  region: fc.integer({ min: 0, max: 7 }),
  index: fc.constantFrom(0, 1, 2, 255, 511),
  assigned: fc.boolean(),
  pageSize: fc.constantFrom<0 | 1>(0, 1),
  immutable: fc.boolean(),
});

test('property: the inline 4K-write path equals the validating check and the batch bit', () => {
  fc.assert(
    fc.property(
      fc.array(entryArb, { maxLength: 30 }),
      fc.array(fc.integer({ min: 0, max: 16 * 512 + 100 }), { minLength: 1, maxLength: 60 }),
      (entries, pages) => {
        const p = new Platform({ memoryBytes: 16 * MiB, coveredBytes: 16 * MiB });
        for (const e of entries) {
          const pfn = e.region * 512 + e.index;
          p.firmwareWrite(
            pfn,
            makeRmpEntry({
              assigned: e.assigned,
              pageSize: e.index === 0 ? e.pageSize : 0,
              immutable: e.immutable,
              asid: e.assigned ? 1 : 0,
            }),
          );
        }
        const pfns = Uint32Array.from(pages);
        const bits = new Uint32Array(Math.ceil(pages.length / 32));
        p.hostAccessBatchPfn(pfns, pages.length, K.WRITE, MappingSize.SIZE_4K, bits);
        pages.forEach((pfn, i) => {
          const spa = pfn * 4096;
          const fast = p.hostAccess(spa, K.WRITE);
          const fast4k = p.hostAccess(spa, K.WRITE, MappingSize.SIZE_4K);
          const slow = hostAccessCheck(p.rmp, spa, K.WRITE, MappingSize.SIZE_4K);
          assert.equal(fast, slow, `pfn ${pfn}`);
          assert.equal(fast4k, slow);
          assert.ok(fast === 0 || fast === 0x80000003, `result ${fast}`);
          assert.equal((bits[i >>> 5]! >>> (i & 31)) & 1, fast === 0 ? 0 : 1);
          // Mid-page addresses resolve to the same page.
          assert.equal(p.hostAccess(spa + 0xfff, K.WRITE), slow);
        });
      },
    ),
    { numRuns: 200 },
  );
});

test('hostAccess still validates every argument the hot path does not take', () => {
  const p = new Platform({ memoryBytes: 8 * MiB });
  p.firmwareWrite(1, makeRmpEntry({ assigned: true, asid: 1 }));
  assert.throws(() => p.hostAccess(Number.NaN, K.WRITE), /spa must be a non-negative number, got NaN/);
  assert.throws(() => p.hostAccess(-1, K.WRITE), /non-negative/);
  assert.throws(() => p.hostAccess(0x1000, 1.5 as AccessKind), /kind must be 0\.\.5/);
  assert.throws(() => p.hostAccess(0x1000, -1 as AccessKind), /kind must be/);
  assert.throws(() => p.hostAccess(0x1000, K.WRITE, 1.5 as MappingSizeT), /mapping 0\.\.2/);
  assert.throws(() => p.hostAccess(0x1000, K.WRITE, 3 as MappingSizeT), /mapping 0\.\.2/);
  assert.throws(() => p.hostAccess(0x1000, K.WRITE, Number.NaN as MappingSizeT), /mapping 0\.\.2/);
  assert.throws(
    () => p.hostAccessBatchPfn(new Uint32Array(1), 1, K.WRITE, 0.5 as MappingSizeT, new Uint32Array(1)),
    /mapping/,
  );
  // Not covered, beyond 2^44, infinite: hypervisor-owned (0), as before.
  assert.equal(p.hostAccess(8 * MiB, K.WRITE), 0);
  assert.equal(p.hostAccess(2 ** 60, K.WRITE), 0);
  assert.equal(p.hostAccess(Number.POSITIVE_INFINITY, K.WRITE), 0);
  // Other kinds and mappings take the validating path and still see the entry.
  assert.equal(p.hostAccess(0x1000, K.PAGE_TABLE_READ), 0x80000001);
  assert.equal(p.hostAccess(0x1000, K.READ), 0);
  assert.equal(p.hostAccess(0x0000, K.WRITE, MappingSize.SIZE_2M), 0x80000003);
  assert.equal(hostFaultCode(K.WRITE), 0x80000003, 'a positive uint32, not the int32 bit pattern');
});

test("the flat table is one array for the RMP's life; chunked tables keep the shared zero chunk", () => {
  const flat = new Platform({ memoryBytes: 8 * MiB });
  const t = flat.rmp.flat;
  assert.ok(t instanceof Uint32Array);
  assert.equal(flat.rmp.chunks[0], t);
  assert.equal(flat.rmp.allocatedChunks, 0);
  flat.rmpupdate(0x3000, { gpa: 0, assigned: true, pageSize: 0, immutable: false, asid: 1 });
  assert.equal(flat.rmp.flat, t, 'not replaced by the first write');
  assert.equal(flat.rmp.chunks[0], t);
  assert.equal(flat.rmp.allocatedChunks, 1);
  assert.equal(flat.hostAccess(0x3000, K.WRITE), 0x80000003);
  assert.deepEqual(flat.rmp.verifyCounters(), []);
  const chunked = new Platform({ memoryBytes: 2 * 2 ** 40 + 8 * MiB, coveredBytes: 2 * 2 ** 40 });
  assert.equal(chunked.rmp.flat, null);
  chunked.rmpupdate(2 ** 40, { gpa: 0, assigned: true, pageSize: 0, immutable: false, asid: 1 });
  assert.equal(chunked.hostAccess(2 ** 40, K.WRITE), 0x80000003, 'chunked: the validating path');
  assert.equal(chunked.hostAccess(2 ** 40 + 4096, K.WRITE), 0);
});
