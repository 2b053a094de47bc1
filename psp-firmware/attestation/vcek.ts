/**
 * The simulated chip identity: CHIP_ID, the VCEK "hashstick" (the root the firmware derives guest
 * keys from) and the VCEK signing key, all derived deterministically from a chip seed so the same
 * profile always yields the same keys. Real parts derive them from fused secrets; the derivation
 * below is ours (documented in README.md, section firmware):
 *
 *   CHIP_ID        = HKDF-SHA384(ikm = seed, salt = "snpsim CHIP_ID", info = "", 64 bytes)
 *   vcekSeed(tcb)  = HKDF-SHA384(ikm = seed, salt = "snpsim VCEK", info = TCB_VERSION u64 LE, 48 bytes)
 *   VCEK scalar d  = (OS2IP(HKDF-SHA384(ikm = vcekSeed, salt = "", info = "snpsim VCEK ECDSA P-384", 56 bytes))
 *                    mod (n - 1)) + 1                      (FIPS 186-5 A.2.1, "extra random bits")
 *
 * As in the firmware, the VCEK depends on the TCB it is derived for (REPORTED_TCB), so SNP_CONFIG
 * with a lower REPORTED_TCB changes the signing key.
 */
import { createECDH, createPrivateKey, createPublicKey, hkdfSync, type KeyObject } from 'node:crypto';

/** Order n of the P-384 group (FIPS 186-5 / SEC 2 secp384r1). */
const P384_N =
  0xffffffffffffffffffffffffffffffffffffffffffffffffc7634d81f4372ddf581a0db248b0a77aecec196accc52973n;

function hkdf(ikm: Uint8Array, salt: string, info: Uint8Array | string, len: number): Uint8Array {
  return new Uint8Array(hkdfSync('sha384', ikm, salt, info, len));
}

function tcbBytes(tcb: bigint): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, tcb), true);
  return b;
}

/** The chip seed bytes of a hex seed string. */
export function chipSeedBytes(hex: string): Uint8Array {
  if (!/^([0-9a-fA-F]{2})+$/.test(hex))
    throw new TypeError(`chip seed: "${hex}" is not an even-length hex string`);
  return new Uint8Array(Buffer.from(hex, 'hex'));
}

/** CHIP_ID (64 bytes) of the simulated part. */
export function deriveChipId(seed: Uint8Array): Uint8Array {
  return hkdf(seed, 'snpsim CHIP_ID', '', 64);
}

/** The 48-byte VCEK root for a TCB (the firmware's `vcek_hash`), input of MSG_KEY_REQ derivations. */
export function deriveVcekSeed(seed: Uint8Array, tcb: bigint): Uint8Array {
  return hkdf(seed, 'snpsim VCEK', tcbBytes(tcb), 48);
}

export interface VcekKeyPair {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
}

/** The VCEK (ECDSA P-384) of the simulated part for a TCB. */
export function deriveVcek(seed: Uint8Array, tcb: bigint): VcekKeyPair {
  const okm = hkdf(deriveVcekSeed(seed, tcb), '', 'snpsim VCEK ECDSA P-384', 56);
  const c = BigInt(`0x${Buffer.from(okm).toString('hex')}`);
  const d = (c % (P384_N - 1n)) + 1n;
  const dBytes = Buffer.from(d.toString(16).padStart(96, '0'), 'hex');
  const ecdh = createECDH('secp384r1');
  ecdh.setPrivateKey(dBytes);
  const pub = ecdh.getPublicKey(); // 0x04 || X[48] || Y[48]
  const jwk = {
    kty: 'EC',
    crv: 'P-384',
    d: dBytes.toString('base64url'),
    x: pub.subarray(1, 49).toString('base64url'),
    y: pub.subarray(49, 97).toString('base64url'),
  };
  const privateKey = createPrivateKey({ key: jwk, format: 'jwk' });
  return { privateKey, publicKey: createPublicKey(privateKey) };
}

/** The identity of one simulated part: CHIP_ID and per-TCB VCEKs, derived once and cached. */
export class ChipIdentity {
  readonly seed: Uint8Array;
  readonly chipId: Uint8Array;
  readonly #seeds = new Map<bigint, Uint8Array>();
  readonly #keys = new Map<bigint, VcekKeyPair>();

  constructor(seedHex: string) {
    this.seed = chipSeedBytes(seedHex);
    this.chipId = deriveChipId(this.seed);
  }

  /** The VCEK root ("hashstick") for a TCB. */
  vcekSeed(tcb: bigint): Uint8Array {
    let s = this.#seeds.get(tcb);
    if (!s) {
      s = deriveVcekSeed(this.seed, tcb);
      this.#seeds.set(tcb, s);
    }
    return s;
  }

  /** The VCEK key pair for a TCB (the firmware signs with the one of REPORTED_TCB). */
  vcek(tcb: bigint): VcekKeyPair {
    let k = this.#keys.get(tcb);
    if (!k) {
      k = deriveVcek(this.seed, tcb);
      this.#keys.set(tcb, k);
    }
    return k;
  }
}
