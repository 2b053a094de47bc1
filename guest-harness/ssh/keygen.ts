/**
 * ed25519 key pairs that always parse. ssh2 1.17's `utils.generateKeyPairSync('ed25519')` drops a
 * leading zero byte of the 32-byte public key (about 1 key in 256: the blob then carries 31 bytes),
 * and `utils.parseKey` rightly refuses the result ("Malformed OpenSSH public key"). Every key snpsim
 * generates (the simulated guest's host key, the run key of `--target sim`, test and bench keys)
 * comes from here, which draws again until both halves parse and the public key is 32 bytes.
 */
import { utils } from './ssh2.js';

/** RFC 8709 §4: an ssh-ed25519 public key is 32 bytes. */
const ED25519_PUBLIC_KEY_BYTES = 32;
/** A well-formed draw fails with probability ~1/256, so 64 failures in a row mean a real fault. */
const MAX_DRAWS = 64;

export interface SshKeyPair {
  /** OpenSSH private key text. */
  readonly private: string;
  /** `ssh-ed25519 AAAA... [comment]`. */
  readonly public: string;
}

export interface SshKeygenOptions {
  readonly comment?: string;
  readonly passphrase?: string;
  readonly cipher?: string;
  readonly rounds?: number;
}

function wellFormed(pair: SshKeyPair, passphrase: string | undefined): boolean {
  const pub = utils.parseKey(pair.public);
  const priv = utils.parseKey(pair.private, passphrase);
  if (pub instanceof Error || priv instanceof Error || Array.isArray(pub) || Array.isArray(priv))
    return false;
  const blob = pub.getPublicSSH();
  // Blob: string "ssh-ed25519" (4 + 11 bytes), then string key (4 + 32 bytes).
  return blob.length === 4 + 11 + 4 + ED25519_PUBLIC_KEY_BYTES && priv.getPublicSSH().equals(blob);
}

/** A fresh ed25519 key pair whose public and private halves both parse (see the module comment). */
export function generateEd25519KeyPair(options: SshKeygenOptions = {}): SshKeyPair {
  for (let draw = 0; draw < MAX_DRAWS; draw++) {
    const pair = utils.generateKeyPairSync('ed25519', options);
    if (wellFormed(pair, options.passphrase)) return pair;
  }
  throw new Error(`ssh2 produced ${MAX_DRAWS} malformed ed25519 key pairs in a row`);
}
