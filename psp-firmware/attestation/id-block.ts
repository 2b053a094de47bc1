/**
 * The ID block (96 bytes) and ID authentication information structure (4096 bytes) given to
 * SNP_LAUNCH_FINISH, firmware-rmp.md §E.4 [FW `snp_mcmd_launch_finish_id_block_t`,
 * `snp_mcmd_launch_finish_id_auth_page_t`; VT]. Builders sign with node:crypto keys so users (and
 * tests) can produce the structures a guest owner would.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { putU32, putU64, u32, u64 } from '../firmware/buffers.js';
import {
  ECC_PUBKEY_SIZE,
  ECDSA_SIG_SIZE,
  encodeSevPublicKey,
  SIG_ALGO_ECDSA_P384_SHA384,
  signSev,
} from './ecdsa.js';

export const ID_BLOCK_SIZE = 0x60; // [FW] sizeof(snp_mcmd_launch_finish_id_block_t); KVM_SEV_SNP_ID_BLOCK_SIZE 96
export const ID_AUTH_SIZE = 0x1000; // [FW] sizeof(snp_mcmd_launch_finish_id_auth_page_t); KVM_SEV_SNP_ID_AUTH_SIZE
export const ID_BLOCK_VERSION = 1; // [FW] SNP_LAUNCH_FINISH_ID_BLOCK_MAX_VERSION

/** Offsets in the ID block [FW snp_mcmd_launch_finish_id_block_t]. */
export const IdBlockOffset = Object.freeze({
  /** Expected launch digest, 48 bytes. */
  LD: 0x00,
  FAMILY_ID: 0x30,
  IMAGE_ID: 0x40,
  VERSION: 0x50,
  GUEST_SVN: 0x54,
  POLICY: 0x58,
} as const);

/** Offsets in the ID auth structure [FW]. */
export const IdAuthOffset = Object.freeze({
  ID_KEY_ALGO: 0x000,
  AUTH_KEY_ALGO: 0x004,
  ID_BLOCK_SIG: 0x040,
  ID_KEY: 0x240,
  ID_KEY_SIG: 0x680,
  AUTHOR_KEY: 0x880,
} as const);

export interface IdBlock {
  /** Expected launch digest (48 bytes). */
  readonly ld: Uint8Array;
  readonly familyId: Uint8Array;
  readonly imageId: Uint8Array;
  readonly version: number;
  readonly guestSvn: number;
  readonly policy: bigint;
}

export function encodeIdBlock(b: {
  ld: Uint8Array;
  policy: bigint;
  familyId?: Uint8Array;
  imageId?: Uint8Array;
  version?: number;
  guestSvn?: number;
}): Uint8Array {
  if (b.ld.length !== 48) throw new RangeError(`ID block: LD is ${b.ld.length} bytes, expected 48`);
  const o = IdBlockOffset;
  const out = new Uint8Array(ID_BLOCK_SIZE);
  out.set(b.ld, o.LD);
  if (b.familyId) out.set(b.familyId.subarray(0, 16), o.FAMILY_ID);
  if (b.imageId) out.set(b.imageId.subarray(0, 16), o.IMAGE_ID);
  putU32(out, o.VERSION, b.version ?? ID_BLOCK_VERSION);
  putU32(out, o.GUEST_SVN, b.guestSvn ?? 0);
  putU64(out, o.POLICY, b.policy);
  return out;
}

export function decodeIdBlock(b: Uint8Array): IdBlock {
  const o = IdBlockOffset;
  return {
    ld: b.slice(o.LD, o.FAMILY_ID),
    familyId: b.slice(o.FAMILY_ID, o.IMAGE_ID),
    imageId: b.slice(o.IMAGE_ID, o.VERSION),
    version: u32(b, o.VERSION),
    guestSvn: u32(b, o.GUEST_SVN),
    policy: u64(b, o.POLICY),
  };
}

export interface IdAuthInput {
  /** The 96-byte ID block to sign. */
  readonly idBlock: Uint8Array;
  /** ID key (EC P-384 private key): signs the ID block. */
  readonly idKey: KeyObject;
  /** Optional author key (EC P-384 private key): signs the 0x404-byte ID key. */
  readonly authorKey?: KeyObject;
  /** Override the algorithm fields (default 1, ECDSA P-384 with SHA-384). */
  readonly idKeyAlgo?: number;
  readonly authKeyAlgo?: number;
}

/** Build a 4096-byte ID auth structure: signatures R/S LE in 0x200 areas, keys in 0x404 areas. */
export function buildIdAuth(i: IdAuthInput): Uint8Array {
  const out = new Uint8Array(ID_AUTH_SIZE);
  putU32(out, IdAuthOffset.ID_KEY_ALGO, i.idKeyAlgo ?? SIG_ALGO_ECDSA_P384_SHA384);
  putU32(out, IdAuthOffset.AUTH_KEY_ALGO, i.authKeyAlgo ?? (i.authorKey ? SIG_ALGO_ECDSA_P384_SHA384 : 0));
  out.set(signSev(i.idBlock, i.idKey), IdAuthOffset.ID_BLOCK_SIG);
  const idPub = encodeSevPublicKey(i.idKey);
  out.set(idPub, IdAuthOffset.ID_KEY);
  if (i.authorKey) {
    out.set(signSev(idPub, i.authorKey), IdAuthOffset.ID_KEY_SIG);
    out.set(encodeSevPublicKey(i.authorKey), IdAuthOffset.AUTHOR_KEY);
  }
  return out;
}

/** The areas of an ID auth structure, as views. */
export function idAuthFields(a: Uint8Array): {
  idKeyAlgo: number;
  authKeyAlgo: number;
  idBlockSig: Uint8Array;
  idKey: Uint8Array;
  idKeySig: Uint8Array;
  authorKey: Uint8Array;
} {
  const o = IdAuthOffset;
  return {
    idKeyAlgo: u32(a, o.ID_KEY_ALGO),
    authKeyAlgo: u32(a, o.AUTH_KEY_ALGO),
    idBlockSig: a.subarray(o.ID_BLOCK_SIG, o.ID_BLOCK_SIG + ECDSA_SIG_SIZE),
    idKey: a.subarray(o.ID_KEY, o.ID_KEY + ECC_PUBKEY_SIZE),
    idKeySig: a.subarray(o.ID_KEY_SIG, o.ID_KEY_SIG + ECDSA_SIG_SIZE),
    authorKey: a.subarray(o.AUTHOR_KEY, o.AUTHOR_KEY + ECC_PUBKEY_SIZE),
  };
}

/** ID_KEY_DIGEST / AUTHOR_KEY_DIGEST: SHA-384 of the 0x404-byte key structure [FW]. */
export function keyDigest(sevPublicKey: Uint8Array): Uint8Array {
  return new Uint8Array(createHash('sha384').update(sevPublicKey.subarray(0, ECC_PUBKEY_SIZE)).digest());
}
