/**
 * SSH public-key blobs (RFC 4253 §6.6 wire encoding) and their SHA-256 fingerprints as OpenSSH
 * prints them (`ssh-keygen -l`: `SHA256:` + unpadded base64 of SHA-256 over the blob).
 */
import { createHash } from 'node:crypto';

const FINGERPRINT_RE = /^SHA256:[A-Za-z0-9+/]{43}$/;

/** `SHA256:...` of a public-key blob. */
export function sshFingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/** A `SHA256:` fingerprint as typed by a user, or undefined when it is not one (43 base64 chars). */
export function parseFingerprint(text: string): string | undefined {
  const trimmed = text.trim();
  return FINGERPRINT_RE.test(trimmed) ? trimmed : undefined;
}

/** The key type named inside a blob (its first SSH string), or undefined when malformed. */
export function blobKeyType(blob: Uint8Array): string | undefined {
  if (blob.length < 4) return undefined;
  const view = new DataView(blob.buffer, blob.byteOffset, blob.byteLength);
  const length = view.getUint32(0);
  if (length === 0 || length > 64 || 4 + length > blob.length) return undefined;
  const type = Buffer.from(blob.subarray(4, 4 + length)).toString('latin1');
  return /^[a-z0-9@.-]+$/.test(type) ? type : undefined;
}

/** `ssh-ed25519 AAAA...`: the public-key line form of a blob. */
export function publicKeyLine(blob: Uint8Array): string {
  return `${blobKeyType(blob) ?? 'unknown'} ${Buffer.from(blob).toString('base64')}`;
}
