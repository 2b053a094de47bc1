import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  CPU_PROFILES,
  type CpuProfile,
  encodeRmpState,
  makeGuestContext,
  makeRmpEntry,
  PageState,
  Platform,
  RmpStatus,
  type RmpUpdateState,
} from '../../psp-firmware/index.js';

const MiB = 2 ** 20;
const S = RmpStatus;

function platform(profile?: CpuProfile): Platform {
  return new Platform({ memoryBytes: 16 * MiB, coveredBytes: 8 * MiB, ...(profile ? { profile } : {}) });
}

const priv = (gpa: number, asid = 1, pageSize: 0 | 1 = 0, immutable = false): RmpUpdateState => ({
  gpa,
  assigned: true,
  pageSize,
  immutable,
  asid,
});
const shared = (pageSize: 0 | 1 = 0): RmpUpdateState => ({
  gpa: 0,
  assigned: false,
  pageSize,
  immutable: false,
  asid: 0,
});

/** Puts a VMSA page of ASID 1 at `spa` (GPA `gpa`) and VMRUNs it on CPU 0. */
function runningVmsa(p: Platform, spa: number, gpa: number): void {
  assert.equal(p.rmpupdate(spa, priv(gpa)), S.SUCCESS);
  p.firmwareWrite(spa / 4096, { ...p.rmp.entry(spa / 4096)!, validated: true, vmsa: true });
  p.memory.writeU64(spa + 0x0d0, 0x1000n); // EFER.SVME
  p.memory.writeU64(spa + 0x3b0, 0x1n); // SEV_FEATURES.SNPActive
  const r = p.vmrun({ cpu: 0, asid: 1, vmsaPa: spa, vmsaGpa: gpa });
  assert.equal(r.kind, 'entered');
}

test('RMPUPDATE: every return code', () => {
  const cases: [string, (p: Platform) => number, number][] = [
    ['assign 4K', (p) => p.rmpupdate(0x10000, priv(0x5000)), S.SUCCESS],
    ['raw struct rmp_state', (p) => p.rmpupdate(0x10000, encodeRmpState(priv(0x5000))), S.SUCCESS],
    ['sPA not 4K aligned', (p) => p.rmpupdate(0x10008, priv(0)), S.FAIL_INPUT],
    ['2M with sPA not 2M aligned', (p) => p.rmpupdate(0x10000, priv(0, 1, 1)), S.FAIL_INPUT],
    ['sPA not RMP-covered', (p) => p.rmpupdate(8 * MiB, priv(0)), S.FAIL_INPUT],
    ['sPA beyond 2^52', (p) => p.rmpupdate(2 ** 53, priv(0)), S.FAIL_INPUT],
    ['negative sPA', (p) => p.rmpupdate(-4096, priv(0)), S.FAIL_INPUT],
    ['ASID does not fit 10 bits', (p) => p.rmpupdate(0x10000, priv(0, 1024)), S.FAIL_INPUT],
    ['unassigned with an ASID', (p) => p.rmpupdate(0x10000, { ...shared(), asid: 3 }), S.FAIL_INPUT],
    ['page size 2', (p) => p.rmpupdate(0x10000, { ...priv(0), pageSize: 2 as 0 }), S.FAIL_INPUT],
    ['assigned 2M with a GPA not 2M aligned', (p) => p.rmpupdate(0x200000, priv(0x1000, 1, 1)), S.FAIL_INPUT],
    [
      'struct rmp_state reserved byte set',
      (p) => {
        const b = encodeRmpState(priv(0));
        b[11] = 1;
        return p.rmpupdate(0x10000, b);
      },
      S.FAIL_INPUT,
    ],
    [
      'struct rmp_state assigned = 2',
      (p) => {
        const b = encodeRmpState(priv(0));
        b[8] = 2;
        return p.rmpupdate(0x10000, b);
      },
      S.FAIL_INPUT,
    ],
    ['struct rmp_state of 15 bytes', (p) => p.rmpupdate(0x10000, new Uint8Array(15)), S.FAIL_INPUT],
    [
      'immutable entry (Pre-Guest)',
      (p) => {
        p.rmpupdate(0x10000, priv(0, 1, 0, true));
        return p.rmpupdate(0x10000, shared());
      },
      S.FAIL_PERMISSION,
    ],
    [
      'immutable entry (Firmware, written by the AMD-SP)',
      (p) => {
        p.firmwareWrite(0x10, makeRmpEntry({ assigned: true, immutable: true, lock: true }));
        return p.rmpupdate(0x10000, shared());
      },
      S.FAIL_PERMISSION,
    ],
    [
      'immutable entry (HV-Fixed)',
      (p) => {
        p.firmwareWrite(0x10, makeRmpEntry({ immutable: true }));
        return p.rmpupdate(0x10000, priv(0));
      },
      S.FAIL_PERMISSION,
    ],
    [
      'VMSA in use by a running VMRUN',
      (p) => {
        runningVmsa(p, 0x11000, 0x7000);
        return p.rmpupdate(0x11000, shared());
      },
      S.FAIL_INUSE,
    ],
    [
      '2M update of a region holding an in-use VMSA',
      (p) => {
        runningVmsa(p, 0x211000, 0x7000);
        return p.rmpupdate(0x200000, shared(1));
      },
      S.FAIL_INUSE,
    ],
    [
      '2M over an assigned 4K entry of the region',
      (p) => {
        p.rmpupdate(0x205000, priv(0x5000));
        return p.rmpupdate(0x200000, priv(0, 1, 1));
      },
      S.FAIL_OVERLAP,
    ],
    [
      '2M shared over an assigned 4K entry of the region',
      (p) => {
        p.rmpupdate(0x3ff000, priv(0x5000));
        return p.rmpupdate(0x200000, shared(1));
      },
      S.FAIL_OVERLAP,
    ],
    [
      '4K inside an assigned 2M page',
      (p) => {
        p.rmpupdate(0x200000, priv(0x400000, 1, 1));
        return p.rmpupdate(0x201000, shared());
      },
      S.FAIL_OVERLAP,
    ],
    [
      '4K inside a shared 2M entry is allowed',
      (p) => {
        p.rmpupdate(0x200000, shared(1));
        return p.rmpupdate(0x201000, priv(0x1000));
      },
      S.SUCCESS,
    ],
    [
      'size change 2M -> 4K at the head is allowed',
      (p) => {
        p.rmpupdate(0x200000, priv(0x400000, 1, 1));
        return p.rmpupdate(0x200000, priv(0x400000));
      },
      S.SUCCESS,
    ],
  ];
  for (const [name, run, expected] of cases) assert.equal(run(platform()), expected, name);
  const strict = { ...CPU_PROFILES.genoa, rmpupdateGpaLowBits: 'fail-input' as const };
  assert.equal(
    platform(strict).rmpupdate(0x10000, priv(0x5008)),
    S.FAIL_INPUT,
    'GPA low bits, strict profile',
  );
  assert.equal(platform().rmpupdate(0x10000, priv(0x5008)), S.SUCCESS, 'GPA low bits ignored by default');
});

test('RMPUPDATE effects: VMPL0 full, VMPL1-3 none, Validated and VMSA cleared, shared is all zero', () => {
  const p = platform();
  assert.equal(p.rmpupdate(0x10000, priv(0x5000, 3)), S.SUCCESS);
  const e = p.rmp.entry(0x10)!;
  assert.deepEqual(
    {
      assigned: e.assigned,
      asid: e.asid,
      gpa: e.gpa,
      perms: e.vmplPerms,
      validated: e.validated,
      vmsa: e.vmsa,
    },
    { assigned: true, asid: 3, gpa: 0x5000, perms: [0x1f, 0, 0, 0], validated: false, vmsa: false },
  );
  assert.equal(p.rmp.pageState(0x10), PageState.GUEST_INVALID);
  // Make it validated + VMSA + VMPL1 permissions, then reassign: all cleared [DER].
  p.firmwareWrite(0x10, { ...e, validated: true, vmsa: true, vmplPerms: [0x1f, 0x3, 0, 0] });
  assert.equal(p.rmpupdate(0x10000, priv(0x6000, 3)), S.SUCCESS);
  assert.deepEqual(
    p.rmp.entry(0x10),
    makeRmpEntry({ assigned: true, asid: 3, gpa: 0x6000, vmplPerms: [0x1f, 0, 0, 0] }),
  );
  assert.equal(p.rmpupdate(0x10000, shared()), S.SUCCESS);
  assert.deepEqual([...p.rmp.dump(0x10)], new Array(16).fill(0));
  // Pre-Guest and Firmware via RMPUPDATE, as Linux does (rmp_make_private immutable / rmp_mark_pages_firmware).
  p.rmpupdate(0x20000, priv(0xfffffffff000, 3, 0, true));
  assert.equal(p.rmp.pageState(0x20), PageState.PRE_GUEST);
  p.rmpupdate(0x21000, { gpa: 0, assigned: true, pageSize: 0, immutable: true, asid: 0 });
  assert.equal(p.rmp.pageState(0x21), PageState.FIRMWARE);
  // The VMPL0 mask follows the profile.
  const q = platform({ ...CPU_PROFILES.genoa, rmpupdateVmpl0Mask: 0x0f });
  q.rmpupdate(0x10000, priv(0));
  assert.deepEqual(q.rmp.entry(0x10)?.vmplPerms, [0x0f, 0, 0, 0]);
});

test('property: an assigning or re-assigning RMPUPDATE always leaves the page unvalidated, VMSA clear', () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 0, max: 1023 }),
      fc.boolean(),
      fc.boolean(),
      fc.integer({ min: 1, max: 1023 }),
      fc.integer({ min: 0, max: 2 ** 20 }),
      (pfn, wasValidated, wasVmsa, asid, gfn) => {
        const p = platform();
        p.firmwareWrite(
          pfn,
          makeRmpEntry({ assigned: true, asid: 2, validated: wasValidated, vmsa: wasVmsa }),
        );
        assert.equal(p.rmpupdate(pfn * 4096, priv(gfn * 4096, asid)), S.SUCCESS);
        const e = p.rmp.entry(pfn)!;
        assert.equal(e.validated, false);
        assert.equal(e.vmsa, false);
        assert.equal(e.asid, asid);
      },
    ),
  );
});

test('PSMASH: every return code', () => {
  const bad = CPU_PROFILES.genoa.psmashBadAddressCode;
  const cases: [string, (p: Platform) => number, number][] = [
    [
      '2M assigned page',
      (p) => {
        p.rmpupdate(0x200000, priv(0x400000, 1, 1));
        return p.psmash(0x200000);
      },
      S.SUCCESS,
    ],
    ['sPA not 2M aligned', (p) => p.psmash(0x201000), S.FAIL_INPUT],
    ['region not RMP-covered', (p) => p.psmash(8 * MiB), S.FAIL_INPUT],
    ['not a 2M entry (4K shared)', (p) => p.psmash(0x200000), bad],
    [
      'not a 2M entry (4K assigned)',
      (p) => {
        p.rmpupdate(0x200000, priv(0));
        return p.psmash(0x200000);
      },
      bad,
    ],
    [
      'in use (VMSA of a running vCPU in the region)',
      (p) => {
        runningVmsa(p, 0x200000, 0x400000);
        p.firmwareWrite(0x200, { ...p.rmp.entry(0x200)!, pageSize: 1 });
        return p.psmash(0x200000);
      },
      S.FAIL_INUSE,
    ],
  ];
  for (const [name, run, expected] of cases) assert.equal(run(platform()), expected, name);
  const ms = { ...CPU_PROFILES.genoa, psmashBadAddressCode: 7 as const };
  assert.equal(platform(ms).psmash(0x200000), 7, 'Microsoft-documented bad-address code');
});

test('property: PSMASH preserves every field and produces consecutive GPAs', () => {
  fc.assert(
    fc.property(
      fc.record({
        asid: fc.integer({ min: 1, max: 1023 }),
        validated: fc.boolean(),
        vmsa: fc.boolean(),
        immutable: fc.boolean(),
        lock: fc.boolean(),
        gfn2m: fc.integer({ min: 0, max: 2 ** 27 - 1 }),
        perms: fc.tuple(fc.nat(31), fc.nat(31), fc.nat(31), fc.nat(31)),
        implicitKeySelect: fc.boolean(),
      }),
      (f) => {
        const p = platform();
        const head = makeRmpEntry({
          assigned: true,
          pageSize: 1,
          asid: f.asid,
          validated: f.validated,
          vmsa: f.vmsa,
          immutable: f.immutable,
          lock: f.lock,
          gpa: f.gfn2m * 512 * 4096,
          vmplPerms: f.perms,
          implicitKeySelect: f.implicitKeySelect,
        });
        p.firmwareWrite(512, head);
        assert.equal(p.psmash(2 * MiB), S.SUCCESS);
        for (let i = 0; i < 512; i++) {
          const expected = {
            ...head,
            pageSize: 0,
            gpa: head.gpa + i * 4096,
            subpageCount: i === 0 ? 511 : 0,
          };
          assert.deepEqual(p.rmp.entry(512 + i), expected);
        }
        assert.equal(p.rmp.asidCount(f.asid), 512);
        assert.deepEqual(p.rmp.verifyCounters(), []);
      },
    ),
    { numRuns: 30 },
  );
});

test('RMPREAD: #UD without the feature; FAIL_INPUT; the architectural output with the 2MB-region bit', () => {
  assert.equal(platform().rmpread(0x1000).kind, 'ud');
  const p = platform(CPU_PROFILES.turin);
  assert.deepEqual(p.rmpread(0x1008), { kind: 'eax', eax: S.FAIL_INPUT });
  assert.deepEqual(p.rmpread(8 * MiB), { kind: 'eax', eax: S.FAIL_INPUT });
  p.rmpupdate(0x200000, priv(0x400000, 0x3ff, 0, true));
  p.rmpupdate(0x203000, priv(0x403000, 2));
  const head = p.rmpread(0x200000);
  assert.equal(head.kind, 'eax');
  if (head.kind !== 'eax') return;
  assert.equal(head.eax, S.SUCCESS);
  assert.deepEqual(
    [...(head.entry?.bytes ?? [])],
    // gpa u64 | assigned | pagesize bit0 + region bit1 | immutable | rsvd | asid u32
    [0x00, 0x00, 0x40, 0, 0, 0, 0, 0, 1, 0b10, 1, 0, 0xff, 0x03, 0, 0],
  );
  assert.equal(head.entry?.regionStatus, true);
  const tail = p.rmpread(0x203000);
  assert.equal(tail.kind === 'eax' && tail.entry?.regionStatus, false);
  assert.equal(tail.kind === 'eax' && tail.entry?.asid, 2);
});

test('host instructions never throw on hostile input', () => {
  const p = platform();
  const ctx = makeGuestContext({ asid: 1 });
  for (const spa of [Number.NaN, -1, 1.5, Number.POSITIVE_INFINITY, 2 ** 60]) {
    assert.equal(p.rmpupdate(spa, priv(0)), S.FAIL_INPUT);
    assert.equal(p.psmash(spa), S.FAIL_INPUT);
  }
  assert.equal(p.rmpupdate(0, { ...priv(0), gpa: Number.NaN }), S.FAIL_INPUT);
  assert.equal(p.rmpupdate(0, null as unknown as RmpUpdateState), S.FAIL_INPUT);
  assert.deepEqual(p.pvalidate(ctx, Number.NaN, 0, 1), { kind: 'eax', eax: S.FAIL_INPUT, cf: 0 });
});
