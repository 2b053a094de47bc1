/**
 * Host RMP instructions: RMPUPDATE, PSMASH, RMPREAD ([APM 15.36.5-11]; `firmware-rmp.md` §B).
 * They return the EAX status (RMPREAD also its output), never throw for bad input.
 */
import { entryGfn, gfnWords } from '../rmp/entry.js';
import {
  ASID_MASK,
  PAGE_SIZE,
  PAGE_SIZE_2M,
  PAGES_PER_2M,
  W0_ASSIGNED,
  W0_IMMUTABLE,
  W0_PAGESIZE,
  W0_SUBPAGE_MASK,
  W1_ASID_SHIFT,
  W1_GFN_HI_MASK,
} from '../rmp/layout.js';
import { RmpStatus } from './codes.js';
import type { Machine } from './machine.js';

/** RMPUPDATE's new state (Linux `struct rmp_state`, MS `rmp_entry`). */
export interface RmpUpdateState {
  /** GPA (full address; the RMP keeps bits 50:12 masked with the system PA width). */
  readonly gpa: number;
  readonly assigned: boolean;
  /** 0 = 4 KB, 1 = 2 MB. */
  readonly pageSize: 0 | 1;
  readonly immutable: boolean;
  readonly asid: number;
}

/** Size of `struct rmp_state`: u64 gpa, u8 assigned, u8 pagesize, u8 immutable, u8 rsvd, u32 asid. [LX] */
export const RMP_STATE_SIZE = 16;

/**
 * Decodes a 16-byte `struct rmp_state` as RCX points to it. Returns undefined when a byte field is not
 * 0/1, the reserved byte is non-zero or the GPA exceeds 2^52 (the instruction then returns FAIL_INPUT).
 */
export function decodeRmpState(bytes: Uint8Array): RmpUpdateState | undefined {
  if (bytes.length !== RMP_STATE_SIZE) return undefined;
  const dv = new DataView(bytes.buffer, bytes.byteOffset, RMP_STATE_SIZE);
  const gpa = dv.getBigUint64(0, true);
  const assigned = dv.getUint8(8);
  const pageSize = dv.getUint8(9);
  const immutable = dv.getUint8(10);
  if (assigned > 1 || pageSize > 1 || immutable > 1 || dv.getUint8(11) !== 0 || gpa >= 1n << 52n)
    return undefined;
  return {
    gpa: Number(gpa),
    assigned: assigned === 1,
    pageSize: pageSize as 0 | 1,
    immutable: immutable === 1,
    asid: dv.getUint32(12, true),
  };
}

/** Encodes a `struct rmp_state` (16 bytes). */
export function encodeRmpState(state: RmpUpdateState): Uint8Array {
  const out = new Uint8Array(RMP_STATE_SIZE);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BigInt(state.gpa), true);
  dv.setUint8(8, state.assigned ? 1 : 0);
  dv.setUint8(9, state.pageSize);
  dv.setUint8(10, state.immutable ? 1 : 0);
  dv.setUint32(12, state.asid, true);
  return out;
}

/** 2^(min(physAddrBits, 51) - 12): GFNs are GPA[50:12] & the system PA mask (§A.2). */
export function gfnModulusOf(physAddrBits: number): number {
  return 2 ** (Math.min(physAddrBits, 51) - 12);
}

function isUint(v: unknown, max: number): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;
}

/** Validates the new state; returns FAIL_INPUT or SUCCESS. */
function checkState(m: Machine, s: RmpUpdateState): number {
  if (typeof s !== 'object' || s === null) return RmpStatus.FAIL_INPUT;
  if (typeof s.assigned !== 'boolean' || typeof s.immutable !== 'boolean') return RmpStatus.FAIL_INPUT;
  if (s.pageSize !== 0 && s.pageSize !== 1) return RmpStatus.FAIL_INPUT;
  // The ASID field is 10 bits; an unassigned page has owner (0, 0) (APM Table 15-35) [DER].
  if (!isUint(s.asid, ASID_MASK) || (!s.assigned && s.asid !== 0)) return RmpStatus.FAIL_INPUT;
  if (!isUint(s.gpa, 2 ** 52 - 1)) return RmpStatus.FAIL_INPUT;
  if (m.profile.rmpupdateGpaLowBits === 'fail-input' && s.gpa % PAGE_SIZE !== 0) return RmpStatus.FAIL_INPUT;
  // An assigned 2 MB page maps GPA + page offset: its GPA must be 2 MB aligned [DER].
  if (s.assigned && s.pageSize === 1 && Math.floor(s.gpa / PAGE_SIZE) % PAGES_PER_2M !== 0) {
    return RmpStatus.FAIL_INPUT;
  }
  return RmpStatus.SUCCESS;
}

/** Any of the 511 non-head entries of the 2 MB region at `headPfn` Immutable (O(511), not hot). */
function immutableTail(m: Machine, headPfn: number): boolean {
  for (let i = 1; i < PAGES_PER_2M; i++) if (m.rmp.word(headPfn + i, 0) & W0_IMMUTABLE) return true;
  return false;
}

/**
 * RMPUPDATE `spa` to `state` (a decoded state or the 16 raw bytes of `struct rmp_state`).
 * Checks, in order: new state (FAIL_INPUT), sPA aligned to the page size and RMP-covered (FAIL_INPUT),
 * current entry Immutable (FAIL_PERMISSION), page in use by a running VMRUN (FAIL_INUSE), 4K/2M overlap
 * (FAIL_OVERLAP). Effects: GPA/Assigned/Page_Size/Immutable/ASID from the state; Validated, VMSA and
 * lock cleared on every update [DER: APM "deallocates, reassigns or remaps → unvalidated", VeriSMo
 * clears VMSA]; VMPL0 mask = profile.rmpupdateVmpl0Mask when assigned (else 0), VMPL1-3 = 0; q1 bits
 * 32-63 cleared. A 2 MB update writes only the 2 MB-aligned entry (tails stay "don't care", §H9).
 */
export function rmpupdate(m: Machine, spa: number, state: RmpUpdateState | Uint8Array): number {
  const s = state instanceof Uint8Array ? decodeRmpState(state) : state;
  if (s === undefined) return RmpStatus.FAIL_INPUT;
  const input = checkState(m, s);
  if (input !== RmpStatus.SUCCESS) return input;
  const align = s.pageSize === 1 ? PAGE_SIZE_2M : PAGE_SIZE;
  if (!isUint(spa, 2 ** 52 - 1) || spa % align !== 0) return RmpStatus.FAIL_INPUT;
  const pfn = spa / PAGE_SIZE;
  const pages = s.pageSize === 1 ? PAGES_PER_2M : 1;
  const { rmp } = m;
  if (!rmp.isCovered(pfn + pages - 1)) return RmpStatus.FAIL_INPUT;

  const w0 = rmp.word(pfn, 0);
  if (w0 & W0_IMMUTABLE) return RmpStatus.FAIL_PERMISSION;
  if (s.pageSize === 1 ? m.inUse.anyInUse(pfn, PAGES_PER_2M) : m.inUse.isInUse(pfn))
    return RmpStatus.FAIL_INUSE;

  const headPfn = pfn - (pfn % PAGES_PER_2M);
  if (s.pageSize === 1) {
    // Another 4K entry of the region is assigned.
    if ((w0 & W0_SUBPAGE_MASK) !== 0) return RmpStatus.FAIL_OVERLAP;
    // An assigned 2 MB entry governs all 512 pages: it must not swallow an Immutable (HV-Fixed) 4K
    // entry, which only the AMD-SP may change (APM Table 15-34 "Immutable") [DER].
    if (s.assigned && immutableTail(m, pfn)) return RmpStatus.FAIL_PERMISSION;
  } else if (
    pfn !== headPfn &&
    (rmp.word(headPfn, 0) & (W0_ASSIGNED | W0_PAGESIZE)) === (W0_ASSIGNED | W0_PAGESIZE)
  ) {
    // The page lies inside an assigned 2 MB page.
    return RmpStatus.FAIL_OVERLAP;
  }

  const gfn = Math.floor(s.gpa / PAGE_SIZE) % gfnModulusOf(m.profile.physAddrBits);
  const [gLo, gHi] = gfnWords(gfn);
  const nw0 =
    (s.assigned ? W0_ASSIGNED : 0) |
    (s.pageSize === 1 ? W0_PAGESIZE : 0) |
    (s.immutable ? W0_IMMUTABLE : 0) |
    gLo;
  const nw1 = gHi | (s.asid << W1_ASID_SHIFT);
  const nw2 = s.assigned ? m.profile.rmpupdateVmpl0Mask : 0;
  rmp.writeEntryWords(pfn, nw0, nw1, nw2, 0);
  return RmpStatus.SUCCESS;
}

/**
 * PSMASH the 2 MB page at `spa` into 512 4K entries. Checks: sPA 2 MB aligned and the region covered
 * (FAIL_INPUT); the page meets the requirements for expansion (else profile.psmashBadAddressCode, §H1);
 * no page of the region in use (FAIL_INUSE). Every field is copied to all 512 entries (Validated, VMSA,
 * Immutable, lock, permissions, q1) with Page_Size = 0 and consecutive GPAs (head GPA + i × 4K).
 *
 * Requirements for expansion [DER]: the 2 MB-aligned entry is an *assigned* 2 MB entry (the only kind
 * that governs its region, [LX] `__snp_lookup_rmpentry`; KVM smashes only those, `snp_rmptable_psmash`)
 * and no other entry of the region is assigned (subpage count 0). An unassigned Page_Size = 1 entry
 * (Linux `rmp_make_shared(pfn, PG_LEVEL_2M)`) does not govern its 511 other entries, which may since
 * hold guest, Firmware or Context pages: copying it over them would let the host rewrite pages only
 * the AMD-SP may change (§A.1 Immutable).
 */
export function psmash(m: Machine, spa: number): number {
  if (!isUint(spa, 2 ** 52 - 1) || spa % PAGE_SIZE_2M !== 0) return RmpStatus.FAIL_INPUT;
  const pfn = spa / PAGE_SIZE;
  const { rmp } = m;
  if (!rmp.isCovered(pfn + PAGES_PER_2M - 1)) return RmpStatus.FAIL_INPUT;
  const w0 = rmp.word(pfn, 0);
  const assigned2M = W0_ASSIGNED | W0_PAGESIZE;
  if ((w0 & assigned2M) !== assigned2M || (w0 & W0_SUBPAGE_MASK) !== 0) return m.profile.psmashBadAddressCode;
  if (m.inUse.anyInUse(pfn, PAGES_PER_2M)) return RmpStatus.FAIL_INUSE;
  const w1 = rmp.word(pfn, 1);
  const w2 = rmp.word(pfn, 2);
  const w3 = rmp.word(pfn, 3);
  const gfn = entryGfn(w0, w1);
  const gfnModulus = gfnModulusOf(m.profile.physAddrBits);
  const flags0 = w0 & (W0_ASSIGNED | W0_IMMUTABLE);
  const rest1 = w1 & ~W1_GFN_HI_MASK;
  // Tails first (they update the head's subpage count), the head last.
  for (let i = PAGES_PER_2M - 1; i >= 0; i--) {
    const [gLo, gHi] = gfnWords((gfn + i) % gfnModulus);
    rmp.writeEntryWords(pfn + i, flags0 | gLo, rest1 | gHi, w2, w3);
  }
  return RmpStatus.SUCCESS;
}

/** RMPREAD's architectural 16-byte output (Linux `struct rmpentry`, MS `__rmpread`). */
export interface RmpreadEntry {
  /** Full GPA (not a GFN). */
  readonly gpa: number;
  readonly assigned: boolean;
  readonly pageSize: 0 | 1;
  /** 2MB-region status: the sPA is 2 MB aligned and some other page of its region is assigned. */
  readonly regionStatus: boolean;
  readonly immutable: boolean;
  readonly asid: number;
  /** The same as the 16 bytes the instruction stores at RCX. */
  readonly bytes: Uint8Array;
}

export type RmpreadResult =
  | { readonly kind: 'eax'; readonly eax: number; readonly entry?: RmpreadEntry }
  | { readonly kind: 'ud'; readonly reason: string };

/**
 * RMPREAD `spa`: #UD unless profile.rmpreadSupported; FAIL_INPUT when misaligned or not covered [DER];
 * otherwise the entry of that 4K page (its own entry, as Linux reads the level separately from the
 * 2 MB-aligned entry).
 */
export function rmpread(m: Machine, spa: number): RmpreadResult {
  if (!m.profile.rmpreadSupported) {
    return {
      kind: 'ud',
      reason: `RMPREAD is not supported by CPU profile '${m.profile.name}' (CPUID Fn8000_001F_EAX[21])`,
    };
  }
  if (!isUint(spa, 2 ** 52 - 1) || spa % PAGE_SIZE !== 0) return { kind: 'eax', eax: RmpStatus.FAIL_INPUT };
  const pfn = spa / PAGE_SIZE;
  const { rmp } = m;
  if (!rmp.isCovered(pfn)) return { kind: 'eax', eax: RmpStatus.FAIL_INPUT };
  const w0 = rmp.word(pfn, 0);
  const w1 = rmp.word(pfn, 1);
  const gpa = entryGfn(w0, w1) * PAGE_SIZE;
  const regionStatus = pfn % PAGES_PER_2M === 0 && (w0 & W0_SUBPAGE_MASK) !== 0;
  const asid = (w1 >>> W1_ASID_SHIFT) & ASID_MASK;
  const bytes = new Uint8Array(16);
  const dv = new DataView(bytes.buffer);
  dv.setBigUint64(0, BigInt(gpa), true);
  dv.setUint8(8, w0 & W0_ASSIGNED);
  dv.setUint8(9, ((w0 & W0_PAGESIZE) >>> 1) | (regionStatus ? 2 : 0));
  dv.setUint8(10, (w0 & W0_IMMUTABLE) >>> 2);
  dv.setUint32(12, asid, true);
  return {
    kind: 'eax',
    eax: RmpStatus.SUCCESS,
    entry: {
      gpa,
      assigned: (w0 & W0_ASSIGNED) !== 0,
      pageSize: (w0 & W0_PAGESIZE) !== 0 ? 1 : 0,
      regionStatus,
      immutable: (w0 & W0_IMMUTABLE) !== 0,
      asid,
      bytes,
    },
  };
}
