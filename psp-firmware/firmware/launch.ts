/**
 * SNP_LAUNCH_START, SNP_LAUNCH_UPDATE, SNP_LAUNCH_FINISH in the check order of the Genoa handlers
 * (sev_mcmd.c `snp_mcmd_launch_start`, `snp_mcmd_launch_update`, `snp_mcmd_launch_finish`) [FW]. The
 * launch digest is extended through the measurement module's `LaunchDigest` (PAGE_INFO chain).
 */

import { decodeSevPublicKey, SIG_ALGO_ECDSA_P384_SHA384, verifySev } from '../attestation/ecdsa.js';
import {
  decodeIdBlock,
  ID_AUTH_SIZE,
  ID_BLOCK_SIZE,
  idAuthFields,
  keyDigest,
} from '../attestation/id-block.js';
import { type PageInfoPerms, SnpPageType } from '../measure/page-info.js';
import { PAGE_SIZE, PAGE_SIZE_2M, PAGES_PER_2M } from '../rmp/layout.js';
import { PageState } from '../rmp/page-state.js';
import { SevFeature, VmsaOffset } from '../vmsa-layout.js';
import { decodeLaunchFinish, decodeLaunchStart, decodeLaunchUpdate, putU64, u64 } from './buffers.js';
import {
  ADDR_RESERVED_MASK,
  describe,
  type FirmwareCore,
  hex,
  lookupGctx,
  lookupPage,
  needsInit,
  PADDR_INVALID,
  readMemory,
  spaOf,
  writeMemory,
  writeRmp,
} from './core.js';
import type { GuestContextPage } from './guest-context.js';
import { buildSecretsPage, checkCpuidPage } from './launch-pages.js';
import { SnpGuestState } from './state.js';
import { SevStatus } from './status.js';

/** Guest policy bits [LX SNP_POLICY_MASK_*; FW SNP_GUEST_POLICY_*_FLAG] (firmware-rmp.md §E.5). */
export const SnpPolicy = Object.freeze({
  ABI_MINOR_MASK: 0xffn,
  ABI_MAJOR_SHIFT: 8n,
  SMT: 1n << 16n,
  /** Reserved, must be one (FW 1.55.25: "VMPL"). */
  RSVD_MBO: 1n << 17n,
  MIGRATE_MA: 1n << 18n,
  DEBUG: 1n << 19n,
  SINGLE_SOCKET: 1n << 20n,
} as const);

/** GUEST_TSC_SCALE as an 8.32 fixed-point ratio desired / reference [FW calc_tsc_scale]. */
export function calcTscScale(desiredKhz: number, refKhz: number): bigint {
  if (refKhz === 0) return 0n;
  const d = BigInt(desiredKhz);
  const r = BigInt(refKhz);
  const int = d / r;
  const frac = (((d - int * r) << 32n) + (r - 1n)) / r;
  return ((int & 0xffn) << 32n) | (frac & 0xffffffffn);
}

// ---- SNP_LAUNCH_START ------------------------------------------------------------------------

function policyFailure(
  fw: FirmwareCore,
  policy: bigint,
  ma: GuestContextPage | null,
  maEn: boolean,
): string | null {
  const p = fw.profile;
  const major = Number((policy >> SnpPolicy.ABI_MAJOR_SHIFT) & 0xffn);
  const minor = Number(policy & SnpPolicy.ABI_MINOR_MASK);
  if (maEn && (policy & SnpPolicy.MIGRATE_MA) === 0n) return 'MA_EN without POLICY.MIGRATE_MA';
  if (maEn && ma?.migrationAgent !== null) return 'the migration agent is itself bound to a migration agent';
  if ((policy & SnpPolicy.RSVD_MBO) === 0n) return 'policy bit 17 (must be one) is clear';
  if ((policy & SnpPolicy.SMT) === 0n && p.smtEnabled) return 'POLICY.SMT is clear but SMT is enabled';
  if (p.apiMajor < major || (p.apiMajor === major && p.apiMinor < minor)) {
    return `POLICY.ABI ${major}.${minor} is above the firmware's ${p.apiMajor}.${p.apiMinor}`;
  }
  if ((policy & p.policyReservedMask) !== 0n)
    return `reserved policy bits ${hex(policy & p.policyReservedMask)} set`;
  if (
    maEn &&
    (policy & SnpPolicy.SINGLE_SOCKET) !== 0n &&
    ma !== null &&
    (ma.policy & SnpPolicy.SINGLE_SOCKET) === 0n
  ) {
    return "POLICY.SINGLE_SOCKET but the migration agent's policy lacks it";
  }
  return null;
}

export function snpLaunchStart(fw: FirmwareCore, b: Uint8Array): number {
  const s = decodeLaunchStart(b);
  if (
    (s.gctxPaddr & ADDR_RESERVED_MASK) !== 0n ||
    s.rsvd !== 0 ||
    (s.maGctxPaddr & ADDR_RESERVED_MASK) !== 0n
  ) {
    return fw.fail(SevStatus.INVALID_PARAM, 'LAUNCH_START: gctx/ma_gctx bits 11:0 or reserved flag bits set');
  }
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const g = lookupGctx(fw, s.gctxPaddr);
  const ctx = g.ctx;
  if (!ctx) return g.status;
  if (ctx.snpState !== SnpGuestState.INIT) {
    return fw.fail(SevStatus.INVALID_GUEST_STATE, 'LAUNCH_START needs a guest in the INIT state');
  }
  let ma: GuestContextPage | null = null;
  if (s.maEn) {
    const m = lookupGctx(fw, s.maGctxPaddr);
    if (!m.ctx) return m.status;
    ma = m.ctx;
  }
  const why = policyFailure(fw, s.policy, ma, s.maEn);
  if (why !== null) return fw.fail(SevStatus.POLICY_FAILURE, `LAUNCH_START policy ${hex(s.policy)}: ${why}`);
  ctx.policy = s.policy;
  ctx.migrationAgent = s.maEn ? s.maGctxPaddr : null;
  ctx.oek.set(fw.random(32));
  for (const k of ctx.vmpck) k.set(fw.random(32));
  ctx.vmrk.set(fw.random(32));
  ctx.reportId.set(fw.random(32));
  if (ma) ctx.reportIdMa.set(ma.reportId);
  else ctx.reportIdMa.fill(Number(PADDR_INVALID & 0xffn));
  ctx.imiEn = s.imiEn;
  ctx.gosvw.set(s.gosvw);
  ctx.desiredTscKhz = s.desiredTscKhz;
  fw.state.guestCount++;
  ctx.snpState = SnpGuestState.LAUNCH;
  return SevStatus.SUCCESS;
}

// ---- SNP_LAUNCH_UPDATE -----------------------------------------------------------------------

/**
 * One PAGE_INFO step of the measurement module on `digest` (GCTX.LD or GCTX.IMD), in place. Its
 * inputs were checked by the handler, so a refusal is a model bug, not a firmware status.
 */
function extendDigest(
  fw: FirmwareCore,
  digest: Uint8Array,
  type: number,
  contents: Uint8Array | null,
  gpa: number,
  perms: PageInfoPerms,
): void {
  const ld = fw.launchDigest;
  const err = ld.reset(digest) ?? ld.updatePage(type, contents, gpa, perms);
  if (err) throw new Error(`SNP_LAUNCH_UPDATE: the PAGE_INFO step refused checked input: ${err.message}`);
  ld.copyDigestTo(digest);
}

export function snpLaunchUpdate(fw: FirmwareCore, b: Uint8Array): number {
  const u = decodeLaunchUpdate(b);
  if (
    (u.gctxPaddr & ADDR_RESERVED_MASK) !== 0n ||
    (u.address & ADDR_RESERVED_MASK) !== 0n ||
    u.rsvd !== 0 ||
    u.rsvd2 !== 0 ||
    u.rsvd3 !== 0 ||
    u.rsvd4 !== 0
  ) {
    return fw.fail(SevStatus.INVALID_PARAM, 'LAUNCH_UPDATE: address bits 11:0 or reserved fields set');
  }
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const gl = lookupPage(fw, u.gctxPaddr);
  if (gl.status !== SevStatus.SUCCESS)
    return fw.fail(gl.status, `gctx ${hex(u.gctxPaddr)} lies inside the RMP`);
  if (gl.state !== PageState.CONTEXT) {
    return fw.fail(SevStatus.INVALID_GUEST, `gctx ${describe(u.gctxPaddr, gl)}, not Context`);
  }
  const pl = lookupPage(fw, u.address);
  if (pl.status !== SevStatus.SUCCESS)
    return fw.fail(pl.status, `page ${hex(u.address)} lies inside the RMP`);
  if (pl.state !== PageState.PRE_GUEST || !pl.entry) {
    return fw.fail(SevStatus.INVALID_PAGE_STATE, `${describe(u.address, pl)}, LAUNCH_UPDATE needs Pre-Guest`);
  }
  const entry = pl.entry;
  if (entry.pageSize !== u.pageSize) {
    return fw.fail(SevStatus.INVALID_PAGE_SIZE, `RMP page size ${entry.pageSize} != requested ${u.pageSize}`);
  }
  if (entry.pageSize === 1 && u.address % BigInt(PAGE_SIZE_2M) !== 0n) {
    return fw.fail(SevStatus.INVALID_ADDRESS, `2 MB page ${hex(u.address)} is not 2 MB aligned`);
  }
  const t = u.pageType;
  if (t === SnpPageType.VMSA || t === SnpPageType.SECRETS || t === SnpPageType.CPUID) {
    if (entry.pageSize !== 0) return fw.fail(SevStatus.INVALID_PAGE_SIZE, `page type ${t} must be a 4K page`);
  } else if (t !== SnpPageType.NORMAL && t !== SnpPageType.ZERO && t !== SnpPageType.UNMEASURED) {
    return fw.fail(SevStatus.INVALID_PARAM, `page type ${t} is reserved`);
  }
  const g = lookupGctx(fw, u.gctxPaddr, gl);
  const ctx = g.ctx;
  if (!ctx) return g.status;
  if (ctx.snpState !== SnpGuestState.LAUNCH) {
    return fw.fail(SevStatus.INVALID_GUEST_STATE, 'LAUNCH_UPDATE needs a guest in the LAUNCH state');
  }
  if (ctx.inactive) return fw.fail(SevStatus.INACTIVE, 'the guest has no ASID (SNP_ACTIVATE first)');
  if (entry.asid !== ctx.asid) {
    return fw.fail(SevStatus.INVALID_PAGE_OWNER, `page ASID ${entry.asid} != guest ASID ${ctx.asid}`);
  }
  if (ctx.imiEn && !u.imiPage) return fw.fail(SevStatus.INVALID_PARAM, 'IMI guest: IMI_PAGE must be 1');

  const perms = { vmpl1: u.vmpl1Perms, vmpl2: u.vmpl2Perms, vmpl3: u.vmpl3Perms, imi: u.imiPage };
  const base = pl.pfn * PAGE_SIZE;
  const steps = entry.pageSize === 1 ? PAGES_PER_2M : 1;
  for (let k = 0; k < steps; k++) {
    const spa = base + k * PAGE_SIZE;
    const page = readMemory(fw, spa, PAGE_SIZE);
    if (page === null) return fw.fail(SevStatus.INVALID_ADDRESS, `page ${hex(spa)} is outside system memory`);
    let out: Uint8Array | null = null;
    if (t === SnpPageType.ZERO) out = new Uint8Array(PAGE_SIZE);
    else if (t === SnpPageType.SECRETS) out = buildSecretsPage(fw.profile, ctx);
    else if (t === SnpPageType.CPUID) {
      const c = checkCpuidPage(fw.profile, page);
      if (c.result === 'entries') writeMemory(fw, spa, page); // corrected page, written back unencrypted
      if (c.result !== 'ok') return fw.fail(SevStatus.INVALID_PARAM, c.message);
    }
    const measured = t === SnpPageType.NORMAL || t === SnpPageType.VMSA ? page : null;
    extendDigest(fw, ctx.measurement, t, measured, entry.gpa + k * PAGE_SIZE, perms);
    if (u.imiPage) extendDigest(fw, ctx.imd, t, measured, entry.gpa + k * PAGE_SIZE, perms);
    if (t === SnpPageType.VMSA && (u64(page, VmsaOffset.SEV_FEATURES) & SevFeature.SECURE_TSC) !== 0n) {
      out = page;
      putU64(out, VmsaOffset.GUEST_TSC_SCALE, calcTscScale(ctx.desiredTscKhz, fw.profile.refClkKhz));
      putU64(out, VmsaOffset.GUEST_TSC_OFFSET, 0n);
    }
    if (out !== null) writeMemory(fw, spa, out);
  }
  const [vmpl0] = entry.vmplPerms;
  writeRmp(fw, pl.pfn, {
    ...entry,
    vmplPerms: [vmpl0, u.vmpl1Perms, u.vmpl2Perms, u.vmpl3Perms],
    vmsa: t === SnpPageType.VMSA ? true : entry.vmsa,
    validated: true,
    immutable: false,
    lock: false,
  }); // Pre-Guest -> Guest-Valid
  return SevStatus.SUCCESS;
}

// ---- SNP_LAUNCH_FINISH -----------------------------------------------------------------------

export function snpLaunchFinish(fw: FirmwareCore, b: Uint8Array): number {
  const f = decodeLaunchFinish(b);
  if ((f.gctxPaddr & ADDR_RESERVED_MASK) !== 0n || f.rsvd !== 0n) {
    return fw.fail(SevStatus.INVALID_PARAM, 'LAUNCH_FINISH: gctx bits 11:0 or reserved flag bits set');
  }
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const g = lookupGctx(fw, f.gctxPaddr);
  const ctx = g.ctx;
  if (!ctx) return g.status;
  if (ctx.snpState !== SnpGuestState.LAUNCH || ctx.imiEn) {
    return fw.fail(SevStatus.INVALID_GUEST_STATE, 'LAUNCH_FINISH needs a non-IMI guest in the LAUNCH state');
  }
  if (ctx.inactive) return fw.fail(SevStatus.INACTIVE, 'the guest has no ASID (SNP_ACTIVATE first)');
  if (f.idBlockEn) {
    const idb = readMemory(fw, spaOf(fw, f.idBlockPaddr), ID_BLOCK_SIZE);
    const auth = readMemory(fw, spaOf(fw, f.idAuthPaddr), ID_AUTH_SIZE);
    if (idb === null || auth === null) {
      return fw.fail(SevStatus.INVALID_ADDRESS, 'ID block or ID auth structure is outside system memory');
    }
    const block = decodeIdBlock(idb);
    if (!Buffer.from(block.ld).equals(Buffer.from(ctx.measurement))) {
      return fw.fail(SevStatus.BAD_MEASUREMENT, 'ID_BLOCK.LD differs from the launch digest');
    }
    if (block.policy !== ctx.policy) {
      return fw.fail(
        SevStatus.POLICY_FAILURE,
        `ID_BLOCK.POLICY ${hex(block.policy)} != guest policy ${hex(ctx.policy)}`,
      );
    }
    const a = idAuthFields(auth);
    if (
      a.idKeyAlgo !== SIG_ALGO_ECDSA_P384_SHA384 ||
      (f.authKeyEn && a.authKeyAlgo !== SIG_ALGO_ECDSA_P384_SHA384)
    ) {
      return fw.fail(
        SevStatus.INVALID_PARAM,
        `ID_KEY_ALGO ${a.idKeyAlgo} / AUTH_KEY_ALGO ${a.authKeyAlgo} is not 1`,
      );
    }
    const idKey = decodeSevPublicKey(a.idKey);
    if (!idKey) return fw.fail(SevStatus.BAD_SIGNATURE, 'ID_KEY is not a valid P-384 public key');
    if (!verifySev(idb, a.idBlockSig, idKey))
      return fw.fail(SevStatus.BAD_SIGNATURE, 'ID_BLOCK_SIG does not verify');
    ctx.idBlock.set(idb);
    ctx.idKeyDigest.set(keyDigest(a.idKey));
    if (f.authKeyEn) {
      const author = decodeSevPublicKey(a.authorKey);
      if (!author) return fw.fail(SevStatus.BAD_SIGNATURE, 'AUTHOR_KEY is not a valid P-384 public key');
      if (!verifySev(a.idKey, a.idKeySig, author))
        return fw.fail(SevStatus.BAD_SIGNATURE, 'ID_KEY_SIG does not verify');
      ctx.authorKeyDigest.set(keyDigest(a.authorKey));
    }
  }
  ctx.hostData.set(f.hostData);
  ctx.idBlockEn = f.idBlockEn;
  ctx.authorKeyEn = f.authKeyEn;
  ctx.vcekDis = f.vcekDisabled;
  if (ctx.activation === 'pending') {
    fw.asids.launched(ctx.asid, ctx.ccxs);
    ctx.activation = 'active';
  }
  ctx.snpState = SnpGuestState.RUNNING;
  return SevStatus.SUCCESS;
}
