/**
 * The AMD SEV key and signature formats (SEV-SNP ABI, as read in the Genoa firmware `ecc_pubkey_t` /
 * `ecdsa_sig_t` and virtee `sev::certs::snp::ecdsa`) [FW][VT], mapped to node:crypto:
 * - public key, 0x404 bytes: u32 curve (2 = P-384), QX[72] little-endian, QY[72] little-endian, 0x370 reserved;
 * - signature, 0x200 bytes: R[72] little-endian, S[72] little-endian, 368 reserved.
 * ECDSA P-384 with SHA-384 throughout (algorithm id 1).
 */
import { createPublicKey, type KeyObject, sign, verify } from 'node:crypto';
import { u32 } from '../firmware/buffers.js';

export const ECC_CURVE_P384 = 2; // [FW] ECC_CURVE_NAME_SECP384R1
export const SIG_ALGO_ECDSA_P384_SHA384 = 1; // [FW] SNP_SIGNATURE_ALGO_ECDSA_P384_SHA384
export const ECC_PUBKEY_SIZE = 0x404; // [FW] ID_KEY / AUTHOR_KEY area in the ID auth page
export const ECDSA_SIG_SIZE = 0x200; // [FW] ID_BLOCK_SIG / ID_KEY_SIG / report SIGNATURE
const COMPONENT = 72; // [FW] R, S, QX, QY are 72-byte little-endian fields
const P384_BYTES = 48;

/** Little-endian 72-byte field -> big-endian 48 bytes, or null when bytes 48..71 are not zero. */
function leToBe48(src: Uint8Array, off: number): Buffer | null {
  for (let i = P384_BYTES; i < COMPONENT; i++) if (src[off + i] !== 0) return null;
  const out = Buffer.alloc(P384_BYTES);
  for (let i = 0; i < P384_BYTES; i++) out[i] = src[off + P384_BYTES - 1 - i] ?? 0;
  return out;
}

function be48ToLe(src: Uint8Array, dst: Uint8Array, off: number): void {
  for (let i = 0; i < P384_BYTES; i++) dst[off + i] = src[P384_BYTES - 1 - i] ?? 0;
}

/** Encode an EC P-384 public key in the 0x404-byte AMD format. */
export function encodeSevPublicKey(key: KeyObject): Uint8Array {
  const jwk = key.export({ format: 'jwk' });
  if (jwk.kty !== 'EC' || jwk.crv !== 'P-384' || !jwk.x || !jwk.y) {
    throw new TypeError('encodeSevPublicKey: the key is not an EC P-384 key');
  }
  const out = new Uint8Array(ECC_PUBKEY_SIZE);
  new DataView(out.buffer).setUint32(0, ECC_CURVE_P384, true);
  be48ToLe(Buffer.from(jwk.x, 'base64url'), out, 4);
  be48ToLe(Buffer.from(jwk.y, 'base64url'), out, 4 + COMPONENT);
  return out;
}

/**
 * Decode a 0x404-byte AMD public key. Returns null when the curve is not P-384, a coordinate does
 * not fit in 48 bytes, or the point is not on the curve (node:crypto refuses it), as the firmware's
 * `ecc_pubkey_is_valid` does.
 */
export function decodeSevPublicKey(bytes: Uint8Array): KeyObject | null {
  if (bytes.length < 4 + 2 * COMPONENT) return null;
  if (u32(bytes, 0) !== ECC_CURVE_P384) return null;
  const x = leToBe48(bytes, 4);
  const y = leToBe48(bytes, 4 + COMPONENT);
  if (!x || !y) return null;
  try {
    return createPublicKey({
      key: { kty: 'EC', crv: 'P-384', x: x.toString('base64url'), y: y.toString('base64url') },
      format: 'jwk',
    });
  } catch {
    return null;
  }
}

/** ECDSA P-384/SHA-384 signature of `data` in the 0x200-byte AMD format. */
export function signSev(data: Uint8Array, privateKey: KeyObject): Uint8Array {
  const p1363 = sign('sha384', data, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  const out = new Uint8Array(ECDSA_SIG_SIZE);
  be48ToLe(p1363.subarray(0, P384_BYTES), out, 0);
  be48ToLe(p1363.subarray(P384_BYTES), out, COMPONENT);
  return out;
}

/** Verify a 0x200-byte AMD signature (only R and S are read) over `data`. */
export function verifySev(data: Uint8Array, signature: Uint8Array, publicKey: KeyObject): boolean {
  if (signature.length < 2 * COMPONENT) return false;
  const r = leToBe48(signature, 0);
  const s = leToBe48(signature, COMPONENT);
  if (!r || !s) return false;
  try {
    return verify('sha384', data, { key: publicKey, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
  } catch {
    return false;
  }
}
