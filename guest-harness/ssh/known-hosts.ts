/**
 * OpenSSH known_hosts: parser and matcher, following OpenSSH's hostfile.c / match.c semantics
 * (sshd(8) "SSH_KNOWN_HOSTS FILE FORMAT"):
 * - `[marker] hostpatterns keytype base64-key [comment]`; markers `@revoked` and `@cert-authority`;
 *   blank lines and `#` comments skipped; a line that cannot be parsed is reported and skipped.
 * - Host patterns: comma list with `*`/`?` wildcards and `!` negation, matched case-insensitively
 *   against the lookup name, which is `host` for port 22 and `[host]:port` otherwise; a hashed field
 *   `|1|base64(salt)|base64(HMAC-SHA1(salt, name))` matches that one name.
 * - A lookup (check_hostkeys_by_key_or_type): an entry without marker holding the offered key is OK;
 *   any other key for the host makes it CHANGED; an `@revoked` entry for the host holding the offered
 *   key makes it REVOKED whatever else matched. `@cert-authority` entries do not vouch for plain keys.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { blobKeyType } from './fingerprint.js';

export type KnownHostMarker = 'none' | 'revoked' | 'cert-authority';

export interface HostPattern {
  readonly negated: boolean;
  /** Lower-cased glob. */
  readonly glob: string;
}

export type HostField =
  | { readonly kind: 'hashed'; readonly salt: Buffer; readonly hash: Buffer }
  | { readonly kind: 'patterns'; readonly patterns: readonly HostPattern[] };

export interface KnownHostEntry {
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  readonly marker: KnownHostMarker;
  readonly hosts: HostField;
  readonly keyType: string;
  /** Public-key blob. */
  readonly key: Buffer;
}

export interface KnownHostsProblem {
  readonly file: string;
  readonly line: number;
  readonly message: string;
}

export interface KnownHosts {
  readonly entries: readonly KnownHostEntry[];
  readonly problems: readonly KnownHostsProblem[];
}

/** Key types OpenSSH writes in known_hosts (sshkey.c keytypes[]). */
const KEY_TYPES: ReadonlySet<string> = new Set([
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'ssh-rsa',
  'ssh-dss',
  'sk-ssh-ed25519@openssh.com',
  'sk-ecdsa-sha2-nistp256@openssh.com',
]);

/** OpenSSH hostfile.h: HASH_MAGIC "|1|", salt and hash are SHA-1 sized (20 bytes). */
const HASH_MAGIC = '|1|';
const SHA1_LEN = 20;
const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;

function decodeBase64(text: string): Buffer | undefined {
  if (!BASE64_RE.test(text) || text.length % 4 !== 0) return undefined;
  return Buffer.from(text, 'base64');
}

function parseHostField(field: string): HostField | string {
  if (field.startsWith('|')) {
    if (!field.startsWith(HASH_MAGIC)) return `unknown host hash format ${JSON.stringify(field.slice(0, 4))}`;
    const parts = field.slice(HASH_MAGIC.length).split('|');
    const salt = parts.length === 2 ? decodeBase64(parts[0] ?? '') : undefined;
    const hash = parts.length === 2 ? decodeBase64(parts[1] ?? '') : undefined;
    if (salt?.length !== SHA1_LEN || hash?.length !== SHA1_LEN)
      return 'hashed host field is not |1|base64(20-byte salt)|base64(20-byte HMAC-SHA1)';
    return { kind: 'hashed', salt, hash };
  }
  const patterns: HostPattern[] = [];
  for (const raw of field.split(',')) {
    const negated = raw.startsWith('!');
    const glob = (negated ? raw.slice(1) : raw).toLowerCase();
    if (glob === '') return `empty host pattern in ${JSON.stringify(field)}`;
    patterns.push({ negated, glob });
  }
  return { kind: 'patterns', patterns };
}

/** Parses known_hosts text; lines that cannot be used are listed in `problems`, never thrown. */
export function parseKnownHosts(text: string, file: string): KnownHosts {
  const entries: KnownHostEntry[] = [];
  const problems: KnownHostsProblem[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] ?? '').replace(/\r$/, '').trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const problem = (message: string) => problems.push({ file, line: i + 1, message });
    const fields = raw.split(/[ \t]+/);
    let marker: KnownHostMarker = 'none';
    if (fields[0]?.startsWith('@')) {
      const name = fields.shift();
      if (name === '@revoked') marker = 'revoked';
      else if (name === '@cert-authority') marker = 'cert-authority';
      else {
        problem(`unknown marker ${JSON.stringify(name)} (OpenSSH knows @revoked and @cert-authority)`);
        continue;
      }
    }
    const [hostText, keyType, keyText] = fields;
    if (hostText === undefined || keyType === undefined || keyText === undefined) {
      problem('expected [marker] hostpatterns keytype base64-key [comment]');
      continue;
    }
    const hosts = parseHostField(hostText);
    if (typeof hosts === 'string') {
      problem(hosts);
      continue;
    }
    if (!KEY_TYPES.has(keyType)) {
      problem(`unsupported key type ${JSON.stringify(keyType)}`);
      continue;
    }
    const key = decodeBase64(keyText);
    if (key === undefined) {
      problem('key is not valid base64');
      continue;
    }
    const inner = blobKeyType(key);
    if (inner !== keyType) {
      problem(`key blob says ${JSON.stringify(inner ?? '?')} but the line says ${keyType}`);
      continue;
    }
    entries.push({ file, line: i + 1, marker, hosts, keyType, key });
  }
  return { entries, problems };
}

/** The name OpenSSH looks up (sshconnect.c get_hostfile_hostname_ipaddr): `host` or `[host]:port`. */
export function knownHostsName(host: string, port: number): string {
  const lower = host.toLowerCase();
  return port === 22 ? lower : `[${lower}]:${port}`;
}

/** Glob match with `*` and `?` (match.c match_pattern), on lower-cased strings. */
export function globMatch(text: string, glob: string): boolean {
  let t = 0;
  let g = 0;
  let starG = -1;
  let starT = 0;
  while (t < text.length) {
    const c = glob[g];
    if (c === '*') {
      starG = g++;
      starT = t;
    } else if (c !== undefined && (c === '?' || c === text[t])) {
      g++;
      t++;
    } else if (starG >= 0) {
      g = starG + 1;
      t = ++starT;
    } else {
      return false;
    }
  }
  while (glob[g] === '*') g++;
  return g === glob.length;
}

function hmacName(salt: Buffer, name: string): Buffer {
  return createHmac('sha1', salt).update(name).digest();
}

/** Whether an entry's host field matches the lookup name (negated patterns win, match.c). */
export function hostMatches(hosts: HostField, name: string): boolean {
  if (hosts.kind === 'hashed') return timingSafeEqual(hmacName(hosts.salt, name), hosts.hash);
  let positive = false;
  for (const p of hosts.patterns) {
    if (globMatch(name, p.glob)) {
      if (p.negated) return false;
      positive = true;
    }
  }
  return positive;
}

/** `|1|salt|hash` for a name (what `ssh-keygen -H` and HashKnownHosts write). */
export function hashHostName(name: string, salt: Buffer = randomBytes(SHA1_LEN)): string {
  if (salt.length !== SHA1_LEN) throw new RangeError(`salt must be ${SHA1_LEN} bytes`);
  return `${HASH_MAGIC}${salt.toString('base64')}|${hmacName(salt, name).toString('base64')}`;
}

/** A known_hosts line for a name and key blob, hashed or plain (hostfile.c write_host_entry). */
export function formatKnownHostsLine(name: string, key: Uint8Array, hashed: boolean): string {
  const type = blobKeyType(key);
  if (type === undefined) throw new RangeError('malformed public-key blob');
  const host = hashed ? hashHostName(name) : name;
  return `${host} ${type} ${Buffer.from(key).toString('base64')}`;
}

export type HostKeyCheck =
  | { readonly status: 'ok'; readonly entry: KnownHostEntry }
  | { readonly status: 'revoked'; readonly entry: KnownHostEntry }
  | { readonly status: 'changed'; readonly known: readonly KnownHostEntry[] }
  | { readonly status: 'unknown'; readonly certAuthorities: readonly KnownHostEntry[] };

/** Looks up an offered host key for a name (OpenSSH check_key_in_hostkeys). */
export function checkHostKey(knownHosts: KnownHosts, name: string, key: Uint8Array): HostKeyCheck {
  const offered = Buffer.from(key);
  let ok: KnownHostEntry | undefined;
  const known: KnownHostEntry[] = [];
  const certAuthorities: KnownHostEntry[] = [];
  for (const entry of knownHosts.entries) {
    if (!hostMatches(entry.hosts, name)) continue;
    const same = entry.key.equals(offered);
    if (entry.marker === 'revoked') {
      if (same) return { status: 'revoked', entry };
    } else if (entry.marker === 'cert-authority') {
      certAuthorities.push(entry);
    } else if (same) {
      ok ??= entry;
    } else {
      known.push(entry);
    }
  }
  if (ok !== undefined) return { status: 'ok', entry: ok };
  if (known.length > 0) return { status: 'changed', known };
  return { status: 'unknown', certAuthorities };
}

/** Key types known for a name (non-revoked, non-CA entries), to prefer them in key exchange. */
export function knownKeyTypes(knownHosts: KnownHosts, name: string): string[] {
  const types: string[] = [];
  for (const entry of knownHosts.entries) {
    if (entry.marker === 'none' && !types.includes(entry.keyType) && hostMatches(entry.hosts, name))
      types.push(entry.keyType);
  }
  return types;
}
