/**
 * SNP_GUEST_REQUEST: mailbox-level checks (the hypervisor's mistakes, returned as the command status)
 * and message-level statuses (the guest's mistakes, returned inside an authenticated response), in
 * the order of the Genoa handler (sev_mcmd.c `snp_mcmd_guest_request`) [FW]. Modelled messages:
 * MSG_REPORT_REQ, MSG_KEY_REQ, MSG_TSC_INFO_REQ; the migration messages and MSG_CPUID_REQ answer
 * UNSUPPORTED at the mailbox (not modelled).
 */
import { ECDSA_SIG_SIZE, SIG_ALGO_ECDSA_P384_SHA384, signSev } from '../attestation/ecdsa.js';
import {
  AEAD_ALGO_AES_256_GCM,
  decodeGuestMessageHeader,
  GUEST_MSG_HDR_SIZE,
  GUEST_MSG_HDR_VERSION,
  MsgType,
  openGuestMessage,
  sealGuestMessage,
} from '../attestation/guest-message.js';
import {
  decodeKeyRequest,
  decodeReportRequest,
  encodeKeyResponse,
  encodeMixData,
  encodeReportResponse,
  encodeTscInfoResponse,
  GuestFieldSelect,
  KEY_REQ_LABEL,
  KeySel,
  nistKdf,
  TSC_INFO_REQ_SIZE,
} from '../attestation/messages.js';
import {
  encodeReport,
  PlatformInfo,
  REPORT_SIGNED_SIZE,
  REPORT_SIZE,
  ReportOffset,
  SigningKey,
} from '../attestation/report.js';
import { PAGE_SIZE } from '../rmp/layout.js';
import { PageState } from '../rmp/page-state.js';
import { decodeThreeAddr, isZero } from './buffers.js';
import {
  ADDR_RESERVED_MASK,
  describe,
  type FirmwareCore,
  hex,
  lookupGctx,
  lookupThree,
  needsInit,
  readMemory,
  spaOf,
  writeMemory,
} from './core.js';
import type { GuestContextPage } from './guest-context.js';
import { calcTscScale } from './launch.js';
import { currentTcb, reportedTcb } from './platform-cmds.js';
import { decodeTcb, tcbExceeds } from './profile.js';
import { SnpGuestState } from './state.js';
import { SevStatus } from './status.js';

/** Highest MSG_VERSION of every request type on FW 1.55.25 [FW SNP_GMSG_MAX_MSG_VERSION_*]. */
const MAX_MSG_VERSION = 1;
const U64_MAX = 0xffff_ffff_ffff_ffffn;

function keySelInvalid(keySel: number, ctx: GuestContextPage): boolean {
  const vlek = false; // no VLEK is ever installed in the model (SNP_VLEK_LOAD is not modelled)
  return (
    keySel === KeySel.RESERVED ||
    (keySel === KeySel.VLEK_ONLY && !vlek) ||
    (keySel === KeySel.VCEK_ONLY && ctx.vcekDis) ||
    (keySel === KeySel.VLEK_VCEK && ctx.vcekDis && !vlek)
  );
}

function reportResponse(fw: FirmwareCore, ctx: GuestContextPage, req: Uint8Array, vmpck: number): Uint8Array {
  const r = decodeReportRequest(req);
  if (!r.reservedZero || r.reservedBits !== 0) {
    return encodeReportResponse(SevStatus.INVALID_PARAM, new Uint8Array(REPORT_SIZE));
  }
  if (keySelInvalid(r.keySel, ctx))
    return encodeReportResponse(SevStatus.INVALID_KEY, new Uint8Array(REPORT_SIZE));
  if (r.vmpl < vmpck) return encodeReportResponse(SevStatus.INVALID_PARAM, new Uint8Array(REPORT_SIZE));
  const p = fw.profile;
  const st = fw.state;
  const signed = !st.maskChipKey && (r.keySel === KeySel.VLEK_VCEK || r.keySel === KeySel.VCEK_ONLY);
  const sig = p.cpuidSignature;
  const family = ((sig >>> 8) & 0xf) + ((sig >>> 20) & 0xff);
  const model = (((sig >>> 16) & 0xf) << 4) | ((sig >>> 4) & 0xf);
  const report = encodeReport({
    version: p.reportVersion,
    guestSvn: ctx.guestSvn,
    policy: ctx.policy,
    familyId: ctx.familyId.slice(),
    imageId: ctx.imageId.slice(),
    vmpl: r.vmpl,
    signatureAlgo: SIG_ALGO_ECDSA_P384_SHA384,
    currentTcb: currentTcb(fw),
    platformInfo: (p.smtEnabled ? PlatformInfo.SMT_EN : 0n) | (p.tsmeEnabled ? PlatformInfo.TSME_EN : 0n),
    authorKeyEn: ctx.authorKeyEn,
    maskChipKey: st.maskChipKey,
    signingKey: signed ? SigningKey.VCEK : SigningKey.NONE,
    reportData: r.reportData,
    measurement: ctx.measurement.slice(),
    hostData: ctx.hostData.slice(),
    idKeyDigest: ctx.idKeyDigest.slice(),
    authorKeyDigest: ctx.authorKeyDigest.slice(),
    reportId: ctx.reportId.slice(),
    reportIdMa: ctx.reportIdMa.slice(),
    reportedTcb: reportedTcb(fw),
    cpuidFamId: p.reportVersion >= 3 ? family : 0,
    cpuidModId: p.reportVersion >= 3 ? model : 0,
    cpuidStep: p.reportVersion >= 3 ? sig & 0xf : 0,
    chipId: st.maskChipId ? new Uint8Array(64) : fw.identity.chipId.slice(),
    committedTcb: st.committedTcb,
    currentBuild: p.buildId,
    currentMinor: p.apiMinor,
    currentMajor: p.apiMajor,
    committedBuild: st.committedBuildId,
    committedMinor: st.committedApiMinor,
    committedMajor: st.committedApiMajor,
    launchTcb: ctx.launchTcb,
    launchMitVector: 0n,
    currentMitVector: 0n,
    signature: new Uint8Array(ECDSA_SIG_SIZE),
  });
  if (signed) {
    const key = fw.identity.vcek(reportedTcb(fw)).privateKey;
    report.set(signSev(report.subarray(0, REPORT_SIGNED_SIZE), key), ReportOffset.SIGNATURE);
  }
  return encodeReportResponse(SevStatus.SUCCESS, report);
}

function keyResponse(fw: FirmwareCore, ctx: GuestContextPage, req: Uint8Array, vmpck: number): Uint8Array {
  const k = decodeKeyRequest(req);
  const fail = (s: number) => encodeKeyResponse(s, null);
  if (k.reserved !== 0 || k.reserved2 !== 0) return fail(SevStatus.INVALID_PARAM);
  if (k.rootKeySelect === 0 && fw.state.maskChipKey) return fail(SevStatus.INVALID_KEY);
  if (k.rootKeySelect === 0 && keySelInvalid(k.keySel, ctx)) return fail(SevStatus.INVALID_KEY);
  if (k.vmpl < vmpck) return fail(SevStatus.INVALID_PARAM);
  if ((k.guestFieldSelect & ~GuestFieldSelect.ALL) !== 0n) return fail(SevStatus.INVALID_PARAM);
  const gfs = k.guestFieldSelect;
  let rootTcb = reportedTcb(fw);
  let mixTcb = 0n;
  if ((gfs & GuestFieldSelect.TCB_VERSION) !== 0n) {
    const layout = fw.profile.tcbLayout;
    const want = decodeTcb(k.tcbVersion, layout);
    if (!want.reservedZero || tcbExceeds(want, decodeTcb(fw.state.committedTcb, layout))) {
      return fail(SevStatus.INVALID_PARAM);
    }
    rootTcb = k.tcbVersion;
    mixTcb = k.tcbVersion;
  }
  let guestSvn = 0;
  if ((gfs & GuestFieldSelect.GUEST_SVN) !== 0n) {
    if (k.guestSvn > ctx.guestSvn) return fail(SevStatus.INVALID_PARAM);
    guestSvn = k.guestSvn;
  }
  const idblockKeySelect = ctx.authorKeyEn ? 2 : ctx.idBlockEn ? 1 : 0;
  const zero16 = new Uint8Array(16);
  const mix = encodeMixData({
    rootKeySelect: k.rootKeySelect,
    idblockKeySelect,
    gfs,
    vmpl: k.vmpl,
    guestSvn,
    tcbVersion: mixTcb,
    guestPolicy: (gfs & GuestFieldSelect.GUEST_POLICY) !== 0n ? ctx.policy : 0n,
    imageId: (gfs & GuestFieldSelect.IMAGE_ID) !== 0n ? ctx.imageId : zero16,
    familyId: (gfs & GuestFieldSelect.FAMILY_ID) !== 0n ? ctx.familyId : zero16,
    measurement: (gfs & GuestFieldSelect.MEASUREMENT) !== 0n ? ctx.measurement : new Uint8Array(32),
    hostData: ctx.hostData,
    idblockKey:
      idblockKeySelect === 2
        ? ctx.authorKeyDigest
        : idblockKeySelect === 1
          ? ctx.idKeyDigest
          : new Uint8Array(32),
  });
  const root = k.rootKeySelect === 0 ? fw.identity.vcekSeed(rootTcb) : ctx.vmrk;
  return encodeKeyResponse(SevStatus.SUCCESS, nistKdf(root, KEY_REQ_LABEL, mix, 32));
}

function tscInfoResponse(fw: FirmwareCore, ctx: GuestContextPage, req: Uint8Array): Uint8Array {
  if (!isZero(req, 0, TSC_INFO_REQ_SIZE)) return encodeTscInfoResponse(SevStatus.INVALID_PARAM, 0n, 0n, 0);
  return encodeTscInfoResponse(
    SevStatus.SUCCESS,
    calcTscScale(ctx.desiredTscKhz, fw.profile.refClkKhz),
    ctx.pspTscOffset,
    fw.profile.tscFactor,
  );
}

export function snpGuestRequest(fw: FirmwareCore, b: Uint8Array): number {
  const { a: gctx, b: reqAddr, c: rspAddr } = decodeThreeAddr(b);
  if ((gctx & ADDR_RESERVED_MASK) !== 0n)
    return fw.fail(SevStatus.INVALID_PARAM, `gctx ${hex(gctx)} has bits 11:0 set`);
  const st = needsInit(fw);
  if (st !== SevStatus.SUCCESS) return st;
  const looked = lookupThree(fw, gctx, reqAddr, rspAddr);
  if (looked.status !== SevStatus.SUCCESS) return looked.status;
  const [gl, ql, rl] = looked.pages;
  if (gl.state !== PageState.CONTEXT)
    return fw.fail(SevStatus.INVALID_GUEST, `gctx ${describe(gctx, gl)}, not Context`);
  if (rl.state !== PageState.FIRMWARE) {
    return fw.fail(SevStatus.INVALID_PAGE_STATE, `response ${describe(rspAddr, rl)}, needs Firmware`);
  }
  if ((ql.entry?.pageSize ?? 0) !== 0 || (rl.entry?.pageSize ?? 0) !== 0) {
    return fw.fail(SevStatus.INVALID_PAGE_SIZE, 'request and response pages must be 4K RMP pages');
  }
  const g = lookupGctx(fw, gctx, gl);
  const ctx = g.ctx;
  if (!ctx) return g.status;
  if (ctx.snpState !== SnpGuestState.RUNNING) {
    return fw.fail(SevStatus.INVALID_GUEST_STATE, 'GUEST_REQUEST needs a RUNNING guest');
  }
  const reqOff = Number(reqAddr & ADDR_RESERVED_MASK);
  if (reqOff > PAGE_SIZE - GUEST_MSG_HDR_SIZE)
    return fw.fail(SevStatus.INVALID_PARAM, 'request header crosses a page');
  const reqSpa = spaOf(fw, reqAddr);
  const hdrBytes = readMemory(fw, reqSpa, GUEST_MSG_HDR_SIZE);
  if (hdrBytes === null)
    return fw.fail(SevStatus.INVALID_ADDRESS, `request ${hex(reqAddr)} is outside system memory`);
  const h = decodeGuestMessageHeader(hdrBytes);
  if (
    h.hdrVersion !== GUEST_MSG_HDR_VERSION ||
    h.hdrSize !== GUEST_MSG_HDR_SIZE ||
    h.algo !== AEAD_ALGO_AES_256_GCM ||
    h.msgSize === 0 ||
    h.msgSize % 16 !== 0
  ) {
    return fw.fail(
      SevStatus.INVALID_PARAM,
      `request header: HDR_VERSION ${h.hdrVersion}, HDR_SIZE ${hex(h.hdrSize)}, ALGO ${h.algo}, MSG_SIZE ${h.msgSize} (needs 1, 0x60, 1, a non-zero multiple of 16)`,
    );
  }
  if (reqOff + GUEST_MSG_HDR_SIZE + h.msgSize > PAGE_SIZE) {
    return fw.fail(SevStatus.INVALID_PARAM, `request payload of ${h.msgSize} bytes crosses the page`);
  }
  const msg = readMemory(fw, reqSpa, GUEST_MSG_HDR_SIZE + h.msgSize);
  if (msg === null) return fw.fail(SevStatus.INVALID_ADDRESS, 'request payload is outside system memory');
  const vmpck = h.msgVmpck;
  const key = ctx.vmpck[vmpck as 0 | 1 | 2 | 3];
  if (key === undefined) return fw.fail(SevStatus.INVALID_PARAM, `MSG_VMPCK ${vmpck} is not 0..3`);
  const payload = openGuestMessage(msg, key);
  if (payload === null) {
    return fw.fail(SevStatus.BAD_MEASUREMENT, `request does not authenticate under VMPCK${vmpck}`);
  }
  const counter = ctx.msgCount[vmpck as 0 | 1 | 2 | 3];
  if (counter === U64_MAX - 1n || h.msgSeqno !== counter + 1n) {
    return fw.fail(SevStatus.AEAD_OFLOW, `MSG_SEQNO ${h.msgSeqno} != VMPCK${vmpck} count ${counter} + 1`);
  }
  if (
    h.msgVersion === 0 ||
    (h.msgType >= MsgType.CPUID_REQ && h.msgType <= MsgType.TSC_INFO_RSP && h.msgVersion > MAX_MSG_VERSION)
  ) {
    return fw.fail(
      SevStatus.INVALID_PARAM,
      `MSG_VERSION ${h.msgVersion} not supported for MSG_TYPE ${h.msgType}`,
    );
  }
  const plain = new Uint8Array(PAGE_SIZE); // the firmware's zeroed scratch: short payloads read as zero
  plain.set(payload);
  let rsp: Uint8Array;
  switch (h.msgType) {
    case MsgType.REPORT_REQ:
      rsp = reportResponse(fw, ctx, plain, vmpck);
      break;
    case MsgType.KEY_REQ:
      rsp = keyResponse(fw, ctx, plain, vmpck);
      break;
    case MsgType.TSC_INFO_REQ:
      rsp = tscInfoResponse(fw, ctx, plain);
      break;
    case MsgType.CPUID_REQ:
    case MsgType.EXPORT_REQ:
    case MsgType.IMPORT_REQ:
    case MsgType.ABSORB_REQ:
    case MsgType.VMRK_REQ:
    case MsgType.ABSORB_NOMA_REQ:
      return fw.fail(SevStatus.UNSUPPORTED, `MSG_TYPE ${h.msgType} is not modelled by snpsim`);
    default:
      return fw.fail(SevStatus.INVALID_PARAM, `MSG_TYPE ${h.msgType} is not a request type`);
  }
  const rspOff = Number(rspAddr & ADDR_RESERVED_MASK);
  if (rspOff + GUEST_MSG_HDR_SIZE + rsp.length > PAGE_SIZE) {
    return fw.fail(SevStatus.INVALID_PARAM, 'response message would cross the response page');
  }
  const sealed = sealGuestMessage({
    key,
    seqno: h.msgSeqno + 1n,
    msgType: h.msgType + 1,
    msgVersion: 1,
    vmpck,
    payload: rsp,
  });
  ctx.msgCount[vmpck as 0 | 1 | 2 | 3] = counter + 2n;
  return writeMemory(fw, spaOf(fw, rspAddr), sealed);
}
