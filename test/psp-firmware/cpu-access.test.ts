import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AccessKind,
  decodeAccessResult,
  describeAccessResult,
  type GuestContext,
  hostFaultCode,
  MappingSize,
  makeGuestContext,
  makeRmpEntry,
  PfErr,
  Platform,
  SevFeature,
  VC_PAGE_NOT_VALIDATED,
} from '../../psp-firmware/index.js';

const MiB = 2 ** 20;
const OFF = 4 * MiB;
const ASID = 1;
const K = AccessKind;
const HOST_PF_W = PfErr.RMP + PfErr.PRESENT + PfErr.WRITE;

function ctx(over: Partial<Parameters<typeof makeGuestContext>[0]> = {}): GuestContext {
  return makeGuestContext({ asid: ASID, offset: OFF, ...over });
}

/** GPA 0x1000: Guest-Valid 4K; 0x2000: Guest-Invalid; 0x3000: Pre-Guest; 0x200000: Guest-Valid 2M. */
function setup(): Platform {
  const p = new Platform({ memoryBytes: 16 * MiB, coveredBytes: 8 * MiB });
  const up = (gpa: number, pageSize: 0 | 1, immutable = false) =>
    assert.equal(p.rmpupdate(OFF + gpa, { gpa, assigned: true, pageSize, immutable, asid: ASID }), 0);
  up(0x1000, 0);
  up(0x2000, 0);
  up(0x3000, 0, true);
  up(0x200000, 1);
  assert.equal(p.pvalidate(ctx(), 0x1000, 0, 1).kind, 'eax');
  assert.equal(p.pvalidate(ctx(), 0x200000, 1, 1).kind, 'eax');
  return p;
}

test('host accesses (Table 15-39 row 1): writes and page-table accesses need Hypervisor-Owned', () => {
  const p = setup();
  const guest4k = OFF + 0x1000;
  assert.equal(p.hostAccess(guest4k, K.READ), 0, 'host reads are not RMP-checked');
  assert.equal(p.hostAccess(guest4k, K.EXECUTE), 0);
  assert.equal(p.hostAccess(guest4k, K.WRITE), HOST_PF_W);
  assert.equal(p.hostAccess(guest4k, K.PAGE_TABLE_READ), PfErr.RMP + PfErr.PRESENT);
  assert.equal(p.hostAccess(guest4k, K.PAGE_TABLE_WRITE), HOST_PF_W);
  assert.equal(p.hostAccess(guest4k, K.SHADOW_STACK), HOST_PF_W, 'shadow-stack accesses write');
  assert.equal(p.hostAccess(OFF + 0x5000, K.WRITE), 0, 'shared page');
  assert.equal(p.hostAccess(OFF + 0x3000, K.WRITE), HOST_PF_W, 'Pre-Guest (immutable) page');
  assert.equal(p.hostAccess(12 * MiB, K.WRITE), 0, 'not RMP-covered = hypervisor-owned');
  // Tail of an assigned 2 MB page (tail entry itself is zero): the 2 MB entry governs.
  assert.equal(p.hostAccess(OFF + 0x201000, K.WRITE), HOST_PF_W);
  // 2 MB / 1 GB host mappings: every 4K entry of the 2 MB region must be unassigned.
  assert.equal(p.hostAccess(OFF + 0x5000, K.WRITE, MappingSize.SIZE_2M), HOST_PF_W);
  assert.equal(p.hostAccess(OFF + 0x5000, K.WRITE, MappingSize.SIZE_1G), HOST_PF_W);
  assert.equal(p.hostAccess(OFF + 0x400000, K.WRITE, MappingSize.SIZE_2M), 0);
  // Firmware pages written by the AMD-SP fail too.
  p.firmwareWrite(0x10, makeRmpEntry({ assigned: true, immutable: true, lock: true }));
  assert.equal(p.hostAccess(0x10000, K.WRITE), HOST_PF_W);
  assert.equal(p.hostAccess(0x11000, K.WRITE, MappingSize.SIZE_2M), HOST_PF_W);
  assert.equal(decodeAccessResult(HOST_PF_W).kind, 'pf');
  assert.equal(describeAccessResult(HOST_PF_W), '#PF error code 0x80000003 [P W RMP]');
  assert.throws(() => p.hostAccess(-4096, K.WRITE), /non-negative/);
  assert.throws(() => p.hostAccess(0, 9 as AccessKind), /kind must be/);
});

test('guest not SNP-active (row 2): data writes and page-table accesses need Hypervisor-Owned', () => {
  const p = setup();
  const sev = ctx({ snpActive: false });
  const npfW = PfErr.RMP + PfErr.GUEST_FINAL + PfErr.PRESENT + PfErr.WRITE;
  assert.equal(p.guestAccess(sev, 0x1000, K.READ, 1), 0);
  assert.equal(p.guestAccess(sev, 0x1000, K.WRITE, 1), npfW);
  assert.equal(
    p.guestAccess(sev, 0x1000, K.PAGE_TABLE_READ, 0),
    PfErr.RMP + PfErr.GUEST_PAGE + PfErr.PRESENT,
  );
  assert.equal(p.guestAccess(sev, 0x5000, K.WRITE, 0), 0);
  const sev2M: GuestContext = { ...sev, nptPageSize: () => MappingSize.SIZE_2M };
  assert.equal(
    p.guestAccess(sev2M, 0x5000, K.WRITE, 0),
    npfW,
    '2 MB NPT mapping over a region with private pages',
  );
});

test('SNP-active guest (rows 3-5): check order RMP-Covered, Guest-Owned, Reverse-Map, Mutable, Page-Size, Validated, VMPL', () => {
  const p = setup();
  const NPF = PfErr.RMP + PfErr.GUEST_FINAL + PfErr.ENC + PfErr.PRESENT;
  const c = ctx();
  const cases: [string, GuestContext, number, AccessKind, number, number][] = [
    ['private read of a Guest-Valid page', c, 0x1000, K.READ, 1, 0],
    ['private write', c, 0x1000, K.WRITE, 1, 0],
    ['fetch (always private, even with C=0)', c, 0x1000, K.EXECUTE, 0, 0],
    ['page-table read', c, 0x1000, K.PAGE_TABLE_READ, 0, 0],
    ['private read in a 2M page', { ...c, nptPageSize: () => MappingSize.SIZE_2M }, 0x2ff000, K.READ, 1, 0],
    ['shared read (C=0) of anything', c, 0x1000, K.READ, 0, 0],
    ['shared write (C=0) of a shared page', c, 0x5000, K.WRITE, 0, 0],
    [
      'shared write (C=0) of a private page',
      c,
      0x1000,
      K.WRITE,
      0,
      PfErr.RMP + PfErr.GUEST_FINAL + PfErr.PRESENT + PfErr.WRITE,
    ],
    ['not RMP-covered', c, 4 * MiB, K.READ, 1, NPF],
    ['not assigned', c, 0x5000, K.READ, 1, NPF],
    ['other ASID', ctx({ asid: 2 }), 0x1000, K.READ, 1, NPF],
    ['reverse map mismatch', ctx({ offset: OFF + 0x1000 }), 0x1000, K.READ, 1, NPF],
    ['immutable (Pre-Guest), even though unvalidated', c, 0x3000, K.READ, 1, NPF],
    ['NPT 2M over a 4K RMP entry', { ...c, nptPageSize: () => MappingSize.SIZE_2M }, 0x1000, K.READ, 1, NPF],
    ['NPT 4K over a 2M RMP entry', c, 0x201000, K.READ, 1, NPF],
    [
      'page-table walk to an unassigned page',
      c,
      0x5000,
      K.PAGE_TABLE_READ,
      0,
      NPF - PfErr.GUEST_FINAL + PfErr.GUEST_PAGE,
    ],
    [
      'fetch at CPL3 of an unassigned page',
      ctx({ cpl: 3 }),
      0x5000,
      K.EXECUTE,
      0,
      NPF + PfErr.USER + PfErr.FETCH,
    ],
    ['Guest-Invalid: #VC 0x404', c, 0x2000, K.READ, 1, VC_PAGE_NOT_VALIDATED],
    ['VMPL1 without permissions', ctx({ vmpl: 1 }), 0x1000, K.READ, 1, NPF + PfErr.VMPL],
    ['VMPL1 write without permissions', ctx({ vmpl: 1 }), 0x1000, K.WRITE, 1, NPF + PfErr.VMPL + PfErr.WRITE],
  ];
  for (const [name, cx, gpa, kind, cbit, expected] of cases) {
    assert.equal(
      p.guestAccess(cx, gpa, kind, cbit),
      expected,
      `${name}: ${describeAccessResult(p.guestAccess(cx, gpa, kind, cbit))}`,
    );
  }
  const noNpt: GuestContext = { ...c, translate: () => -1 };
  assert.equal(
    p.guestAccess(noNpt, 0x1000, K.WRITE, 1),
    PfErr.GUEST_FINAL + PfErr.WRITE,
    'NPT miss: no RMP bit',
  );
});

test('VMPL permission masks: R, W (write needs read), X_USER/X_SUPER by CPL, SSS with VmplSSS', () => {
  const p = setup();
  const gpa = 0x1000;
  const pfn = (OFF + gpa) / 4096;
  const NPF_VMPL = PfErr.RMP + PfErr.GUEST_FINAL + PfErr.ENC + PfErr.PRESENT + PfErr.VMPL;
  const withVmpl1 = (mask: number) => {
    const e = p.rmp.entry(pfn)!;
    p.firmwareWrite(pfn, { ...e, vmplPerms: [0x1f, mask, 0, 0] });
  };
  const v1 = ctx({ vmpl: 1 });
  const v1user = ctx({ vmpl: 1, cpl: 3 });
  const v1sss = ctx({ vmpl: 1, sevFeatures: SevFeature.SNP_ACTIVE | SevFeature.VMPL_SSS });
  const expectations: [number, GuestContext, AccessKind, number][] = [
    [0x01, v1, K.READ, 0],
    [0x01, v1, K.WRITE, NPF_VMPL + PfErr.WRITE],
    [0x03, v1, K.WRITE, 0],
    [0x02, v1, K.WRITE, NPF_VMPL + PfErr.WRITE], // write-without-read is illegal
    [0x02, v1, K.READ, NPF_VMPL],
    [0x08, v1, K.EXECUTE, 0],
    [0x08, v1user, K.EXECUTE, NPF_VMPL + PfErr.USER + PfErr.FETCH],
    [0x04, v1user, K.EXECUTE, 0],
    [0x04, v1, K.EXECUTE, NPF_VMPL + PfErr.FETCH],
    [0x0e, v1, K.EXECUTE, 0], // X_SUPER with write-without-read: fetches are not data accesses
    [0x01, v1, K.PAGE_TABLE_READ, 0],
    [0x01, v1, K.PAGE_TABLE_WRITE, NPF_VMPL + PfErr.WRITE - PfErr.GUEST_FINAL + PfErr.GUEST_PAGE],
    [0x10, v1sss, K.SHADOW_STACK, 0],
    [0x03, v1sss, K.SHADOW_STACK, NPF_VMPL],
    [0x13, v1sss, K.READ, 0],
    [0x10, v1sss, K.READ, NPF_VMPL + PfErr.SSS], // SSS bit copied into EXITINFO1 when VmplSSS is on
    [0x03, v1, K.SHADOW_STACK, 0], // without VmplSSS, an ordinary read/write
  ];
  for (const [mask, cx, kind, expected] of expectations) {
    withVmpl1(mask);
    assert.equal(
      p.guestAccess(cx, gpa, kind, 1),
      expected,
      `mask 0x${mask.toString(16)} kind ${kind} cpl ${cx.cpl}`,
    );
  }
});

test('property: the host can never write a page whose entry (or any 4K entry under a 2 MB mapping) is assigned', () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(fc.integer({ min: 0, max: 2047 }), fc.boolean(), fc.integer({ min: 0, max: 3 })), {
        maxLength: 40,
      }),
      fc.integer({ min: 0, max: 2047 }),
      fc.constantFrom(MappingSize.SIZE_4K, MappingSize.SIZE_2M, MappingSize.SIZE_1G),
      (writes, target, mapping) => {
        const p = new Platform({ memoryBytes: 8 * MiB });
        for (const [pfn, is2M, asid] of writes) {
          const page = is2M ? pfn - (pfn % 512) : pfn;
          p.rmpupdate(page * 4096, {
            gpa: page * 4096,
            assigned: asid !== 0,
            pageSize: is2M ? 1 : 0,
            immutable: false,
            asid,
          });
        }
        const head = target - (target % 512);
        const authoritative = (pfn: number) => {
          const h = p.rmp.entry(pfn - (pfn % 512))!;
          return h.assigned && h.pageSize === 1 ? true : p.rmp.entry(pfn)!.assigned;
        };
        let mustFault = authoritative(target);
        if (mapping !== MappingSize.SIZE_4K) {
          for (let i = 0; i < 512; i++) if (p.rmp.entry(head + i)!.assigned) mustFault = true;
        }
        const r = p.hostAccess(target * 4096, K.WRITE, mapping);
        assert.equal(r !== 0, mustFault);
        if (r !== 0) assert.equal(r, HOST_PF_W);
      },
    ),
    { numRuns: 300 },
  );
});

test('batch API equals single checks, into a caller-provided array', () => {
  const p = setup();
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max: (8 * MiB) / 4096 }), { minLength: 1, maxLength: 64 }),
      fc.constantFrom(K.READ, K.WRITE, K.EXECUTE, K.PAGE_TABLE_READ),
      fc.constantFrom(0, 1),
      (pages, kind, cbit) => {
        const addrs = Float64Array.from(pages, (g) => g * 4096);
        const out = new Float64Array(addrs.length + 3);
        const hostFaults = p.hostAccessBatch(
          Float64Array.from(addrs, (a) => a + OFF),
          addrs.length,
          kind,
          MappingSize.SIZE_4K,
          out,
        );
        let n = 0;
        addrs.forEach((a, i) => {
          const one = p.hostAccess(a + OFF, kind, MappingSize.SIZE_4K);
          assert.equal(out[i], one);
          if (one !== 0) n++;
        });
        assert.equal(hostFaults, n);
        const c = ctx();
        const guestFaults = p.guestAccessBatch(c, addrs, addrs.length, kind, cbit, out);
        n = 0;
        addrs.forEach((a, i) => {
          const one = p.guestAccess(c, a, kind, cbit);
          assert.equal(out[i], one);
          if (one !== 0) n++;
        });
        assert.equal(guestFaults, n);
      },
    ),
  );
  assert.throws(() => p.hostAccessBatch(new Float64Array(4), 5, K.WRITE, 0, new Float64Array(8)), /exceeds/);
});

test('decodeAccessResult names the EXITINFO1 bits', () => {
  const npf = PfErr.RMP + PfErr.GUEST_FINAL + PfErr.ENC + PfErr.VMPL + PfErr.PRESENT + PfErr.WRITE;
  assert.deepEqual(decodeAccessResult(npf), {
    kind: 'npf',
    exitInfo1: 0x1580000003n,
    flags: ['P', 'W', 'RMP', 'GUEST_FINAL', 'ENC', 'VMPL'],
  });
  assert.deepEqual(decodeAccessResult(0x404), { kind: 'vc', errorCode: 0x404 });
  assert.equal(describeAccessResult(0), 'allowed');
  assert.throws(() => decodeAccessResult(-1), /not an access-check result/);
});

test('hostAccessBatchPfn: one result bit per pfn, equal to single checks, flat and chunked tables', () => {
  const TiB = 2 ** 40;
  for (const coveredBytes of [16 * MiB, 2 * TiB]) {
    const p = new Platform({ memoryBytes: coveredBytes + 8 * MiB, coveredBytes });
    assert.equal(p.rmp.chunks.length, coveredBytes > TiB ? 2048 : 1);
    const pages = coveredBytes / 4096;
    // Assigned 4K pages, a 2 MB page and a Firmware page spread over several chunks.
    for (const pfn of [1, 513, pages - 1, 2 ** 18 + 7, 5 * 2 ** 18 + 1000].filter((x) => x < pages)) {
      p.rmpupdate(pfn * 4096, { gpa: 0, assigned: true, pageSize: 0, immutable: false, asid: 1 });
    }
    p.rmpupdate(2048 * 4096, { gpa: 0, assigned: true, pageSize: 1, immutable: false, asid: 1 });
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: pages + 600 }), { minLength: 1, maxLength: 80 }),
        fc.constantFrom(K.READ, K.WRITE, K.PAGE_TABLE_READ),
        fc.constantFrom(MappingSize.SIZE_4K, MappingSize.SIZE_2M),
        (list, kind, mapping) => {
          const pfns = Uint32Array.from(list);
          const bits = new Uint32Array(Math.ceil(list.length / 32) + 1).fill(0xdeadbeef);
          const faults = p.hostAccessBatchPfn(pfns, list.length, kind, mapping, bits);
          let n = 0;
          list.forEach((pfn, i) => {
            const one = p.hostAccess(pfn * 4096, kind, mapping);
            const bit = (bits[i >>> 5]! >>> (i & 31)) & 1;
            assert.equal(bit, one === 0 ? 0 : 1, `pfn ${pfn}`);
            if (one !== 0) {
              assert.equal(one, hostFaultCode(kind));
              n++;
            }
          });
          assert.equal(faults, n);
        },
      ),
      { numRuns: 50 },
    );
  }
  const p = new Platform({ memoryBytes: 4 * MiB });
  assert.throws(
    () => p.hostAccessBatchPfn(new Uint32Array(40), 40, K.WRITE, 0, new Uint32Array(1)),
    /outBits/,
  );
  assert.equal(hostFaultCode(K.READ), 0);
  assert.throws(() => hostFaultCode(7 as AccessKind), /kind must be/);
});
