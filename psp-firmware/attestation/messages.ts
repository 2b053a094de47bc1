/**
 * Payloads of the guest messages the model handles [FW sev_rmp.h; LX include/uapi/linux/sev-guest.h]:
 * MSG_REPORT_REQ (0x60 B) / MSG_REPORT_RSP (0x20 + 0x4A0 B), MSG_KEY_REQ (0x20 B) / MSG_KEY_RSP
 * (0x40 B), MSG_TSC_INFO_REQ (0x80 B) / MSG_TSC_INFO_RSP (0x80 B). Message-level status codes live in
 * the response payload (0 success, 0x16 INVALID_PARAM, 0x27 INVALID_KEY).
 */
import { createHmac } from 'node:crypto';
import { isZero, putU32, putU64, u32, u64 } from '../firmware/buffers.js';
import { REPORT_SIZE } from './report.js';

export const REPORT_REQ_SIZE = 0x60; // [FW] sizeof(snp_msg_report_req_t)
export const REPORT_RSP_SIZE = 0x20 + REPORT_SIZE; // [FW] sizeof(snp_msg_report_rsp_t)
export const KEY_REQ_SIZE = 0x20; // [FW] sizeof(snp_msg_key_req_t)
export const KEY_RSP_SIZE = 0x40; // [FW] sizeof(snp_msg_key_rsp_t)
export const TSC_INFO_REQ_SIZE = 0x80; // [FW] sizeof(snp_msg_tsc_info_req_t)
export const TSC_INFO_RSP_SIZE = 0x80; // [FW] sizeof(snp_msg_tsc_info_rsp_t)

/** key_sel of MSG_REPORT_REQ / MSG_KEY_REQ [FW `KEY_SEL_*`]. */
export const KeySel = Object.freeze({ VLEK_VCEK: 0, VCEK_ONLY: 1, VLEK_ONLY: 2, RESERVED: 3 } as const);

/** GUEST_FIELD_SELECT bits of MSG_KEY_REQ [FW `SNP_GUEST_FIELD_*`]. */
export const GuestFieldSelect = Object.freeze({
  GUEST_POLICY: 1n << 0n,
  IMAGE_ID: 1n << 1n,
  FAMILY_ID: 1n << 2n,
  MEASUREMENT: 1n << 3n,
  GUEST_SVN: 1n << 4n,
  TCB_VERSION: 1n << 5n,
  ALL: 0x3fn,
} as const);

export interface ReportRequest {
  readonly reportData: Uint8Array;
  readonly vmpl: number;
  readonly keySel: number;
  /** Bits 31:2 of the key_sel dword. */
  readonly reservedBits: number;
  readonly reservedZero: boolean;
}
export function decodeReportRequest(b: Uint8Array): ReportRequest {
  const ks = u32(b, 0x44);
  return {
    reportData: b.slice(0, 64),
    vmpl: u32(b, 0x40),
    keySel: ks & 3,
    reservedBits: ks >>> 2,
    reservedZero: isZero(b, 0x48, REPORT_REQ_SIZE),
  };
}
export function encodeReportRequest(r: {
  reportData?: Uint8Array;
  vmpl?: number;
  keySel?: number;
}): Uint8Array {
  const b = new Uint8Array(REPORT_REQ_SIZE);
  if (r.reportData) b.set(r.reportData.subarray(0, 64), 0);
  putU32(b, 0x40, r.vmpl ?? 0);
  putU32(b, 0x44, r.keySel ?? 0);
  return b;
}

export interface ReportResponse {
  readonly status: number;
  readonly reportSize: number;
  readonly report: Uint8Array;
}
export function encodeReportResponse(status: number, report: Uint8Array): Uint8Array {
  const b = new Uint8Array(REPORT_RSP_SIZE);
  putU32(b, 0x00, status);
  putU32(b, 0x04, REPORT_SIZE);
  b.set(report.subarray(0, REPORT_SIZE), 0x20);
  return b;
}
export function decodeReportResponse(b: Uint8Array): ReportResponse {
  return { status: u32(b, 0), reportSize: u32(b, 4), report: b.slice(0x20, 0x20 + REPORT_SIZE) };
}

export interface KeyRequest {
  readonly rootKeySelect: number;
  readonly keySel: number;
  /** Bits 31:3 of the first dword and the second dword. */
  readonly reserved: number;
  readonly reserved2: number;
  readonly guestFieldSelect: bigint;
  readonly vmpl: number;
  readonly guestSvn: number;
  readonly tcbVersion: bigint;
}
export function decodeKeyRequest(b: Uint8Array): KeyRequest {
  const d = u32(b, 0);
  return {
    rootKeySelect: d & 1,
    keySel: (d >>> 1) & 3,
    reserved: d >>> 3,
    reserved2: u32(b, 4),
    guestFieldSelect: u64(b, 8),
    vmpl: u32(b, 0x10),
    guestSvn: u32(b, 0x14),
    tcbVersion: u64(b, 0x18),
  };
}
export function encodeKeyRequest(r: {
  rootKeySelect?: number;
  keySel?: number;
  guestFieldSelect?: bigint;
  vmpl?: number;
  guestSvn?: number;
  tcbVersion?: bigint;
}): Uint8Array {
  const b = new Uint8Array(KEY_REQ_SIZE);
  putU32(b, 0, ((r.rootKeySelect ?? 0) & 1) | (((r.keySel ?? 0) & 3) << 1));
  putU64(b, 8, r.guestFieldSelect ?? 0n);
  putU32(b, 0x10, r.vmpl ?? 0);
  putU32(b, 0x14, r.guestSvn ?? 0);
  putU64(b, 0x18, r.tcbVersion ?? 0n);
  return b;
}

export function encodeKeyResponse(status: number, key: Uint8Array | null): Uint8Array {
  const b = new Uint8Array(KEY_RSP_SIZE);
  putU32(b, 0, status);
  if (key) b.set(key.subarray(0, 32), 0x20);
  return b;
}
export function decodeKeyResponse(b: Uint8Array): { status: number; derivedKey: Uint8Array } {
  return { status: u32(b, 0), derivedKey: b.slice(0x20, 0x40) };
}

export function encodeTscInfoResponse(
  status: number,
  guestTscScale: bigint,
  guestTscOffset: bigint,
  tscFactor: number,
): Uint8Array {
  const b = new Uint8Array(TSC_INFO_RSP_SIZE);
  putU32(b, 0x00, status);
  putU64(b, 0x08, guestTscScale);
  putU64(b, 0x10, guestTscOffset);
  putU32(b, 0x18, tscFactor);
  return b;
}

// ---- key derivation -------------------------------------------------------------------------

export const KEY_REQ_LABEL = 'gmsg-keyreq'; // [FW] KEY_REQ_LABEL
export const MIX_DATA_SIZE = 0xa8; // [FW] sizeof(snp_mix_data_t), packed

/** Inputs mixed into a MSG_KEY_REQ derivation [FW `snp_mix_data_t`]. */
export interface MixData {
  readonly rootKeySelect: number;
  /** 0 none, 1 ID key, 2 author key. */
  readonly idblockKeySelect: number;
  readonly gfs: bigint;
  readonly vmpl: number;
  readonly guestSvn: number;
  readonly tcbVersion: bigint;
  readonly guestPolicy: bigint;
  readonly imageId: Uint8Array;
  readonly familyId: Uint8Array;
  /** The firmware copies only the first 32 bytes of the 48-byte measurement and key digest. */
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idblockKey: Uint8Array;
}
export function encodeMixData(m: MixData): Uint8Array {
  const b = new Uint8Array(MIX_DATA_SIZE);
  putU32(b, 0x00, (m.rootKeySelect & 1) | ((m.idblockKeySelect & 3) << 1));
  putU64(b, 0x08, m.gfs);
  putU32(b, 0x10, m.vmpl);
  putU32(b, 0x14, m.guestSvn);
  putU64(b, 0x18, m.tcbVersion);
  putU64(b, 0x20, m.guestPolicy);
  b.set(m.imageId.subarray(0, 16), 0x28);
  b.set(m.familyId.subarray(0, 16), 0x38);
  b.set(m.measurement.subarray(0, 32), 0x48);
  b.set(m.hostData.subarray(0, 32), 0x68);
  b.set(m.idblockKey.subarray(0, 32), 0x88);
  return b;
}

/**
 * NIST SP 800-108 KDF in counter mode with HMAC-SHA256, as the firmware's `nist_kdf`:
 * K(i) = HMAC-SHA256(key, i:u32 LE || label || 0x00 || context || L:u32 LE), L = output bits.
 */
export function nistKdf(key: Uint8Array, label: string, context: Uint8Array, outLen: number): Uint8Array {
  const out = new Uint8Array(outLen);
  const l = Buffer.alloc(4);
  l.writeUInt32LE(outLen * 8, 0);
  for (let i = 1, off = 0; off < outLen; i++, off += 32) {
    const ib = Buffer.alloc(4);
    ib.writeUInt32LE(i, 0);
    const h = createHmac('sha256', key)
      .update(ib)
      .update(label)
      .update(Buffer.of(0))
      .update(context)
      .update(l)
      .digest();
    out.set(h.subarray(0, Math.min(32, outLen - off)), off);
  }
  return out;
}
