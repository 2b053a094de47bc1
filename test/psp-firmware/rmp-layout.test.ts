import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CPU_PROFILES,
  decodeRmpEntry,
  encodeRmpEntry,
  entryQuadwords,
  formatRmpEntryLinux,
  makeRmpEntry,
  PAGE_STATES,
  PageState,
  Platform,
  pageStateOfWords,
  RMP_BOOKKEEPING_SIZE,
  type RmpEntry,
  ZERO_RMP_ENTRY,
} from '../../psp-firmware/index.js';

/** q0/q1 of an entry as bigints, via the raw words. */
function quads(e: RmpEntry): { lo: bigint; hi: bigint } {
  const w = encodeRmpEntry(e);
  return { lo: BigInt(w[0]!) | (BigInt(w[1]!) << 32n), hi: BigInt(w[2]!) | (BigInt(w[3]!) << 32n) };
}

test('each field lands on its documented bit (Linux rmpentry_raw, firmware rmp_entry_t)', () => {
  const cases: [Partial<RmpEntry>, bigint, bigint][] = [
    [{ assigned: true }, 1n << 0n, 0n],
    [{ pageSize: 1 }, 1n << 1n, 0n],
    [{ immutable: true }, 1n << 2n, 0n],
    [{ subpageCount: 1 }, 1n << 3n, 0n],
    [{ subpageCount: 511 }, 0x1ffn << 3n, 0n],
    [{ gpa: 0x1000 }, 1n << 12n, 0n],
    [{ gpa: (2 ** 39 - 1) * 4096 }, ((1n << 39n) - 1n) << 12n, 0n],
    [{ asid: 1 }, 1n << 51n, 0n],
    [{ asid: 0x3ff }, 0x3ffn << 51n, 0n],
    [{ vmsa: true }, 1n << 61n, 0n],
    [{ validated: true }, 1n << 62n, 0n],
    [{ lock: true }, 1n << 63n, 0n],
    [{ vmplPerms: [0x1f, 0, 0, 0] }, 0n, 0x1fn],
    [{ vmplPerms: [0, 0x01, 0, 0] }, 0n, 0x01n << 8n],
    [{ vmplPerms: [0, 0, 0x02, 0] }, 0n, 0x02n << 16n],
    [{ vmplPerms: [0, 0, 0, 0x10] }, 0n, 0x10n << 24n],
    [{ implicitKeySelect: true }, 0n, 1n << 32n],
    [{ rootPortId: 0x1f }, 0n, 0x1fn << 49n],
    [{ pcieIdeStreamId: 0xff }, 0n, 0xffn << 54n],
    [{ pageMigration: 3 }, 0n, 3n << 62n],
  ];
  for (const [fields, lo, hi] of cases) {
    assert.deepEqual(quads(makeRmpEntry(fields)), { lo, hi }, JSON.stringify(fields));
  }
});

test('raw quadword 0 of the firmware-written states: 0x0, 0x4, 0x8000000000000005 [FW sev_rmp.c]', () => {
  assert.equal(quads(ZERO_RMP_ENTRY).lo, 0x0n);
  assert.equal(quads(makeRmpEntry({ immutable: true })).lo, 0x4n);
  const fw = makeRmpEntry({ assigned: true, immutable: true, lock: true });
  assert.equal(quads(fw).lo, 0x8000000000000005n);
  assert.equal(pageStateOfWords(0, 0), PageState.HYPERVISOR);
  assert.equal(pageStateOfWords(0x4, 0), PageState.HV_FIXED);
  assert.equal(pageStateOfWords(0x5, 0x80000000), PageState.FIRMWARE);
});

test('dump() is the 16 bytes in memory and formats like Linux dump_rmpentry() (lo, hi)', () => {
  const p = new Platform({ memoryBytes: 8 * 2 ** 20 });
  const e = makeRmpEntry({
    assigned: true,
    asid: 5,
    gpa: 0x1000,
    validated: true,
    vmplPerms: [0x1f, 0, 0, 0],
  });
  p.firmwareWrite(0x10, e);
  const bytes = p.rmp.dump(0x10);
  assert.deepEqual(
    [...bytes],
    [0x01, 0x10, 0, 0, 0, 0, 0x28, 0x40, 0x1f, 0, 0, 0, 0, 0, 0, 0], // little-endian lo then hi
  );
  assert.deepEqual(entryQuadwords(bytes), { lo: 0x4028000000001001n, hi: 0x1fn });
  assert.equal(formatRmpEntryLinux(bytes), '[0x4028000000001001 - 0x000000000000001f]');
  // The same bytes at table offset 0x4000 + 16 * pfn.
  assert.deepEqual(p.rmp.readTable(RMP_BOOKKEEPING_SIZE + 16 * 0x10, 16), bytes);
  assert.throws(() => p.rmp.dump(8 * 256), /not RMP-covered/);
});

const entryArb: fc.Arbitrary<RmpEntry> = fc.record({
  assigned: fc.boolean(),
  pageSize: fc.constantFrom(0 as const, 1 as const),
  immutable: fc.boolean(),
  subpageCount: fc.integer({ min: 0, max: 511 }),
  gpa: fc.integer({ min: 0, max: 2 ** 39 - 1 }).map((g) => g * 4096),
  asid: fc.integer({ min: 0, max: 1023 }),
  vmsa: fc.boolean(),
  validated: fc.boolean(),
  lock: fc.boolean(),
  vmplPerms: fc.tuple(
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 255 }),
    fc.integer({ min: 0, max: 255 }),
  ),
  implicitKeySelect: fc.boolean(),
  rootPortId: fc.integer({ min: 0, max: 31 }),
  pcieIdeStreamId: fc.integer({ min: 0, max: 255 }),
  pageMigration: fc.integer({ min: 0, max: 3 }),
  q1Reserved: fc.integer({ min: 0, max: 0xffff }),
});

test('property: decode(encode(x)) == x, and encode(decode(w)) == w for any 16 raw bytes', () => {
  fc.assert(
    fc.property(entryArb, (e) =>
      assert.deepEqual(decodeRmpEntry(encodeRmpEntry(e)), { ...e, vmplPerms: [...e.vmplPerms] }),
    ),
  );
  fc.assert(
    fc.property(fc.uint32Array({ minLength: 4, maxLength: 4 }), (w) => {
      assert.deepEqual(encodeRmpEntry(decodeRmpEntry(w)), Uint32Array.from(w));
    }),
  );
});

test('encode rejects values that do not fit, naming the field', () => {
  assert.throws(() => encodeRmpEntry(makeRmpEntry({ asid: 1024 })), /RmpEntry\.asid/);
  assert.throws(() => encodeRmpEntry(makeRmpEntry({ gpa: 0x1001 })), /RmpEntry\.gpa/);
  assert.throws(() => encodeRmpEntry(makeRmpEntry({ gpa: 2 ** 51 })), /RmpEntry\.gpa/);
  assert.throws(() => encodeRmpEntry(makeRmpEntry({ subpageCount: 512 })), /RmpEntry\.subpageCount/);
  assert.throws(() => encodeRmpEntry(makeRmpEntry({ vmplPerms: [0, 0, 256, 0] })), /vmplPerms\[2\]/);
});

test('page state: every state of the firmware table (rmp_entry_get_state) plus Default', () => {
  const p = new Platform({ memoryBytes: 8 * 2 ** 20, coveredBytes: 4 * 2 ** 20 });
  const tag = (t: number, gfn: number) => (t * 2 ** 36 + gfn) * 4096;
  const cases: [Partial<RmpEntry>, PageState][] = [
    [{}, PageState.HYPERVISOR],
    [{ gpa: 0x5000, vmsa: true }, PageState.HYPERVISOR], // GPA/VMSA are "don't care" for Hypervisor
    [{ immutable: true }, PageState.HV_FIXED],
    [{ assigned: true, immutable: true, lock: true }, PageState.FIRMWARE],
    [{ assigned: true, immutable: true }, PageState.FIRMWARE],
    [{ assigned: true, immutable: true, lock: true, gpa: tag(2, 1) }, PageState.FIRMWARE_IOMMU],
    [{ assigned: true }, PageState.RECLAIM],
    [{ assigned: true, lock: true }, PageState.INVALID], // Reclaim needs lock 0
    [{ assigned: true, immutable: true, vmsa: true }, PageState.CONTEXT],
    [{ assigned: true, immutable: true, gpa: tag(1, 7) }, PageState.METADATA],
    [{ assigned: true, immutable: true, gpa: tag(1, 0) }, PageState.INVALID], // Metadata needs GFN > 0
    [{ assigned: true, immutable: true, gpa: tag(2, 2) }, PageState.INVALID], // FW-IOMMU needs GFN 1
    [{ assigned: true, immutable: true, asid: 3 }, PageState.PRE_GUEST],
    [{ assigned: true, immutable: true, asid: 3, validated: true }, PageState.PRE_SWAP],
    [{ assigned: true, asid: 3 }, PageState.GUEST_INVALID],
    [{ assigned: true, asid: 3, validated: true }, PageState.GUEST_VALID],
    [{ validated: true }, PageState.INVALID],
    [{ asid: 3 }, PageState.INVALID],
    [{ assigned: true, validated: true }, PageState.INVALID],
  ];
  const seen = new Set<PageState>();
  for (const [fields, state] of cases) {
    p.firmwareWrite(1, makeRmpEntry(fields));
    assert.equal(p.rmp.pageState(1), state, JSON.stringify(fields));
    seen.add(state);
  }
  assert.equal(p.rmp.pageState(4 * 256), PageState.DEFAULT); // first page beyond coverage
  seen.add(PageState.DEFAULT);
  assert.deepEqual([...seen].sort(), [...PAGE_STATES].sort());
});

test('RMPUPDATE stores GPA[50:12] & the system PA mask: 48 bits on Milan, 52 on Genoa', () => {
  const all = 2 ** 52 - 4096; // (u64)-1 & ~0xfff, within the number range
  for (const [name, gfn] of [
    ['milan', 0xfffffffff],
    ['genoa', 0x7fffffffff],
  ] as const) {
    const p = new Platform({ memoryBytes: 4 * 2 ** 20, profile: CPU_PROFILES[name] });
    assert.equal(p.rmpupdate(0x1000, { gpa: all, assigned: true, pageSize: 0, immutable: true, asid: 1 }), 0);
    assert.equal(p.rmp.entry(1)?.gpa, gfn * 4096, name);
  }
});
