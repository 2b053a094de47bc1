import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  makeRmpEntry,
  Platform,
  RMP_BOOKKEEPING_SIZE,
  RMP_CHUNK_ENTRIES,
  Rmp,
  type RmpEntry,
  RmpStatus,
} from '../../psp-firmware/index.js';

const GiB = 2 ** 30;

test('sparse: a 16 TiB-covered RMP allocates nothing until written, and reads Hypervisor entries', () => {
  const rmp = new Rmp({ coveredBytes: 2 ** 44 });
  assert.equal(rmp.coveredPages, 2 ** 32);
  assert.equal(rmp.allocatedChunks, 0);
  assert.equal(rmp.entry(2 ** 32 - 1)?.assigned, false);
  assert.equal(rmp.entry(2 ** 32), undefined);
  rmp.writeEntry(2 ** 32 - 1, makeRmpEntry({ assigned: true, asid: 9 }));
  assert.equal(rmp.allocatedChunks, 1);
  assert.equal(rmp.entry(2 ** 32 - 1)?.asid, 9);
  assert.equal(rmp.entry(2 ** 32 - 2)?.assigned, false);
  assert.equal(rmp.asidCount(9), 1);
  assert.throws(() => new Rmp({ coveredBytes: 2 ** 44 + 4096 }), /16 TiB/);
  assert.throws(() => new Rmp({ coveredBytes: 1000 }), /multiple of 4096/);
});

test('coverage: table size is 16 KiB + 16 bytes per covered 4K page (APM: 0x1103FFF-0x100000+1 covers 4 GB)', () => {
  const rmp = new Rmp({ coveredBytes: 4 * GiB });
  assert.equal(rmp.tableBytes, 0x1103fff - 0x100000 + 1);
  assert.equal(rmp.isCovered((4 * GiB) / 4096 - 1), true);
  assert.equal(rmp.isCovered((4 * GiB) / 4096), false);
  // A coverage that ends inside a 2 MB region and a chunk.
  const odd = new Rmp({ coveredBytes: GiB + 3 * 4096 });
  odd.writeEntry(RMP_CHUNK_ENTRIES + 2, makeRmpEntry({ assigned: true, asid: 1 }));
  assert.equal(odd.subpageCount(RMP_CHUNK_ENTRIES), 1);
  assert.throws(() => odd.writeEntry(RMP_CHUNK_ENTRIES + 3, makeRmpEntry({})), /not RMP-covered/);
});

test('bookkeeping: per-ASID counters are little-endian u64 at RMP_BASE + 8 * asid', () => {
  const p = new Platform({ memoryBytes: 64 * 2 ** 20 });
  for (let i = 0; i < 3; i++) {
    assert.equal(
      p.rmpupdate((16 + i) * 4096, { gpa: i * 4096, assigned: true, pageSize: 0, immutable: false, asid: 7 }),
      0,
    );
  }
  const bytes = p.rmp.readTable(7 * 8, 8);
  assert.equal(new DataView(bytes.buffer).getBigUint64(0, true), 3n);
  assert.equal(p.rmp.asidCount(7), 3);
  assert.equal(p.rmp.asidCount(0), 0);
  assert.throws(() => p.rmp.asidCount(2048), /ASID must be 0\.\.2047/);
  assert.throws(() => p.rmp.readTable(RMP_BOOKKEEPING_SIZE + 16 * 16384 - 8, 16), /table is/);
});

test('subpage count: the head of a 2 MB region counts the assigned entries among the 511 others', () => {
  const p = new Platform({ memoryBytes: 64 * 2 ** 20 });
  const head = 1024; // pfn, 2 MB aligned
  p.firmwareWrite(head, makeRmpEntry({ assigned: true, immutable: true })); // the head itself: not counted
  assert.equal(p.rmp.subpageCount(head), 0);
  assert.equal(p.rmp.regionUnassigned(head + 5), false);
  p.firmwareWrite(head, makeRmpEntry({}));
  assert.equal(p.rmp.regionUnassigned(head + 5), true);
  for (const i of [1, 2, 511]) p.firmwareWrite(head + i, makeRmpEntry({ assigned: true, asid: 4 }));
  assert.equal(p.rmp.subpageCount(head + 300), 3);
  assert.equal(p.rmp.entry(head)?.subpageCount, 3); // stored in q0 bits 3-11 of the head
  assert.equal(p.rmp.dump(head)[0], 3 << 3);
  // A write to the head never clobbers its count, whatever the caller passes.
  p.firmwareWrite(head, makeRmpEntry({ assigned: true, asid: 4, subpageCount: 100 }));
  assert.equal(p.rmp.subpageCount(head), 3);
  p.firmwareWrite(head + 2, makeRmpEntry({}));
  assert.equal(p.rmp.subpageCount(head), 2);
  assert.equal(p.rmp.asidCount(4), 3);
  assert.deepEqual(p.rmp.verifyCounters(), []);
  // The authoritative entry: the head only when it is an assigned 2 MB entry.
  assert.equal(p.rmp.authoritativePfn(head + 7), head + 7);
  p.firmwareWrite(head, makeRmpEntry({ assigned: true, asid: 4, pageSize: 1 }));
  assert.equal(p.rmp.authoritativePfn(head + 7), head);
  assert.equal(p.rmp.authoritativePfn(head), head);
  p.firmwareWrite(head, makeRmpEntry({ pageSize: 1 })); // a shared 2 MB entry governs nothing
  assert.equal(p.rmp.authoritativePfn(head + 7), head + 7);
});

// --- property: counters equal a full recount after random operations --------------------------

type Op =
  | { op: 'update'; page: number; size: 0 | 1; assigned: boolean; immutable: boolean; asid: number }
  | { op: 'psmash'; region: number }
  | { op: 'fw'; page: number; entry: Partial<RmpEntry> };

const REGIONS = 4; // 8 MB covered, the last region partially
const COVERED_PAGES = REGIONS * 512 - 100;

const opArb: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant('update' as const),
    page: fc.integer({ min: 0, max: COVERED_PAGES - 1 }),
    size: fc.constantFrom(0 as const, 1 as const),
    assigned: fc.boolean(),
    immutable: fc.boolean(),
    asid: fc.integer({ min: 1, max: 5 }),
  }),
  fc.record({ op: fc.constant('psmash' as const), region: fc.integer({ min: 0, max: REGIONS - 1 }) }),
  fc.record({
    op: fc.constant('fw' as const),
    page: fc.integer({ min: 0, max: COVERED_PAGES - 1 }),
    entry: fc.record({
      assigned: fc.boolean(),
      asid: fc.integer({ min: 0, max: 5 }),
      immutable: fc.boolean(),
    }),
  }),
);

function recount(p: Platform): { asid: number[]; sub: number[] } {
  const asid = new Array<number>(6).fill(0);
  const sub = new Array<number>(REGIONS).fill(0);
  for (let pfn = 0; pfn < COVERED_PAGES; pfn++) {
    const e = p.rmp.entry(pfn)!;
    if (!e.assigned) continue;
    asid[e.asid] = (asid[e.asid] ?? 0) + 1;
    if (pfn % 512 !== 0) sub[Math.floor(pfn / 512)]!++;
  }
  return { asid, sub };
}

test('property: per-ASID counters and subpage counts always equal a full recount', () => {
  fc.assert(
    fc.property(fc.array(opArb, { maxLength: 60 }), (ops) => {
      const p = new Platform({ memoryBytes: REGIONS * 2 * 2 ** 20, coveredBytes: COVERED_PAGES * 4096 });
      for (const o of ops) {
        if (o.op === 'update') {
          const page = o.size === 1 ? o.page - (o.page % 512) : o.page;
          p.rmpupdate(page * 4096, {
            gpa: o.assigned ? page * 4096 : 0,
            assigned: o.assigned,
            pageSize: o.size,
            immutable: o.assigned && o.immutable,
            asid: o.assigned ? o.asid : 0,
          });
        } else if (o.op === 'psmash') {
          p.psmash(o.region * 2 * 2 ** 20);
        } else {
          p.firmwareWrite(o.page, makeRmpEntry(o.entry));
        }
      }
      const { asid, sub } = recount(p);
      for (let a = 0; a < asid.length; a++) assert.equal(p.rmp.asidCount(a), asid[a], `ASID ${a}`);
      for (let r = 0; r < REGIONS; r++) assert.equal(p.rmp.subpageCount(r * 512), sub[r], `region ${r}`);
      assert.deepEqual(p.rmp.verifyCounters(), []);
    }),
    { numRuns: 200 },
  );
});

type RegionOp =
  | { k: 'update'; page: number; big: boolean; assigned: boolean; immutable: boolean; asid: number }
  | { k: 'psmash' };

const regionOpArb: fc.Arbitrary<RegionOp> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('update' as const),
      page: fc.constantFrom(0, 1, 7, 256, 511),
      big: fc.boolean(),
      assigned: fc.boolean(),
      immutable: fc.boolean(),
      asid: fc.integer({ min: 1, max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.constant({ k: 'psmash' as const }) },
);

test('property: a chunked table (above 1 TiB) answers like a flat one, in a fresh chunk and in a written one', () => {
  const TiB = 2 ** 40;
  const region = 2 * 2 ** 20;
  fc.assert(
    fc.property(fc.array(regionOpArb, { minLength: 1, maxLength: 25 }), (ops) => {
      const flat = new Platform({ memoryBytes: 8 * 2 ** 20 });
      const chunked = new Platform({ memoryBytes: 2 * TiB, coveredBytes: 2 * TiB });
      assert.equal(chunked.rmp.flat, null);
      // Chunk 3 already holds a page of another ASID; chunk 1500 (pfns above 2^28) was never written.
      const other = { gpa: 0, assigned: true, pageSize: 0 as const, immutable: false, asid: 9 };
      assert.equal(chunked.rmpupdate(3 * GiB + 100 * 4096, other), RmpStatus.SUCCESS);
      const targets: [Platform, number][] = [
        [flat, region],
        [chunked, 3 * GiB + region],
        [chunked, 1500 * GiB + region],
      ];
      for (const op of ops) {
        const statuses = targets.map(([p, base]) => {
          if (op.k === 'psmash') return p.psmash(base);
          const big = op.big && op.page === 0;
          return p.rmpupdate(base + op.page * 4096, {
            gpa: big ? 0x40_0000 : op.page * 4096,
            assigned: op.assigned,
            pageSize: big ? 1 : 0,
            immutable: op.assigned && op.immutable,
            asid: op.assigned ? op.asid : 0,
          });
        });
        assert.deepEqual(statuses.slice(1), [statuses[0], statuses[0]], JSON.stringify(op));
      }
      for (let i = 0; i < 512; i++) {
        const [want, ...got] = targets.map(([p, base]) => p.rmp.entry(base / 4096 + i));
        assert.deepEqual(got, [want, want], `page ${i} of the region`);
      }
      for (const asid of [1, 2, 3]) {
        assert.equal(chunked.rmp.asidCount(asid), 2 * flat.rmp.asidCount(asid), `ASID ${asid}`);
      }
      assert.equal(chunked.rmp.asidCount(9), 1);
      assert.deepEqual(chunked.rmp.verifyCounters(), []);
    }),
    { numRuns: 40 },
  );
});
