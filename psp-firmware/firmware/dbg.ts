/**
 * SNP_DBG_DECRYPT / SNP_DBG_ENCRYPT: copy one 4 KiB region out of / into a guest whose policy allows
 * debugging, in the check order of the Genoa handlers (sev_mcmd.c `snp_mcmd_dbg_decrypt`,
 * `snp_mcmd_dbg_encrypt`) [FW]. Note the firmware's order differs between the two: ENCRYPT checks the
 * platform state before the reserved address bits. Memory holds plaintext in the model, so both copy.
 * A 4K entry with ASID 0 inside an assigned 2 MB page is resolved through the 2 MB-aligned entry [FW].
 */
import { PAGE_SIZE, PAGES_PER_2M } from '../rmp/layout.js';
import { PageState } from '../rmp/page-state.js';
import { decodeThreeAddr } from './buffers.js';
import {
  ADDR_RESERVED_MASK,
  describe,
  type FirmwareCore,
  hex,
  lookupGctx,
  lookupThree,
  needsInit,
  type PageLookup,
  readMemory,
  spaOf,
  writeMemory,
} from './core.js';
import { SnpPolicy } from './launch.js';
import { SevStatus } from './status.js';

/** Option 3 of the firmware comment: a 4K entry with ASID 0 is read through its 2 MB head if that is a 2 MB entry. */
function resolve2M(fw: FirmwareCore, l: PageLookup): PageLookup {
  const e = l.entry;
  if (e?.pageSize !== 0 || e.asid !== 0) return l;
  const head = l.pfn - (l.pfn % PAGES_PER_2M);
  const he = fw.platform.rmp.entry(head);
  if (he?.pageSize !== 1) return l;
  return { status: SevStatus.SUCCESS, state: fw.platform.rmp.pageState(head), pfn: head, entry: he };
}

const GUEST_STATES: ReadonlySet<string> = new Set([
  PageState.PRE_GUEST,
  PageState.PRE_SWAP,
  PageState.GUEST_INVALID,
  PageState.GUEST_VALID,
]);

function copyPage(fw: FirmwareCore, src: bigint, dst: bigint): number {
  const data = readMemory(fw, spaOf(fw, src), PAGE_SIZE);
  if (data === null) return fw.fail(SevStatus.INVALID_ADDRESS, `source ${hex(src)} is outside system memory`);
  return writeMemory(fw, spaOf(fw, dst), data);
}

export function snpDbgDecrypt(fw: FirmwareCore, b: Uint8Array): number {
  const { a: gctx, b: src, c: dst } = decodeThreeAddr(b);
  if (((gctx | src | dst) & ADDR_RESERVED_MASK) !== 0n) {
    return fw.fail(SevStatus.INVALID_PARAM, 'DBG_DECRYPT: an address has bits 11:0 set');
  }
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const looked = lookupThree(fw, gctx, src, dst);
  if (looked.status !== SevStatus.SUCCESS) return looked.status;
  const [gl, sl0, dl0] = looked.pages;
  const sl = resolve2M(fw, sl0);
  const dl = resolve2M(fw, dl0);
  if (gl.state !== PageState.CONTEXT)
    return fw.fail(SevStatus.INVALID_GUEST, `gctx ${describe(gctx, gl)}, not Context`);
  if (!GUEST_STATES.has(sl.state) || dl.state !== PageState.FIRMWARE) {
    return fw.fail(
      SevStatus.INVALID_PAGE_STATE,
      `source ${describe(src, sl)} (needs a guest page), destination ${describe(dst, dl)} (needs Firmware)`,
    );
  }
  const g = lookupGctx(fw, gctx, gl);
  const ctx = g.ctx;
  if (!ctx) return g.status;
  if (sl.entry?.asid !== ctx.asid) {
    return fw.fail(SevStatus.INVALID_PAGE_OWNER, `source ASID ${sl.entry?.asid} != guest ASID ${ctx.asid}`);
  }
  if ((ctx.policy & SnpPolicy.DEBUG) === 0n)
    return fw.fail(SevStatus.POLICY_FAILURE, 'guest policy does not allow DEBUG');
  // [FW] last check; unreachable: an inactive guest has ASID 0 and a guest page ASID > 0, so the
  // owner check above already failed. Kept to mirror the firmware's order.
  if (ctx.inactive) return fw.fail(SevStatus.INACTIVE, 'the guest has no ASID');
  return copyPage(fw, src, dst);
}

export function snpDbgEncrypt(fw: FirmwareCore, b: Uint8Array): number {
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const { a: gctx, b: src, c: dst } = decodeThreeAddr(b);
  if (((gctx | src | dst) & ADDR_RESERVED_MASK) !== 0n) {
    return fw.fail(SevStatus.INVALID_PARAM, 'DBG_ENCRYPT: an address has bits 11:0 set');
  }
  const looked = lookupThree(fw, gctx, src, dst);
  if (looked.status !== SevStatus.SUCCESS) return looked.status;
  const [gl, , dl0] = looked.pages; // the source is only looked up (INVALID_PARAM inside the RMP)
  const dl = resolve2M(fw, dl0);
  if (gl.state !== PageState.CONTEXT)
    return fw.fail(SevStatus.INVALID_GUEST, `gctx ${describe(gctx, gl)}, not Context`);
  if (dl.state !== PageState.PRE_SWAP && dl.state !== PageState.PRE_GUEST) {
    return fw.fail(
      SevStatus.INVALID_PAGE_STATE,
      `destination ${describe(dst, dl)}, needs Pre-Guest or Pre-Swap`,
    );
  }
  const g = lookupGctx(fw, gctx, gl);
  const ctx = g.ctx;
  if (!ctx) return g.status;
  if (dl.entry?.asid !== ctx.asid) {
    return fw.fail(
      SevStatus.INVALID_PAGE_OWNER,
      `destination ASID ${dl.entry?.asid} != guest ASID ${ctx.asid}`,
    );
  }
  if ((ctx.policy & SnpPolicy.DEBUG) === 0n)
    return fw.fail(SevStatus.POLICY_FAILURE, 'guest policy does not allow DEBUG');
  // [FW] last check; unreachable: an inactive guest has ASID 0 and a guest page ASID > 0, so the
  // owner check above already failed. Kept to mirror the firmware's order.
  if (ctx.inactive) return fw.fail(SevStatus.INACTIVE, 'the guest has no ASID');
  return copyPage(fw, src, dst);
}
