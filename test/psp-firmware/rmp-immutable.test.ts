/**
 * Host RMP instructions never change a page only the AMD-SP may change: the issue-2 PSMASH sequence
 * (a Context page inside a region whose 2 MB-aligned entry is an unassigned 2 MB entry), the
 * requirements for expansion, 2 MB assignments over Immutable entries, and a property over random
 * RMPUPDATE / PSMASH / AMD-SP write sequences: every page whose governing entry is Immutable keeps its
 * governing state through any host instruction, and the counters stay exact.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CPU_PROFILES,
  createSnpSystem,
  entryGfn,
  makeRmpEntry,
  PageState,
  Platform,
  type RmpEntry,
  RmpStatus,
  type RmpUpdateState,
  SevStatus,
} from '../../psp-firmware/index.js';

const MiB = 2 ** 20;
const S = RmpStatus;
const REGION = 2 * MiB;
const HEAD = REGION / 4096;

const shared2M: RmpUpdateState = { gpa: 0, assigned: false, pageSize: 1, immutable: false, asid: 0 };
const firmware4K: RmpUpdateState = { gpa: 0, assigned: true, pageSize: 0, immutable: true, asid: 0 };

/**
 * What governs page `pfn` for every check (its 2 MB-aligned entry when that is an assigned 2 MB entry,
 * else its own): owner, ASID, GPA of this page, Validated, VMSA, Immutable, lock, VMPL masks, q1. Page
 * size and subpage count are representation, not state: PSMASH changes them and nothing else.
 */
function governing(p: Platform, pfn: number): string {
  const at = p.rmp.authoritativePfn(pfn);
  const w0 = p.rmp.word(at, 0);
  const w1 = p.rmp.word(at, 1);
  const gfn = entryGfn(w0, w1) + (pfn - at);
  return [w0 & 0x5, gfn, w1 & ~0x7ffff, p.rmp.word(at, 2), p.rmp.word(at, 3)].join(':');
}

function immutableGoverned(p: Platform, pfn: number): boolean {
  return (p.rmp.word(p.rmp.authoritativePfn(pfn), 0) & 0x4) !== 0;
}

test('issue 2: PSMASH of an unassigned 2 MB entry cannot wipe a Context page inside it', () => {
  const { platform, firmware } = createSnpSystem({ memoryBytes: 64 * MiB, init: true });
  const ctxPa = REGION + 0x5000;
  assert.equal(platform.rmpupdate(REGION, shared2M), S.SUCCESS);
  assert.equal(platform.rmpupdate(ctxPa, firmware4K), S.SUCCESS);
  assert.equal(firmware.gctxCreate(ctxPa), SevStatus.SUCCESS);
  assert.equal(platform.rmp.pageState(ctxPa / 4096), PageState.CONTEXT);
  const before = platform.rmp.dump(ctxPa / 4096);
  assert.equal(platform.psmash(REGION), CPU_PROFILES.genoa.psmashBadAddressCode);
  assert.deepEqual(platform.rmp.dump(ctxPa / 4096), before, 'the Context entry is untouched');
  assert.equal(platform.rmp.pageState(ctxPa / 4096), PageState.CONTEXT);
  assert.notEqual(firmware.guestContext(ctxPa), undefined);
  assert.deepEqual(platform.rmp.verifyCounters(), []);
});

test('PSMASH requirements for expansion: an assigned 2 MB entry with no other assigned entry', () => {
  const bad = CPU_PROFILES.genoa.psmashBadAddressCode;
  const p = new Platform({ memoryBytes: 8 * MiB });
  // An unassigned 2 MB entry with nothing assigned in its region is refused too (it governs nothing).
  assert.equal(p.rmpupdate(REGION, shared2M), S.SUCCESS);
  assert.equal(p.psmash(REGION), bad);
  assert.equal(p.rmp.entry(HEAD)?.pageSize, 1, 'refused: nothing written');
  // An assigned 2 MB head whose region holds another assigned entry (only the AMD-SP can make that).
  p.firmwareWrite(HEAD + 7, makeRmpEntry({ assigned: true, asid: 2, gpa: 0x7000 }));
  p.firmwareWrite(HEAD, makeRmpEntry({ assigned: true, pageSize: 1, asid: 1, gpa: 0x40_0000 }));
  assert.equal(p.rmp.subpageCount(HEAD), 1);
  assert.equal(p.psmash(REGION), bad);
  assert.equal(p.rmp.entry(HEAD + 7)?.asid, 2, 'the other page keeps its owner');
  // The same head with the region otherwise empty is smashed.
  p.firmwareWrite(HEAD + 7, makeRmpEntry({}));
  assert.equal(p.psmash(REGION), S.SUCCESS);
  assert.equal(p.rmp.entry(HEAD + 7)?.gpa, 0x40_7000);
  const ms = new Platform({
    memoryBytes: 8 * MiB,
    profile: { ...CPU_PROFILES.genoa, psmashBadAddressCode: 7 },
  });
  ms.rmpupdate(REGION, shared2M);
  assert.equal(ms.psmash(REGION), 7);
});

test('RMPUPDATE of an assigned 2 MB page over an Immutable (HV-Fixed) 4K entry: FAIL_PERMISSION', () => {
  const p = new Platform({ memoryBytes: 8 * MiB });
  const hvFixed: RmpUpdateState = { gpa: 0, assigned: false, pageSize: 0, immutable: true, asid: 0 };
  assert.equal(p.rmpupdate(REGION + 0x1ff000, hvFixed), S.SUCCESS);
  const guest2M: RmpUpdateState = { gpa: 0x40_0000, assigned: true, pageSize: 1, immutable: false, asid: 1 };
  assert.equal(p.rmpupdate(REGION, guest2M), S.FAIL_PERMISSION);
  assert.equal(p.rmp.pageState(HEAD + 511), PageState.HV_FIXED);
  // A shared 2 MB update writes only the head and governs nothing: allowed.
  assert.equal(p.rmpupdate(REGION, shared2M), S.SUCCESS);
  assert.equal(p.rmp.pageState(HEAD + 511), PageState.HV_FIXED);
  // An assigned 4K entry still reports FAIL_OVERLAP first (subpage count).
  p.rmpupdate(REGION + 0x3000, { ...guest2M, pageSize: 0, gpa: 0x3000 });
  assert.equal(p.rmpupdate(REGION, guest2M), S.FAIL_OVERLAP);
});

type Op =
  | { k: 'rmpupdate'; page: number; big: boolean; assigned: boolean; immutable: boolean; asid: number }
  | { k: 'psmash' }
  | { k: 'amd-sp'; page: number; state: 'firmware' | 'context' | 'pre-guest-2m' | 'reclaim' };

/** Pages played with: the head, a few tails and the last page of the 2 MB region. */
const PAGES = [0, 1, 2, 5, 511];

const opArb: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      k: fc.constant('rmpupdate' as const),
      page: fc.constantFrom(...PAGES),
      big: fc.boolean(),
      assigned: fc.boolean(),
      immutable: fc.boolean(),
      asid: fc.integer({ min: 0, max: 3 }),
    }),
  },
  { weight: 2, arbitrary: fc.constant({ k: 'psmash' as const }) },
  {
    weight: 2,
    arbitrary: fc.record({
      k: fc.constant('amd-sp' as const),
      page: fc.constantFrom(...PAGES),
      state: fc.constantFrom(
        'firmware' as const,
        'context' as const,
        'pre-guest-2m' as const,
        'reclaim' as const,
      ),
    }),
  },
);

function amdSpEntry(op: Extract<Op, { k: 'amd-sp' }>): { pfn: number; entry: RmpEntry } {
  switch (op.state) {
    case 'firmware':
      return { pfn: HEAD + op.page, entry: makeRmpEntry({ assigned: true, immutable: true, lock: true }) };
    case 'context':
      return {
        pfn: HEAD + op.page,
        entry: makeRmpEntry({ assigned: true, immutable: true, lock: true, vmsa: true }),
      };
    case 'reclaim':
      return { pfn: HEAD + op.page, entry: makeRmpEntry({ assigned: true }) };
    case 'pre-guest-2m':
      return {
        pfn: HEAD,
        entry: makeRmpEntry({ assigned: true, pageSize: 1, immutable: true, asid: 2, gpa: 0x60_0000 }),
      };
  }
}

test('property: host instructions never change a page governed by an Immutable entry', () => {
  fc.assert(
    fc.property(fc.array(opArb, { minLength: 5, maxLength: 60 }), (ops) => {
      const p = new Platform({ memoryBytes: 8 * MiB });
      const trace: string[] = [];
      for (const op of ops) {
        if (op.k === 'amd-sp') {
          const { pfn, entry } = amdSpEntry(op);
          // The AMD-SP keeps the RMP's own rule: no 2 MB entry over assigned pages, and no assigned page
          // under an assigned 2 MB entry (its tails are "don't care").
          if (entry.pageSize === 1 && p.rmp.subpageCount(HEAD) !== 0) continue;
          if (pfn !== HEAD && p.rmp.authoritativePfn(pfn) === HEAD) continue;
          p.firmwareWrite(pfn, entry);
          trace.push(`amd-sp ${op.state} @${op.page}`);
          continue;
        }
        const before = Array.from({ length: 512 }, (_, i) => governing(p, HEAD + i));
        const frozen = before.map((_, i) => immutableGoverned(p, HEAD + i));
        let status: number;
        if (op.k === 'psmash') status = p.psmash(REGION);
        else {
          const big = op.big && op.page === 0;
          status = p.rmpupdate(REGION + op.page * 4096, {
            gpa: big ? 0x40_0000 : op.page * 4096,
            assigned: op.assigned,
            pageSize: big ? 1 : 0,
            immutable: op.immutable,
            asid: op.assigned ? op.asid : 0,
          });
        }
        trace.push(`${JSON.stringify(op)} -> ${status}`);
        for (let i = 0; i < 512; i++) {
          if (frozen[i]) {
            assert.equal(
              governing(p, HEAD + i),
              before[i],
              `page ${i} (Immutable) changed by a host instruction after:\n  ${trace.join('\n  ')}`,
            );
          }
        }
        assert.deepEqual(p.rmp.verifyCounters(), [], trace.join('\n  '));
      }
    }),
    { numRuns: 300 },
  );
});
