/**
 * Verify an attestation report's signature with a VCEK/VLEK public key — the simulated VCEK, or a
 * real one from AMD's KDS (X.509 certificate, PEM or DER, or a PEM/DER SubjectPublicKeyInfo), so a
 * report from real hardware can be checked. Only the signature is verified: certificate-chain
 * validation (ARK/ASK) is the caller's business.
 */
import { createPublicKey, type KeyObject, X509Certificate } from 'node:crypto';
import { ECDSA_SIG_SIZE, SIG_ALGO_ECDSA_P384_SHA384, verifySev } from './ecdsa.js';
import { REPORT_SIGNED_SIZE, REPORT_SIZE, ReportOffset, SigningKey } from './report.js';

export type VerifyKey = KeyObject | X509Certificate | string | Uint8Array;

export type ReportVerification =
  | { readonly ok: true }
  | {
      readonly ok: false;
      readonly reason: 'length' | 'algorithm' | 'unsigned' | 'key' | 'signature';
      readonly message: string;
    };

/** Turn a VCEK given as a KeyObject, certificate or SPKI (PEM text or DER bytes) into an EC P-384 key. */
export function toVerifyKey(key: VerifyKey): KeyObject {
  let k: KeyObject;
  if (key instanceof X509Certificate) k = key.publicKey;
  else if (typeof key === 'string') {
    k = key.includes('BEGIN CERTIFICATE') ? new X509Certificate(key).publicKey : createPublicKey(key);
  } else if (key instanceof Uint8Array) {
    const der = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
    try {
      k = new X509Certificate(der).publicKey;
    } catch {
      k = createPublicKey({ key: der, format: 'der', type: 'spki' });
    }
  } else k = key.type === 'private' ? createPublicKey(key) : key;
  const details = k.asymmetricKeyDetails;
  if (k.asymmetricKeyType !== 'ec' || details?.namedCurve !== 'secp384r1') {
    throw new TypeError(
      `verify key: expected an EC P-384 (secp384r1) key, got ${k.asymmetricKeyType} ${details?.namedCurve ?? ''}`.trim(),
    );
  }
  return k;
}

/** Check a report's signature over bytes 0x000-0x29F with `key`. Never throws for a bad report. */
export function verifyReport(report: Uint8Array, key: VerifyKey): ReportVerification {
  if (report.length !== REPORT_SIZE) {
    return { ok: false, reason: 'length', message: `report is ${report.length} bytes, expected 0x4a0` };
  }
  const view = new DataView(report.buffer, report.byteOffset, report.byteLength);
  const algo = view.getUint32(ReportOffset.SIGNATURE_ALGO, true);
  if (algo !== SIG_ALGO_ECDSA_P384_SHA384) {
    return {
      ok: false,
      reason: 'algorithm',
      message: `SIGNATURE_ALGO is ${algo}, expected 1 (ECDSA P-384 SHA-384)`,
    };
  }
  const signingKey = (view.getUint32(ReportOffset.KEY_INFO, true) >>> 2) & 7;
  if (signingKey === SigningKey.NONE) {
    return {
      ok: false,
      reason: 'unsigned',
      message: 'SIGNING_KEY is 7: the firmware did not sign this report',
    };
  }
  let k: KeyObject;
  try {
    k = toVerifyKey(key);
  } catch (e) {
    return { ok: false, reason: 'key', message: e instanceof Error ? e.message : String(e) };
  }
  const ok = verifySev(
    report.subarray(0, REPORT_SIGNED_SIZE),
    report.subarray(ReportOffset.SIGNATURE, ReportOffset.SIGNATURE + ECDSA_SIG_SIZE),
    k,
  );
  return ok
    ? { ok: true }
    : { ok: false, reason: 'signature', message: 'ECDSA P-384/SHA-384 signature does not verify' };
}
