/**
 * Guest life-cycle commands: SNP_GCTX_CREATE, SNP_DECOMMISSION, SNP_ACTIVATE, SNP_GUEST_STATUS, in
 * the check order of the Genoa handlers (sev_mcmd.c `snp_mcmd_gctx_create`, `snp_mcmd_decommission`
 * + `snp_decommission_common`, `snp_mcmd_activate` + `mcmd_activate_common` + `activate_common`,
 * `snp_mcmd_guest_status`) [FW].
 */
import { PAGE_SIZE, RMP_ASID_COUNTERS } from '../rmp/layout.js';
import { PageState } from '../rmp/page-state.js';
import { encodeGuestStatus, SNP_GUEST_STATUS_SIZE, u32, u64 } from './buffers.js';
import {
  ADDR_RESERVED_MASK,
  describe,
  type FirmwareCore,
  hex,
  lookupGctx,
  lookupPage,
  needsInit,
  spaOf,
  writeMemory,
  writeRmp,
} from './core.js';
import { GuestContextPage } from './guest-context.js';
import { SnpPolicy } from './launch.js';
import { SnpGuestState } from './state.js';
import { SevStatus } from './status.js';

export function snpGctxCreate(fw: FirmwareCore, b: Uint8Array): number {
  const addr = u64(b, 0);
  if ((addr & ADDR_RESERVED_MASK) !== 0n)
    return fw.fail(SevStatus.INVALID_PARAM, `gctx ${hex(addr)} has bits 11:0 set`);
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const l = lookupPage(fw, addr);
  if (l.status !== SevStatus.SUCCESS) return fw.fail(l.status, `gctx ${hex(addr)} lies inside the RMP`);
  if (l.state !== PageState.FIRMWARE) {
    return fw.fail(SevStatus.INVALID_PAGE_STATE, `${describe(addr, l)}, GCTX_CREATE needs a Firmware page`);
  }
  if (l.entry?.pageSize !== 0)
    return fw.fail(SevStatus.INVALID_PAGE_SIZE, `gctx ${hex(addr)} is a 2 MB RMP page`);
  const spa = spaOf(fw, addr);
  if (spa + PAGE_SIZE > fw.platform.memory.memoryBytes) {
    return fw.fail(SevStatus.INVALID_CONFIG, `gctx ${hex(addr)} is not in system memory`);
  }
  fw.platform.memory.fill(spa, PAGE_SIZE, 0);
  const p = fw.profile;
  fw.contexts.set(
    l.pfn,
    new GuestContextPage(fw.state.committedTcb, {
      apiMajor: p.apiMajor,
      apiMinor: p.apiMinor,
      buildId: p.buildId,
    }),
  );
  writeRmp(fw, l.pfn, { ...l.entry!, vmsa: true }); // Firmware -> Context
  return SevStatus.SUCCESS;
}

/** `snp_decommission_common`: deactivate (in-use CCXs become dirty), forget the guest. */
export function decommissionGuest(fw: FirmwareCore, ctx: GuestContextPage): void {
  if (ctx.asid !== 0) fw.asids.deactivate(ctx.asid, ctx.ccxs);
  if (ctx.snpState !== SnpGuestState.INIT) fw.state.guestCount--;
  ctx.asid = 0;
  ctx.ccxs = 0;
  ctx.activation = 'inactive';
}

export function snpDecommission(fw: FirmwareCore, b: Uint8Array): number {
  const addr = u64(b, 0);
  if ((addr & ADDR_RESERVED_MASK) !== 0n)
    return fw.fail(SevStatus.INVALID_PARAM, `gctx ${hex(addr)} has bits 11:0 set`);
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const g = lookupGctx(fw, addr);
  if (!g.ctx) return g.status;
  decommissionGuest(fw, g.ctx);
  fw.contexts.delete(g.pfn);
  const entry = fw.platform.rmp.entry(g.pfn);
  if (entry) writeRmp(fw, g.pfn, { ...entry, vmsa: false }); // Context -> Firmware
  return SevStatus.SUCCESS;
}

export function snpActivate(fw: FirmwareCore, b: Uint8Array): number {
  const addr = u64(b, 0);
  const asid = u32(b, 8);
  if ((addr & ADDR_RESERVED_MASK) !== 0n)
    return fw.fail(SevStatus.INVALID_PARAM, `gctx ${hex(addr)} has bits 11:0 set`);
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const g = lookupGctx(fw, addr);
  const ctx = g.ctx;
  if (!ctx) return g.status;
  if (ctx.snpState !== SnpGuestState.LAUNCH && ctx.snpState !== SnpGuestState.RUNNING) {
    return fw.fail(
      SevStatus.INVALID_GUEST_STATE,
      `ACTIVATE needs a guest in LAUNCH or RUNNING, guest is INIT`,
    );
  }
  // [FW check_rmp_for_asid] counters exist for ASIDs 0..2047 and are read before the ASID range check.
  if (asid >= RMP_ASID_COUNTERS)
    return fw.fail(SevStatus.INVALID_ASID, `ASID ${asid} has no RMP counter (>= 2048)`);
  const count = fw.platform.rmp.asidCount(asid);
  if (count !== 0) {
    return fw.fail(
      SevStatus.INVALID_CONFIG,
      `the RMP still holds ${count} assigned page(s) with ASID ${asid}`,
    );
  }
  if ((ctx.policy & SnpPolicy.SINGLE_SOCKET) !== 0n && fw.profile.sockets > 1) {
    return fw.fail(
      SevStatus.POLICY_FAILURE,
      `POLICY.SINGLE_SOCKET on a ${fw.profile.sockets}-socket platform`,
    );
  }
  const asids = fw.asids;
  if (asid === 0 || asid > asids.maxAsid) {
    return fw.fail(SevStatus.INVALID_ASID, `ASID ${asid} is outside 1..${asids.maxAsid}`);
  }
  const i = asid - 1;
  if (asids.inUse[i] !== 0 || asids.allocated[i] !== 0) {
    return fw.fail(SevStatus.ASID_OWNED, `ASID ${asid} is allocated to or in use by a guest`);
  }
  if (!ctx.inactive) return fw.fail(SevStatus.ACTIVE, 'the guest is already activated');
  // activate_common: first activation of this guest
  if (asids.dirty[i] !== 0)
    return fw.fail(SevStatus.DFFLUSH_REQUIRED, `ASID ${asid} is dirty: SNP_DF_FLUSH first`);
  if (asids.clean[i] !== asids.present)
    return fw.fail(SevStatus.ASID_OWNED, `ASID ${asid} is not clean on every CCX`);
  const running = ctx.snpState === SnpGuestState.RUNNING;
  ctx.asid = asid;
  ctx.ccxs = asids.present;
  ctx.activation = running ? 'active' : 'pending';
  asids.activate(asid, ctx.ccxs, running);
  return SevStatus.SUCCESS;
}

export function snpGuestStatus(fw: FirmwareCore, b: Uint8Array): number {
  const gctx = u64(b, 0);
  const out = u64(b, 8);
  if ((gctx & ADDR_RESERVED_MASK) !== 0n)
    return fw.fail(SevStatus.INVALID_PARAM, `gctx ${hex(gctx)} has bits 11:0 set`);
  if (Number(out & ADDR_RESERVED_MASK) + SNP_GUEST_STATUS_SIZE > PAGE_SIZE) {
    return fw.fail(SevStatus.INVALID_PARAM, `status buffer at ${hex(out)} crosses a page boundary`);
  }
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const gl = lookupPage(fw, gctx);
  if (gl.status !== SevStatus.SUCCESS) return fw.fail(gl.status, `gctx ${hex(gctx)} lies inside the RMP`);
  const sl = lookupPage(fw, out);
  if (sl.status !== SevStatus.SUCCESS)
    return fw.fail(sl.status, `status page ${hex(out)} lies inside the RMP`);
  const g = lookupGctx(fw, gctx, gl);
  if (!g.ctx) return g.status;
  if (sl.state !== PageState.FIRMWARE && sl.state !== PageState.DEFAULT) {
    return fw.fail(SevStatus.INVALID_PAGE_STATE, `status ${describe(out, sl)}, not Firmware or Default`);
  }
  const ctx = g.ctx;
  const data = encodeGuestStatus({
    policy: ctx.policy,
    asid: ctx.asid,
    state: ctx.snpState,
    vcekDis: ctx.vcekDis,
  });
  return writeMemory(fw, spaOf(fw, out), data);
}
