/**
 * Keys of the simulated guest: its ed25519 host key (ephemeral, or persisted in a file created with
 * mode 0600) and the authorized client keys (OpenSSH authorized_keys lines without options).
 */
import { readFile, writeFile } from 'node:fs/promises';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { sshFingerprint } from '../ssh/fingerprint.js';
import { generateEd25519KeyPair } from '../ssh/keygen.js';
import { type ParsedKey, utils } from '../ssh/ssh2.js';

export interface HostKeyMaterial {
  /** OpenSSH private key text. */
  readonly privateKey: string;
  /** `SHA256:...` of the public key, as `ssh-keygen -l` prints it. */
  readonly fingerprint: string;
  /** `ssh-ed25519 AAAA...`. */
  readonly publicKeyLine: string;
  /** `ephemeral`, `loaded from FILE` or `created FILE`. */
  readonly source: string;
}

function material(privateKey: string, source: string): HostKeyMaterial {
  const parsed = single(utils.parseKey(privateKey), source);
  if (!parsed.isPrivateKey())
    throw new SnpsimError(SnpsimErrorCode.INPUT_INVALID, `host key (${source}) is not a private key`);
  const blob = parsed.getPublicSSH();
  return {
    privateKey,
    fingerprint: sshFingerprint(blob),
    publicKeyLine: `${parsed.type} ${blob.toString('base64')}`,
    source,
  };
}

function single(parsed: ParsedKey | ParsedKey[] | Error, what: string): ParsedKey {
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (key === undefined || key instanceof Error)
    throw new SnpsimError(
      SnpsimErrorCode.INPUT_INVALID,
      `${what}: not a usable key${key instanceof Error ? ` (${key.message})` : ''}`,
    );
  return key;
}

/** A fresh ed25519 host key that lives as long as the process. */
export function ephemeralHostKey(): HostKeyMaterial {
  return material(generateEd25519KeyPair({ comment: 'snpsim-sim-guest' }).private, 'ephemeral');
}

/** Loads the host key from `file`, or creates it there (0600) with its `.pub` beside it. */
export async function persistentHostKey(file: string): Promise<HostKeyMaterial> {
  try {
    return material(await readFile(file, 'utf8'), `loaded from ${file}`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
      if (SnpsimError.is(error)) throw error;
      throw new SnpsimError(
        SnpsimErrorCode.INPUT_INVALID,
        `cannot read host key ${file}: ${(error as Error).message}`,
        { file },
        error,
      );
    }
  }
  const pair = generateEd25519KeyPair({ comment: 'snpsim-sim-guest' });
  try {
    await writeFile(file, pair.private, { mode: 0o600, flag: 'wx' });
    await writeFile(`${file}.pub`, `${pair.public}\n`, { mode: 0o644 });
  } catch (error) {
    throw new SnpsimError(
      SnpsimErrorCode.INPUT_INVALID,
      `cannot create host key ${file}: ${(error as Error).message}`,
      { file },
      error,
    );
  }
  return material(pair.private, `created ${file}`);
}

export interface AuthorizedKeys {
  readonly keys: readonly ParsedKey[];
  /** Lines skipped, with the reason (`FILE:LINE: ...`). */
  readonly problems: readonly string[];
}

const KEY_LINE_RE = /^(ssh-ed25519|ecdsa-sha2-nistp(?:256|384|521)|ssh-rsa) ([A-Za-z0-9+/]+={0,2})(?: .*)?$/;

/** Parses authorized_keys text; lines with options (`restrict,command=...`) are skipped, not honoured. */
export function parseAuthorizedKeys(text: string, source: string): AuthorizedKeys {
  const keys: ParsedKey[] = [];
  const problems: string[] = [];
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '').trim();
    if (line === '' || line.startsWith('#')) return;
    const match = KEY_LINE_RE.exec(line);
    const parsed = match === null ? undefined : utils.parseKey(`${match[1]} ${match[2]}`);
    if (parsed === undefined || parsed instanceof Error || Array.isArray(parsed)) {
      problems.push(
        `${source}:${i + 1}: not a plain "keytype base64 [comment]" line (key options are not supported by the sim)`,
      );
      return;
    }
    keys.push(parsed);
  });
  return { keys, problems };
}

export async function readAuthorizedKeys(file: string): Promise<AuthorizedKeys> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SnpsimError(
      SnpsimErrorCode.INPUT_INVALID,
      `cannot read authorized keys ${file}: ${(error as Error).message}`,
      { file },
      error,
    );
  }
  return parseAuthorizedKeys(text, file);
}
