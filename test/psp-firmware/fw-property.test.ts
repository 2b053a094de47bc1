/**
 * Property test over random sequences of host RMP instructions and firmware commands (valid and
 * garbage buffers): after every step
 *  - the status is in the status table and in the command's row of the command table;
 *  - no assigned page (guest, Context, Firmware ...) is host-writable through a 4K mapping, and no
 *    page of a 2 MB region holding an assigned entry through a 2 MB mapping;
 *  - no host instruction (RMPUPDATE, PSMASH) changes a page governed by an Immutable entry (Firmware,
 *    Context, Pre-Guest, HV-Fixed ...): only the AMD-SP may;
 *  - the RMP's per-ASID and subpage counters equal a recount (firmware writes keep them);
 *  - the firmware's guest contexts are exactly the Context pages of the RMP;
 *  - an ASID in use belongs to exactly one active guest.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  AccessKind,
  COMMANDS_BY_ID,
  entryGfn,
  isSevStatus,
  MappingSize,
  PageState,
  SevStatus,
  sevStatusName,
} from '../../psp-firmware/index.js';
import { initSystem, MiB, type Sys } from './fw-fixture.js';

const MEM = 8 * MiB;
/** Pages the sequences play with: 6 4K pages and the 2 MB region at 4 MiB (few, so they collide). */
const PAGES = [...Array(6).keys()].map((i) => 0x10_0000 + i * 0x1000);
const REGION = 0x40_0000;
const ADDRS = [...PAGES, REGION, REGION + 0x1000];
/** PFNs whose host protection is checked: the pages above and the whole 2 MB region. */
const CHECKED = [...PAGES.map((a) => a / 0x1000), ...[...Array(512).keys()].map((i) => REGION / 0x1000 + i)];

type Op =
  | {
      k: 'rmpupdate';
      pa: number;
      assigned: boolean;
      asid: number;
      immutable: boolean;
      big: boolean;
      gpa: number;
    }
  | { k: 'firmware-page'; pa: number }
  | { k: 'pre-guest'; pa: number; asid: number; big: boolean }
  | { k: 'shared'; pa: number; big: boolean }
  | { k: 'kvm-start'; pa: number; asid: number }
  | { k: 'kvm-update'; guest: number; pa: number; type: number }
  | { k: 'kvm-finish'; guest: number }
  | { k: 'psmash' }
  | { k: 'wbinvd' }
  | { k: 'fw'; name: string; run: (s: Sys) => number; id: number };

const pa = fc.constantFrom(...ADDRS);
const asid = fc.integer({ min: 0, max: 3 });
const guestAsid = fc.integer({ min: 1, max: 3 });
const policy = fc.constantFrom(0x30000n, 0x80000n | 0x30000n, 0x10000n, 0x1_0003_0000n);

function fwOp(id: number, name: string, run: (s: Sys) => number): Op {
  return { k: 'fw', id, name, run };
}

const host = (arb: fc.Arbitrary<Op>) => ({ arbitrary: arb, weight: 3 });
const opArb: fc.Arbitrary<Op> = fc.oneof(
  host(pa.map((a): Op => ({ k: 'firmware-page', pa: a }))),
  host(
    fc.tuple(pa, guestAsid, fc.boolean()).map(([a, n, big]): Op => ({ k: 'pre-guest', pa: a, asid: n, big })),
  ),
  host(fc.tuple(pa, fc.boolean()).map(([a, big]): Op => ({ k: 'shared', pa: a, big }))),
  host(fc.tuple(pa, guestAsid).map(([a, n]): Op => ({ k: 'kvm-start', pa: a, asid: n }))),
  host(
    fc
      .tuple(fc.nat(3), pa, fc.integer({ min: 1, max: 6 }))
      .map(([g, a, t]): Op => ({ k: 'kvm-update', guest: g, pa: a, type: t })),
  ),
  host(fc.nat(3).map((g): Op => ({ k: 'kvm-finish', guest: g }))),
  fc.record({
    k: fc.constant('rmpupdate' as const),
    pa,
    assigned: fc.boolean(),
    asid,
    immutable: fc.boolean(),
    big: fc.boolean(),
    gpa: fc.constantFrom(0, 0x1000, 0x20_0000),
  }),
  fc.constant({ k: 'psmash' as const }),
  fc.constant({ k: 'wbinvd' as const }),
  pa.map((a) => fwOp(0x093, 'GCTX_CREATE', (s) => s.fw.gctxCreate(a))),
  fc
    .tuple(pa, policy)
    .map(([a, p]) => fwOp(0x0a0, 'LAUNCH_START', (s) => s.fw.launchStart({ gctxPaddr: a, policy: p }))),
  fc.tuple(pa, asid).map(([a, n]) => fwOp(0x091, 'ACTIVATE', (s) => s.fw.activate(a, n))),
  fc
    .tuple(
      pa,
      pa,
      fc.integer({ min: 0, max: 7 }),
      fc.constantFrom<0 | 1>(0, 1),
      fc.integer({ min: 0, max: 0x1f }),
    )
    .map(([g, a, t, z, v]) =>
      fwOp(0x0a1, 'LAUNCH_UPDATE', (s) =>
        s.fw.launchUpdate({ gctxPaddr: g, address: a, pageType: t, pageSize: z, vmpl1Perms: v }),
      ),
    ),
  pa.map((a) => fwOp(0x0a2, 'LAUNCH_FINISH', (s) => s.fw.launchFinish({ gctxPaddr: a }))),
  pa.map((a) => fwOp(0x090, 'DECOMMISSION', (s) => s.fw.decommission(a))),
  fc
    .tuple(pa, fc.constantFrom<0 | 1>(0, 1))
    .map(([a, z]) => fwOp(0x0c7, 'PAGE_RECLAIM', (s) => s.fw.pageReclaim(a, z))),
  fc.constant(fwOp(0x0c8, 'PAGE_UNSMASH', (s) => s.fw.pageUnsmash(REGION))),
  fc.tuple(pa, pa, pa).map(([g, a, b]) => fwOp(0x0b0, 'DBG_DECRYPT', (s) => s.fw.dbgDecrypt(g, a, b))),
  fc.tuple(pa, pa, pa).map(([g, a, b]) => fwOp(0x0b1, 'DBG_ENCRYPT', (s) => s.fw.dbgEncrypt(g, a, b))),
  fc.tuple(pa, pa).map(([g, a]) => fwOp(0x092, 'GUEST_STATUS', (s) => s.fw.guestStatus(g, a).status)),
  pa.map((a) => fwOp(0x083, 'PLATFORM_STATUS', (s) => s.fw.platformStatus(a).status)),
  fc.tuple(pa, pa, pa).map(([g, q, r]) => fwOp(0x094, 'GUEST_REQUEST', (s) => s.fw.guestRequest(g, q, r))),
  fc.constant(fwOp(0x084, 'DF_FLUSH', (s) => s.fw.dfFlush())),
  fc.constant(fwOp(0x082, 'SHUTDOWN', (s) => s.fw.shutdown())),
  fc.boolean().map((i) => fwOp(0x086, 'SHUTDOWN_EX', (s) => s.fw.shutdownEx({ iommuSnpShutdown: i }))),
  fc.boolean().map((i) => fwOp(0x085, 'INIT_EX', (s) => s.fw.snpInitEx({ initRmp: i }))),
  fc.boolean().map((m) => fwOp(0x0c9, 'CONFIG', (s) => s.fw.config({ maskChipKey: m }))),
  // any id with random bytes: the status must still come from the table
  fc
    .tuple(fc.integer({ min: 0x080, max: 0x0cf }), fc.uint8Array({ minLength: 64, maxLength: 64 }))
    .map(([id, bytes]) => fwOp(id, `raw 0x${id.toString(16)}`, (s) => s.fw.command(id, bytes))),
);

function apply(s: Sys, op: Op): string {
  switch (op.k) {
    case 'rmpupdate': {
      const big = op.big && op.pa === REGION;
      s.platform.rmpupdate(op.pa, {
        assigned: op.assigned,
        asid: op.assigned ? op.asid : 0,
        immutable: op.immutable,
        gpa: op.gpa,
        pageSize: big ? 1 : 0,
      });
      return 'rmpupdate';
    }
    case 'firmware-page':
      return `firmware page: ${s.platform.rmpupdate(op.pa, { assigned: true, asid: 0, immutable: true, gpa: 0, pageSize: 0 })}`;
    case 'pre-guest': {
      const big = op.big && op.pa === REGION;
      const gpa = big ? 0x20_0000 : op.pa - 0x10_0000;
      return `pre-guest: ${s.platform.rmpupdate(op.pa, { assigned: true, asid: op.asid, immutable: true, gpa, pageSize: big ? 1 : 0 })}`;
    }
    case 'shared': {
      const big = op.big && op.pa === REGION;
      return `shared: ${s.platform.rmpupdate(op.pa, { assigned: false, asid: 0, immutable: false, gpa: 0, pageSize: big ? 1 : 0 })}`;
    }
    case 'psmash':
      // Any 2 MB entry, assigned or not: the CPU must refuse what it cannot expand safely.
      return `psmash: ${s.platform.psmash(REGION)}`;
    case 'wbinvd':
      s.fw.noteWbinvd();
      return 'wbinvd';
    case 'kvm-start': {
      // KVM's snp_launch_start: a firmware page, GCTX_CREATE, LAUNCH_START, ACTIVATE
      s.platform.rmpupdate(op.pa, { assigned: true, asid: 0, immutable: true, gpa: 0, pageSize: 0 });
      const steps = [
        checkStatus(0x093, 'GCTX_CREATE', s.fw.gctxCreate(op.pa)),
        checkStatus(0x0a0, 'LAUNCH_START', s.fw.launchStart({ gctxPaddr: op.pa, policy: 0x30000n })),
        checkStatus(0x091, 'ACTIVATE', s.fw.activate(op.pa, op.asid)),
      ];
      return steps.join('; ');
    }
    case 'kvm-update': {
      // KVM's snp_launch_update for one of the existing guests: the page made Pre-Guest, then LAUNCH_UPDATE
      const g = guestAt(s, op.guest);
      if (!g) return 'kvm-update: no guest';
      const big = op.pa === REGION && op.type !== 2 && op.type !== 5 && op.type !== 6;
      s.platform.rmpupdate(op.pa, {
        assigned: true,
        asid: g.asid,
        immutable: true,
        gpa: big ? 0x20_0000 : 0x1000,
        pageSize: big ? 1 : 0,
      });
      return checkStatus(
        0x0a1,
        'LAUNCH_UPDATE',
        s.fw.launchUpdate({ gctxPaddr: g.pa, address: op.pa, pageType: op.type, pageSize: big ? 1 : 0 }),
      );
    }
    case 'kvm-finish': {
      const g = guestAt(s, op.guest);
      if (!g) return 'kvm-finish: no guest';
      return checkStatus(0x0a2, 'LAUNCH_FINISH', s.fw.launchFinish({ gctxPaddr: g.pa }));
    }
    case 'fw':
      return checkStatus(op.id, op.name, op.run(s));
  }
}

/** The k-th guest context (modulo their number) with its gctx address and ASID. */
function guestAt(s: Sys, k: number): { pa: number; asid: number } | undefined {
  const entries = [...s.fw.contexts.entries()];
  if (entries.length === 0) return undefined;
  const [pfn, g] = entries[k % entries.length]!;
  return { pa: pfn * 0x1000, asid: g.asid };
}

/** Ops that are host RMP instructions only (no firmware command). */
const HOST_ONLY = new Set<Op['k']>(['rmpupdate', 'firmware-page', 'pre-guest', 'shared', 'psmash']);

/**
 * The state that governs page `pfn` (its 2 MB-aligned entry when that is an assigned 2 MB entry, else
 * its own): owner bits, this page's GFN, ASID/VMSA/Validated/lock, VMPL masks, q1 — or null when that
 * entry is not Immutable. Page size is representation (PSMASH changes it), not state.
 */
function immutableState(s: Sys, pfn: number): string | null {
  const { rmp } = s.platform;
  const at = rmp.authoritativePfn(pfn);
  const w0 = rmp.word(at, 0);
  if ((w0 & 4) === 0) return null;
  const w1 = rmp.word(at, 1);
  return [w0 & 5, entryGfn(w0, w1) + (pfn - at), w1 & ~0x7ffff, rmp.word(at, 2), rmp.word(at, 3)].join(':');
}

/** `apply`, checking that a host-only op leaves every Immutable-governed page as it was. */
function applyChecked(s: Sys, op: Op, trace: string[]): string {
  if (!HOST_ONLY.has(op.k)) return apply(s, op);
  const before = CHECKED.map((pfn) => immutableState(s, pfn));
  const t = apply(s, op);
  CHECKED.forEach((pfn, i) => {
    const was = before[i];
    if (was === null || was === undefined) return;
    assert.equal(
      immutableState(s, pfn),
      was,
      `Immutable pfn 0x${pfn.toString(16)} changed by "${t}" after:\n  ${trace.join('\n  ')}`,
    );
  });
  return t;
}

/** Status in the table and in the command's row; returns `NAME -> STATUS`. */
function checkStatus(id: number, name: string, st: number): string {
  assert.ok(isSevStatus(st), `${name}: status 0x${st.toString(16)} is not in the table`);
  const row = COMMANDS_BY_ID.get(id);
  if (!row) assert.equal(st, SevStatus.INVALID_COMMAND, name);
  else assert.ok(row.statuses.includes(st as never), `${name} returned ${sevStatusName(st)}, not in its row`);
  return `${name} -> ${sevStatusName(st)}`;
}

function checkInvariants(s: Sys, trace: string[]): void {
  const { rmp } = s.platform;
  const where = () => trace.join('\n  ');
  for (const pfn of CHECKED) {
    const head = pfn - (pfn % 512);
    const assigned = (rmp.word(pfn, 0) & 1) !== 0;
    const head2M = (rmp.word(head, 0) & 3) === 3;
    const w4k = s.platform.hostAccess(pfn * 0x1000, AccessKind.WRITE, MappingSize.SIZE_4K);
    if (assigned || head2M) {
      assert.notEqual(w4k, 0, `assigned pfn 0x${pfn.toString(16)} is host-writable after:\n  ${where()}`);
    }
  }
  for (const head of [0, REGION / 0x1000]) {
    let regionAssigned = false;
    for (let i = head; i < head + 512 && !regionAssigned; i++) regionAssigned = (rmp.word(i, 0) & 1) !== 0;
    const w2m = s.platform.hostAccess(head * 0x1000, AccessKind.WRITE, MappingSize.SIZE_2M);
    assert.equal(
      w2m !== 0,
      regionAssigned,
      `2 MB region 0x${head.toString(16)}: assigned ${regionAssigned}, host 2 MB write ${w2m}:\n  ${where()}`,
    );
  }
  assert.deepEqual(rmp.verifyCounters(), [], where());
  const contextPages = new Set<number>();
  for (const a of ADDRS) if (rmp.pageState(a / 0x1000) === PageState.CONTEXT) contextPages.add(a / 0x1000);
  assert.deepEqual(new Set(s.fw.contexts.keys()), contextPages, `contexts vs Context pages:\n  ${where()}`);
  const owners = new Map<number, number>();
  for (const g of s.fw.contexts.values()) {
    if (g.activation === 'active') owners.set(g.asid, (owners.get(g.asid) ?? 0) + 1);
  }
  for (let a = 1; a <= 3; a++) {
    if (s.fw.asidState(a) === 'in-use') assert.equal(owners.get(a), 1, `ASID ${a} in use:\n  ${where()}`);
  }
}

describe('firmware command sequences (property)', () => {
  const reached = new Set<string>();
  it('keep statuses in the table, assigned pages host-protected, counters exact, contexts consistent', () => {
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 10, maxLength: 80, size: 'max' }), (ops) => {
        const s = initSystem('genoa', MEM);
        const trace: string[] = [];
        for (const op of ops) {
          const t = applyChecked(s, op, trace);
          trace.push(t);
          for (const part of t.split('; ')) reached.add(part);
          checkInvariants(s, trace);
        }
      }),
      { numRuns: 120 },
    );
    // The sequences must get somewhere: guests launched, pages measured and reclaimed.
    for (const t of [
      'LAUNCH_START -> SUCCESS',
      'ACTIVATE -> SUCCESS',
      'LAUNCH_UPDATE -> SUCCESS',
      'LAUNCH_FINISH -> SUCCESS',
      'DECOMMISSION -> SUCCESS',
      'PAGE_RECLAIM -> SUCCESS',
    ]) {
      assert.ok(reached.has(t), `no sequence reached ${t}`);
    }
  });

  it('a scripted KVM launch keeps the invariants too (the sequences above rarely get that far)', () => {
    const s = initSystem('genoa', MEM);
    const trace = ['scripted'];
    s.platform.rmpupdate(PAGES[0]!, { assigned: true, asid: 0, immutable: true, gpa: 0, pageSize: 0 });
    assert.equal(s.fw.gctxCreate(PAGES[0]!), 0);
    assert.equal(s.fw.launchStart({ gctxPaddr: PAGES[0]!, policy: 0x30000n }), 0);
    assert.equal(s.fw.activate(PAGES[0]!, 1), 0);
    s.platform.rmpupdate(REGION, { assigned: true, asid: 1, immutable: true, gpa: 0x20_0000, pageSize: 1 });
    assert.equal(s.fw.launchUpdate({ gctxPaddr: PAGES[0]!, address: REGION, pageType: 3, pageSize: 1 }), 0);
    checkInvariants(s, trace);
    assert.equal(s.fw.launchFinish({ gctxPaddr: PAGES[0]! }), 0);
    assert.equal(s.fw.decommission(PAGES[0]!), 0);
    checkInvariants(s, trace);
  });
});
