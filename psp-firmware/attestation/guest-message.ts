/**
 * SNP guest messages (SNP_GUEST_REQUEST): the 0x60-byte header (Linux `struct snp_guest_msg_hdr`,
 * Genoa `snp_guest_message_header_t`) [LX][FW] and the AES-256-GCM protection under VMPCKn. Used by
 * both sides — the firmware (`open` the request, `seal` the response) and a guest (the opposite).
 *
 * Header: 0x00 AUTHTAG[32] (GCM tag in bytes 0..15), 0x20 u64 MSG_SEQNO, 0x28 8 B reserved, 0x30 u8
 * ALGO (1 = AES-256-GCM), 0x31 u8 HDR_VERSION (1), 0x32 u16 HDR_SIZE (0x60), 0x34 u8 MSG_TYPE, 0x35
 * u8 MSG_VERSION, 0x36 u16 MSG_SIZE, 0x38 u32 reserved, 0x3C u8 MSG_VMPCK, 0x3D..0x5F reserved.
 * AEAD: key = VMPCK[MSG_VMPCK], IV = MSG_SEQNO as 8 LE bytes + 4 zero bytes, AAD = header bytes
 * 0x30..0x5F, plaintext = payload (MSG_SIZE bytes, right after the header) [FW sev_mcmd.c].
 */
import { createCipheriv, createDecipheriv } from 'node:crypto';
import { putU16, putU32, putU64, u16, u64 } from '../firmware/buffers.js';

export const GUEST_MSG_HDR_SIZE = 0x60; // [FW] GUEST_REQUEST_HEADER_SIZE
export const GUEST_MSG_AAD_OFFSET = 0x30; // [FW] offsetof(hdr, algo)
export const GUEST_MSG_AAD_SIZE = 0x30; // [FW] SNP_GMSG_HDR_AAD_SIZE
export const AEAD_ALGO_AES_256_GCM = 1; // [FW] AEAD_ALGO_AES_256_GCM
export const GUEST_MSG_HDR_VERSION = 1; // [FW] SNP_GMSG_MAX_HDR_VERSION
const GCM_TAG = 16;

/** Message types [FW `snp_guest_message_t`; LX `enum msg_type`]. */
export const MsgType = Object.freeze({
  CPUID_REQ: 1,
  CPUID_RSP: 2,
  KEY_REQ: 3,
  KEY_RSP: 4,
  REPORT_REQ: 5,
  REPORT_RSP: 6,
  EXPORT_REQ: 7,
  EXPORT_RSP: 8,
  IMPORT_REQ: 9,
  IMPORT_RSP: 10,
  ABSORB_REQ: 11,
  ABSORB_RSP: 12,
  VMRK_REQ: 13,
  VMRK_RSP: 14,
  ABSORB_NOMA_REQ: 15,
  ABSORB_NOMA_RSP: 16,
  TSC_INFO_REQ: 17,
  TSC_INFO_RSP: 18,
} as const);

export interface GuestMessageHeader {
  readonly authTag: Uint8Array;
  readonly msgSeqno: bigint;
  readonly algo: number;
  readonly hdrVersion: number;
  readonly hdrSize: number;
  readonly msgType: number;
  readonly msgVersion: number;
  readonly msgSize: number;
  readonly msgVmpck: number;
}

export function decodeGuestMessageHeader(b: Uint8Array): GuestMessageHeader {
  if (b.length < GUEST_MSG_HDR_SIZE)
    throw new RangeError(`guest message: ${b.length} bytes, header needs 0x60`);
  return {
    authTag: b.slice(0, 32),
    msgSeqno: u64(b, 0x20),
    algo: b[0x30] ?? 0,
    hdrVersion: b[0x31] ?? 0,
    hdrSize: u16(b, 0x32),
    msgType: b[0x34] ?? 0,
    msgVersion: b[0x35] ?? 0,
    msgSize: u16(b, 0x36),
    msgVmpck: b[0x3c] ?? 0,
  };
}

function iv(seqno: bigint): Buffer {
  const out = Buffer.alloc(12);
  out.writeBigUInt64LE(BigInt.asUintN(64, seqno), 0);
  return out;
}

export interface SealInput {
  /** The 32-byte VMPCK. */
  readonly key: Uint8Array;
  readonly seqno: bigint;
  readonly msgType: number;
  readonly msgVersion?: number;
  /** VMPCK index 0-3 written to MSG_VMPCK. */
  readonly vmpck: number;
  readonly payload: Uint8Array;
}

/** Build header + AES-256-GCM ciphertext (header 0x60 bytes, then MSG_SIZE bytes). */
export function sealGuestMessage(m: SealInput): Uint8Array {
  if (m.key.length !== 32) throw new RangeError(`guest message: VMPCK is ${m.key.length} bytes, expected 32`);
  if (m.payload.length > 0xffff)
    throw new RangeError(`guest message: payload ${m.payload.length} bytes exceeds u16 MSG_SIZE`);
  const out = new Uint8Array(GUEST_MSG_HDR_SIZE + m.payload.length);
  putU64(out, 0x20, m.seqno);
  out[0x30] = AEAD_ALGO_AES_256_GCM;
  out[0x31] = GUEST_MSG_HDR_VERSION;
  putU16(out, 0x32, GUEST_MSG_HDR_SIZE);
  out[0x34] = m.msgType;
  out[0x35] = m.msgVersion ?? 1;
  putU16(out, 0x36, m.payload.length);
  putU32(out, 0x38, 0);
  out[0x3c] = m.vmpck;
  const c = createCipheriv('aes-256-gcm', m.key, iv(m.seqno), { authTagLength: GCM_TAG });
  c.setAAD(out.subarray(GUEST_MSG_AAD_OFFSET, GUEST_MSG_AAD_OFFSET + GUEST_MSG_AAD_SIZE));
  const ct = Buffer.concat([c.update(m.payload), c.final()]);
  out.set(ct, GUEST_MSG_HDR_SIZE);
  out.set(c.getAuthTag(), 0);
  return out;
}

/**
 * Authenticate and decrypt a message whose header is already validated. Returns the plaintext
 * payload, or null when the tag does not verify (wrong key, tampered header or payload).
 */
export function openGuestMessage(msg: Uint8Array, key: Uint8Array): Uint8Array | null {
  const hdr = decodeGuestMessageHeader(msg);
  if (msg.length < GUEST_MSG_HDR_SIZE + hdr.msgSize || key.length !== 32) return null;
  const d = createDecipheriv('aes-256-gcm', key, iv(hdr.msgSeqno), { authTagLength: GCM_TAG });
  d.setAAD(msg.subarray(GUEST_MSG_AAD_OFFSET, GUEST_MSG_AAD_OFFSET + GUEST_MSG_AAD_SIZE));
  d.setAuthTag(msg.subarray(0, GCM_TAG));
  try {
    return new Uint8Array(
      Buffer.concat([
        d.update(msg.subarray(GUEST_MSG_HDR_SIZE, GUEST_MSG_HDR_SIZE + hdr.msgSize)),
        d.final(),
      ]),
    );
  } catch {
    return null;
  }
}
