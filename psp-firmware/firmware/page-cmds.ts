/**
 * Page commands: SNP_PAGE_RECLAIM, SNP_PAGE_UNSMASH, SNP_PAGE_SET_STATE, in the check order of the
 * Genoa handlers (sev_mcmd.c `snp_mcmd_page_reclaim`, `snp_mcmd_page_unsmash`,
 * `snp_mcmd_page_set_state` + sev_rmp.c `page_set_hv_fixed`) [FW].
 */
import {
  GPA_STATE_SHIFT,
  PAGE_SHIFT,
  PAGE_SIZE,
  PAGE_SIZE_2M,
  PAGES_PER_2M,
  W0_SUBPAGE_MASK,
  W1_LOCK,
} from '../rmp/layout.js';
import { PageState } from '../rmp/page-state.js';
import { decodePageSetState, Layouts, u64 } from './buffers.js';
import {
  ADDR_RECLAIM_RESERVED_MASK,
  ADDR_RESERVED_MASK,
  describe,
  type FirmwareCore,
  hex,
  lookupPage,
  needsInit,
  spaOf,
  writeRmp,
} from './core.js';
import { W0_FIRMWARE, W0_HV_FIXED, walkRangeList } from './platform-cmds.js';
import { SevStatus } from './status.js';

/** GPA-field state tag: GFN bits [38:36] = GPA bits [50:48] [FW RMP_GPA_STATE_FLAG]; below it the real GPA. */
const GPA_BELOW_TAG = 2 ** (GPA_STATE_SHIFT + PAGE_SHIFT);
/** [FW] SNP_PAGE_SET_STATE_ADDR_RESERVED_MASK: range bases must be 2 MB aligned. */
const SET_STATE_BASE_MBZ = BigInt(PAGE_SIZE_2M - 1);

export function snpPageReclaim(fw: FirmwareCore, b: Uint8Array): number {
  const raw = u64(b, 0);
  if ((raw & ADDR_RECLAIM_RESERVED_MASK) !== 0n) {
    return fw.fail(SevStatus.INVALID_PARAM, `PAGE_RECLAIM ${hex(raw)}: reserved bits 11:1 set`);
  }
  const addr = raw & ~ADDR_RESERVED_MASK;
  const size = Number(raw & 1n) as 0 | 1;
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const spa = spaOf(fw, addr);
  const bytes = size === 1 ? PAGE_SIZE_2M : PAGE_SIZE;
  if (spa < 0 || spa + bytes > fw.platform.memory.memoryBytes) {
    return fw.fail(SevStatus.INVALID_ADDRESS, `${hex(addr)}+${hex(bytes)} is not in system memory`);
  }
  const l = lookupPage(fw, addr);
  if (l.status !== SevStatus.SUCCESS) return fw.fail(l.status, `page ${hex(addr)} lies inside the RMP`);
  const e = l.entry;
  if ((e?.pageSize ?? 0) !== size) {
    return fw.fail(SevStatus.INVALID_PAGE_SIZE, `RMP page size ${e?.pageSize ?? 0} != requested ${size}`);
  }
  if (size === 1 && spa % PAGE_SIZE_2M !== 0) {
    return fw.fail(SevStatus.INVALID_ADDRESS, `2 MB page ${hex(addr)} is not 2 MB aligned`);
  }
  if (!e?.immutable) return SevStatus.SUCCESS; // [FW] already mutable: success, no change
  switch (l.state) {
    case PageState.METADATA: // Metadata -> Reclaim, firmware GPA tag cleared
      writeRmp(fw, l.pfn, { ...e, immutable: false, lock: false, gpa: e.gpa % GPA_BELOW_TAG });
      return SevStatus.SUCCESS;
    case PageState.FIRMWARE: // Firmware -> Reclaim
    case PageState.PRE_GUEST: // Pre-Guest -> Guest-Invalid
    case PageState.PRE_SWAP: // Pre-Swap -> Guest-Valid
      writeRmp(fw, l.pfn, { ...e, immutable: false, lock: false });
      return SevStatus.SUCCESS;
    default:
      return fw.fail(
        SevStatus.INVALID_PAGE_STATE,
        `${describe(addr, l)}; PAGE_RECLAIM takes Firmware, Metadata, Pre-Guest, Pre-Swap`,
      );
  }
}

export function snpPageUnsmash(fw: FirmwareCore, b: Uint8Array): number {
  const raw = u64(b, 0);
  if ((raw & ADDR_RECLAIM_RESERVED_MASK) !== 0n) {
    return fw.fail(SevStatus.INVALID_PARAM, `PAGE_UNSMASH ${hex(raw)}: reserved bits 11:1 set`);
  }
  if (raw % BigInt(PAGE_SIZE_2M) !== 0n) {
    return fw.fail(SevStatus.INVALID_PARAM, `PAGE_UNSMASH ${hex(raw)} is not 2 MB aligned`);
  }
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const l = lookupPage(fw, raw);
  if (l.status !== SevStatus.SUCCESS) return fw.fail(l.status, `page ${hex(raw)} lies inside the RMP`);
  if (l.state === PageState.DEFAULT) {
    return fw.fail(SevStatus.INVALID_PAGE_STATE, `page ${hex(raw)} is not RMP-covered (Default)`);
  }
  const spa = spaOf(fw, raw);
  const { rmpBase, rmpEnd } = fw.platform;
  if (rmpBase !== undefined && rmpEnd !== undefined && spa <= rmpEnd && spa + PAGE_SIZE_2M - 1 >= rmpBase) {
    return fw.fail(SevStatus.INVALID_ADDRESS, `2 MB range at ${hex(raw)} overlaps the RMP`);
  }
  const rmp = fw.platform.rmp;
  const head = l.pfn;
  const first = rmp.entry(head);
  if (!first || first.gpa % PAGE_SIZE_2M !== 0) {
    return fw.fail(SevStatus.INVALID_PAGE_STATE, `entry 0 GPA ${hex(first?.gpa ?? 0)} is not 2 MB aligned`);
  }
  const state0 = rmp.pageState(head);
  for (let i = 0; i < PAGES_PER_2M; i++) {
    const e = rmp.entry(head + i);
    const why =
      e === undefined
        ? 'is not RMP-covered'
        : e.pageSize !== 0 || !e.immutable || e.vmsa || e.asid === 0
          ? 'must be a 4K, Immutable, non-VMSA page with a non-zero ASID'
          : rmp.pageState(head + i) !== state0 || e.asid !== first.asid
            ? 'differs in state or ASID from entry 0'
            : e.gpa !== first.gpa + i * PAGE_SIZE
              ? 'breaks the consecutive GPAs'
              : e.vmplPerms.some((p, k) => p !== first.vmplPerms[k]) ||
                  e.implicitKeySelect !== first.implicitKeySelect ||
                  e.q1Reserved !== first.q1Reserved ||
                  e.rootPortId !== first.rootPortId ||
                  e.pcieIdeStreamId !== first.pcieIdeStreamId ||
                  e.pageMigration !== first.pageMigration
                ? 'has a different second quadword (VMPL masks ...)'
                : null;
    if (why !== null) return fw.fail(SevStatus.INVALID_PAGE_STATE, `PAGE_UNSMASH: entry ${i} ${why}`);
  }
  // The firmware writes the tails as assigned=1, ASID 0, immutable 0 and zeroes the head's subpage
  // count. The model's RMP keeps subpage count == assigned tails and treats the tails of a 2 MB page as
  // unassigned "don't care" entries (as its 2 MB RMPUPDATE leaves them), so the tails are cleared: the
  // head then governs the 2 MB page with a zero subpage count, as after the firmware's write.
  for (let i = 1; i < PAGES_PER_2M; i++) rmp.writeEntryWords(head + i, 0, 0, 0, 0);
  writeRmp(fw, head, { ...first, pageSize: 1 });
  return SevStatus.SUCCESS;
}

/** Raw quadword 0 of a page the firmware made Firmware: lock | immutable | assigned [FW RMP_ENTRY_VAL_FIRMWARE]. */
function isExactFirmware(w0: number, w1: number): boolean {
  return (w0 & ~W0_SUBPAGE_MASK) === W0_FIRMWARE && w1 === W1_LOCK;
}

export function snpPageSetState(fw: FirmwareCore, b: Uint8Array): number {
  const s = decodePageSetState(b);
  if (s.length !== Layouts.pageSetState.size) {
    return fw.fail(SevStatus.INVALID_LEN, `PAGE_SET_STATE: length ${s.length} != 16`);
  }
  if (s.rsvd !== 0 || (s.listPaddr & ADDR_RESERVED_MASK) !== 0n) {
    return fw.fail(SevStatus.INVALID_PARAM, 'PAGE_SET_STATE: reserved field or list address bits 11:0 set');
  }
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const walked = walkRangeList(fw, s.listPaddr, SET_STATE_BASE_MBZ);
  if (walked.status !== SevStatus.SUCCESS) return walked.status;
  const rmp = fw.platform.rmp;
  for (const [a, z] of walked.ranges) {
    const end = Math.min(z, rmp.coveredPages - 1); // beyond RMP_END: the scan stops (HIT_RMP_END)
    for (let pfn = a; pfn <= end; pfn++) {
      if (!isExactFirmware(rmp.word(pfn, 0), rmp.word(pfn, 1))) {
        return fw.fail(
          SevStatus.INVALID_PAGE_STATE,
          `page ${hex(pfn * PAGE_SIZE)} is ${rmp.pageState(pfn)}${rmp.pageState(pfn) === PageState.FIRMWARE ? ' without the firmware lock bit' : ''}, not a firmware-made Firmware page`,
        );
      }
    }
  }
  for (const [a, z] of walked.ranges) {
    const end = Math.min(z, rmp.coveredPages - 1);
    for (let pfn = a; pfn <= end; pfn++) rmp.writeEntryWords(pfn, W0_HV_FIXED, 0, 0, 0); // Firmware -> HV-Fixed
  }
  return SevStatus.SUCCESS;
}
