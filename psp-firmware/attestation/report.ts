/**
 * ATTESTATION_REPORT (0x4A0 bytes), firmware-rmp.md §F [FW `snp_attestation_report_t`, VT
 * `AttestationReport`]. Encode/decode keep every field at its exact offset; the signature covers bytes
 * 0x000-0x29F.
 */
import { u32, u64 } from '../firmware/buffers.js';
import { ECDSA_SIG_SIZE } from './ecdsa.js';

export const REPORT_SIZE = 0x4a0; // [FW] sizeof(snp_attestation_report_t)
export const REPORT_SIGNED_SIZE = 0x2a0; // [FW] offsetof(snp_attestation_report_t, signature)

/** Byte offsets of the report fields [FW sev_rmp.h / VT]. */
export const ReportOffset = Object.freeze({
  VERSION: 0x000,
  GUEST_SVN: 0x004,
  POLICY: 0x008,
  FAMILY_ID: 0x010,
  IMAGE_ID: 0x020,
  VMPL: 0x030,
  SIGNATURE_ALGO: 0x034,
  CURRENT_TCB: 0x038,
  PLATFORM_INFO: 0x040,
  /** bit 0 AUTHOR_KEY_EN, bit 1 MASK_CHIP_KEY, bits 4:2 SIGNING_KEY. */
  KEY_INFO: 0x048,
  REPORT_DATA: 0x050,
  MEASUREMENT: 0x090,
  HOST_DATA: 0x0c0,
  ID_KEY_DIGEST: 0x0e0,
  AUTHOR_KEY_DIGEST: 0x110,
  REPORT_ID: 0x140,
  REPORT_ID_MA: 0x160,
  REPORTED_TCB: 0x180,
  /** v3+: CPUID_FAM_ID, CPUID_MOD_ID, CPUID_STEP at 0x188, 0x189, 0x18A. */
  CPUID_FAM_ID: 0x188,
  CHIP_ID: 0x1a0,
  COMMITTED_TCB: 0x1e0,
  CURRENT_BUILD: 0x1e8,
  CURRENT_MINOR: 0x1e9,
  CURRENT_MAJOR: 0x1ea,
  COMMITTED_BUILD: 0x1ec,
  COMMITTED_MINOR: 0x1ed,
  COMMITTED_MAJOR: 0x1ee,
  LAUNCH_TCB: 0x1f0,
  /** v5 */
  LAUNCH_MIT_VECTOR: 0x1f8,
  /** v5 */
  CURRENT_MIT_VECTOR: 0x200,
  SIGNATURE: 0x2a0,
} as const);

/** PLATFORM_INFO bits (§F). */
export const PlatformInfo = Object.freeze({
  SMT_EN: 1n << 0n,
  TSME_EN: 1n << 1n,
  ECC_EN: 1n << 2n,
  RAPL_DIS: 1n << 3n,
  CIPHERTEXT_HIDING_EN: 1n << 4n,
  ALIAS_CHECK_COMPLETE: 1n << 5n,
  SEV_TIO_EN: 1n << 7n,
} as const);

/** SIGNING_KEY encodings [FW `SIGNING_KEY_*`]. */
export const SigningKey = Object.freeze({ VCEK: 0, VLEK: 1, NONE: 7 } as const);

export interface AttestationReport {
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly vmpl: number;
  readonly signatureAlgo: number;
  readonly currentTcb: bigint;
  readonly platformInfo: bigint;
  readonly authorKeyEn: boolean;
  readonly maskChipKey: boolean;
  readonly signingKey: number;
  readonly reportData: Uint8Array;
  readonly measurement: Uint8Array;
  readonly hostData: Uint8Array;
  readonly idKeyDigest: Uint8Array;
  readonly authorKeyDigest: Uint8Array;
  readonly reportId: Uint8Array;
  readonly reportIdMa: Uint8Array;
  readonly reportedTcb: bigint;
  /** v3+: CPUID family, model, stepping (0 in v2 reports). */
  readonly cpuidFamId: number;
  readonly cpuidModId: number;
  readonly cpuidStep: number;
  readonly chipId: Uint8Array;
  readonly committedTcb: bigint;
  readonly currentBuild: number;
  readonly currentMinor: number;
  readonly currentMajor: number;
  readonly committedBuild: number;
  readonly committedMinor: number;
  readonly committedMajor: number;
  readonly launchTcb: bigint;
  /** v5 */
  readonly launchMitVector: bigint;
  /** v5 */
  readonly currentMitVector: bigint;
  /** The 0x200-byte signature area (R[72] LE, S[72] LE, reserved). */
  readonly signature: Uint8Array;
}

/** Decode a report; throws RangeError when `bytes` is shorter than 0x4A0. */
export function decodeReport(bytes: Uint8Array): AttestationReport {
  if (bytes.length < REPORT_SIZE) {
    throw new RangeError(`attestation report: ${bytes.length} bytes, expected 0x4a0 (${REPORT_SIZE})`);
  }
  const o = ReportOffset;
  const keyInfo = u32(bytes, o.KEY_INFO);
  const sl = (off: number, len: number) => bytes.slice(off, off + len);
  return {
    version: u32(bytes, o.VERSION),
    guestSvn: u32(bytes, o.GUEST_SVN),
    policy: u64(bytes, o.POLICY),
    familyId: sl(o.FAMILY_ID, 16),
    imageId: sl(o.IMAGE_ID, 16),
    vmpl: u32(bytes, o.VMPL),
    signatureAlgo: u32(bytes, o.SIGNATURE_ALGO),
    currentTcb: u64(bytes, o.CURRENT_TCB),
    platformInfo: u64(bytes, o.PLATFORM_INFO),
    authorKeyEn: (keyInfo & 1) !== 0,
    maskChipKey: (keyInfo & 2) !== 0,
    signingKey: (keyInfo >>> 2) & 7,
    reportData: sl(o.REPORT_DATA, 64),
    measurement: sl(o.MEASUREMENT, 48),
    hostData: sl(o.HOST_DATA, 32),
    idKeyDigest: sl(o.ID_KEY_DIGEST, 48),
    authorKeyDigest: sl(o.AUTHOR_KEY_DIGEST, 48),
    reportId: sl(o.REPORT_ID, 32),
    reportIdMa: sl(o.REPORT_ID_MA, 32),
    reportedTcb: u64(bytes, o.REPORTED_TCB),
    cpuidFamId: bytes[o.CPUID_FAM_ID] ?? 0,
    cpuidModId: bytes[o.CPUID_FAM_ID + 1] ?? 0,
    cpuidStep: bytes[o.CPUID_FAM_ID + 2] ?? 0,
    chipId: sl(o.CHIP_ID, 64),
    committedTcb: u64(bytes, o.COMMITTED_TCB),
    currentBuild: bytes[o.CURRENT_BUILD] ?? 0,
    currentMinor: bytes[o.CURRENT_MINOR] ?? 0,
    currentMajor: bytes[o.CURRENT_MAJOR] ?? 0,
    committedBuild: bytes[o.COMMITTED_BUILD] ?? 0,
    committedMinor: bytes[o.COMMITTED_MINOR] ?? 0,
    committedMajor: bytes[o.COMMITTED_MAJOR] ?? 0,
    launchTcb: u64(bytes, o.LAUNCH_TCB),
    launchMitVector: u64(bytes, o.LAUNCH_MIT_VECTOR),
    currentMitVector: u64(bytes, o.CURRENT_MIT_VECTOR),
    signature: sl(o.SIGNATURE, ECDSA_SIG_SIZE),
  };
}

function put(dst: Uint8Array, off: number, src: Uint8Array, len: number, field: string): void {
  if (src.length !== len)
    throw new RangeError(`attestation report: ${field} is ${src.length} bytes, expected ${len}`);
  dst.set(src, off);
}

/** Encode a report (all reserved bytes zero). Throws RangeError when a byte field has the wrong size. */
export function encodeReport(r: AttestationReport): Uint8Array {
  const b = new Uint8Array(REPORT_SIZE);
  const v = new DataView(b.buffer);
  const o = ReportOffset;
  v.setUint32(o.VERSION, r.version, true);
  v.setUint32(o.GUEST_SVN, r.guestSvn, true);
  v.setBigUint64(o.POLICY, r.policy, true);
  put(b, o.FAMILY_ID, r.familyId, 16, 'FAMILY_ID');
  put(b, o.IMAGE_ID, r.imageId, 16, 'IMAGE_ID');
  v.setUint32(o.VMPL, r.vmpl, true);
  v.setUint32(o.SIGNATURE_ALGO, r.signatureAlgo, true);
  v.setBigUint64(o.CURRENT_TCB, r.currentTcb, true);
  v.setBigUint64(o.PLATFORM_INFO, r.platformInfo, true);
  v.setUint32(
    o.KEY_INFO,
    (r.authorKeyEn ? 1 : 0) | (r.maskChipKey ? 2 : 0) | ((r.signingKey & 7) << 2),
    true,
  );
  put(b, o.REPORT_DATA, r.reportData, 64, 'REPORT_DATA');
  put(b, o.MEASUREMENT, r.measurement, 48, 'MEASUREMENT');
  put(b, o.HOST_DATA, r.hostData, 32, 'HOST_DATA');
  put(b, o.ID_KEY_DIGEST, r.idKeyDigest, 48, 'ID_KEY_DIGEST');
  put(b, o.AUTHOR_KEY_DIGEST, r.authorKeyDigest, 48, 'AUTHOR_KEY_DIGEST');
  put(b, o.REPORT_ID, r.reportId, 32, 'REPORT_ID');
  put(b, o.REPORT_ID_MA, r.reportIdMa, 32, 'REPORT_ID_MA');
  v.setBigUint64(o.REPORTED_TCB, r.reportedTcb, true);
  b[o.CPUID_FAM_ID] = r.cpuidFamId;
  b[o.CPUID_FAM_ID + 1] = r.cpuidModId;
  b[o.CPUID_FAM_ID + 2] = r.cpuidStep;
  put(b, o.CHIP_ID, r.chipId, 64, 'CHIP_ID');
  v.setBigUint64(o.COMMITTED_TCB, r.committedTcb, true);
  b[o.CURRENT_BUILD] = r.currentBuild;
  b[o.CURRENT_MINOR] = r.currentMinor;
  b[o.CURRENT_MAJOR] = r.currentMajor;
  b[o.COMMITTED_BUILD] = r.committedBuild;
  b[o.COMMITTED_MINOR] = r.committedMinor;
  b[o.COMMITTED_MAJOR] = r.committedMajor;
  v.setBigUint64(o.LAUNCH_TCB, r.launchTcb, true);
  v.setBigUint64(o.LAUNCH_MIT_VECTOR, r.launchMitVector, true);
  v.setBigUint64(o.CURRENT_MIT_VECTOR, r.currentMitVector, true);
  put(b, o.SIGNATURE, r.signature, ECDSA_SIG_SIZE, 'SIGNATURE');
  return b;
}
