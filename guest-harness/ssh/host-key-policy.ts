/**
 * Host-key verification for one connection: pinned `SHA256:` fingerprints, or known_hosts files
 * (strict by default; `accept-new` appends unknown hosts like OpenSSH's
 * `StrictHostKeyChecking=accept-new` and still refuses changed or revoked keys). Every refusal is a
 * SnpsimError whose message shows the offered fingerprint and how to pin it.
 */
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { blobKeyType, sshFingerprint } from './fingerprint.js';
import {
  checkHostKey,
  formatKnownHostsLine,
  type KnownHostEntry,
  type KnownHosts,
  type KnownHostsProblem,
  knownHostsName,
  knownKeyTypes,
  parseKnownHosts,
} from './known-hosts.js';

export type HostKeyMode = 'strict' | 'accept-new';

export interface HostKeyPolicy {
  /** `SHA256:` fingerprints; when any is given, the key must match one and known_hosts is not read. */
  readonly pins?: readonly string[];
  /**
   * known_hosts files, read in order; `accept-new` appends to the first. Default: `~/.ssh/known_hosts`
   * then `/etc/ssh/ssh_known_hosts` (OpenSSH's UserKnownHostsFile and GlobalKnownHostsFile).
   */
  readonly knownHostsFiles?: readonly string[];
  /** Default `strict`. */
  readonly mode?: HostKeyMode;
  /** Write appended entries hashed (`|1|`), as OpenSSH does with `HashKnownHosts yes`. Default false. */
  readonly hashKnownHosts?: boolean;
}

export function defaultKnownHostsFiles(): string[] {
  return [join(homedir(), '.ssh', 'known_hosts'), '/etc/ssh/ssh_known_hosts'];
}

/** How an accepted key was vouched for. */
export interface HostKeyAcceptance {
  readonly fingerprint: string;
  readonly keyType: string;
  /** `pinned`, `known_hosts FILE:LINE` or `added to FILE`. */
  readonly how: string;
}

export type HostKeyVerdict =
  | { readonly ok: true; readonly accepted: HostKeyAcceptance }
  | { readonly ok: false; readonly error: SnpsimError };

async function readKnownHosts(files: readonly string[]): Promise<{ hosts: KnownHosts; missing: string[] }> {
  const entries: KnownHostEntry[] = [];
  const problems: KnownHostsProblem[] = [];
  const missing: string[] = [];
  for (const file of files) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') {
        missing.push(file);
        continue;
      }
      throw new SnpsimError(
        SnpsimErrorCode.INPUT_INVALID,
        `cannot read known_hosts file ${file}: ${(error as Error).message}`,
        { file },
        error,
      );
    }
    const parsed = parseKnownHosts(text, file);
    entries.push(...parsed.entries);
    problems.push(...parsed.problems);
  }
  return { hosts: { entries, problems }, missing };
}

/** Host-key algorithms to offer, known types first (as OpenSSH orders HostKeyAlgorithms). */
export async function preferredHostKeyAlgorithms(
  policy: HostKeyPolicy,
  host: string,
  port: number,
): Promise<string[]> {
  const defaults = [
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
    'rsa-sha2-512',
    'rsa-sha2-256',
    'ssh-rsa',
  ];
  if ((policy.pins?.length ?? 0) > 0) return defaults;
  const { hosts } = await readKnownHosts(policy.knownHostsFiles ?? defaultKnownHostsFiles());
  const first: string[] = [];
  for (const type of knownKeyTypes(hosts, knownHostsName(host, port))) {
    if (type === 'ssh-rsa') first.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else if (defaults.includes(type)) first.push(type);
  }
  return [...first, ...defaults.filter((a) => !first.includes(a))];
}

function howToPin(host: string, port: number, fingerprint: string): string {
  return (
    `If you have checked this fingerprint out of band (e.g. \`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub\` ` +
    `on the guest console), pin it with --host-key ${fingerprint}, or add the host to known_hosts with ` +
    `\`ssh-keyscan -p ${port} ${host} >> ~/.ssh/known_hosts\` (or rerun once with --accept-new).`
  );
}

function where(entry: KnownHostEntry): string {
  return `${entry.file}:${entry.line}`;
}

/** In-process serialisation of appends per file, so parallel connections do not add duplicates. */
const appendLocks = new Map<string, Promise<unknown>>();

async function appendEntry(file: string, line: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  let prefix = '';
  try {
    const text = await readFile(file, 'latin1');
    if (text.length > 0 && !text.endsWith('\n')) prefix = '\n';
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  await appendFile(file, `${prefix}${line}\n`, { mode: 0o600 });
}

/** Verifies a host key offered by `host:port` against the policy. Never throws for a refusal. */
export async function verifyHostKey(
  policy: HostKeyPolicy,
  host: string,
  port: number,
  key: Uint8Array,
): Promise<HostKeyVerdict> {
  const fingerprint = sshFingerprint(key);
  const keyType = blobKeyType(key) ?? 'unknown';
  const endpoint = `${host}:${port}`;
  const offered = `${keyType} ${fingerprint}`;
  const details = { host, port, fingerprint, keyType };
  const pins = policy.pins ?? [];
  if (pins.length > 0) {
    if (pins.includes(fingerprint)) return { ok: true, accepted: { fingerprint, keyType, how: 'pinned' } };
    return {
      ok: false,
      error: new SnpsimError(
        SnpsimErrorCode.SSH_HOSTKEY_MISMATCH,
        `host key of ${endpoint} does not match the pinned key: offered ${offered}, pinned ${pins.join(', ')}. ` +
          `Possible man-in-the-middle or a reinstalled guest. ${howToPin(host, port, fingerprint)}`,
        { ...details, pins },
      ),
    };
  }
  const files = policy.knownHostsFiles ?? defaultKnownHostsFiles();
  const name = knownHostsName(host, port);
  const run = async (): Promise<HostKeyVerdict> => {
    const { hosts, missing } = await readKnownHosts(files);
    const check = checkHostKey(hosts, name, key);
    switch (check.status) {
      case 'ok':
        return { ok: true, accepted: { fingerprint, keyType, how: `known_hosts ${where(check.entry)}` } };
      case 'revoked':
        return {
          ok: false,
          error: new SnpsimError(
            SnpsimErrorCode.SSH_HOSTKEY_REVOKED,
            `host key of ${endpoint} (${offered}) is marked @revoked in ${where(check.entry)}; refusing to connect`,
            { ...details, line: where(check.entry) },
          ),
        };
      case 'changed': {
        const known = check.known
          .map((e) => `${e.keyType} ${sshFingerprint(e.key)} at ${where(e)}`)
          .join('; ');
        return {
          ok: false,
          error: new SnpsimError(
            SnpsimErrorCode.SSH_HOSTKEY_MISMATCH,
            `REMOTE HOST KEY CHANGED for ${endpoint} (known_hosts name ${name}): offered ${offered}, known ${known}. ` +
              `Possible man-in-the-middle or a reinstalled guest. If the change is expected, remove the old ` +
              `entry with \`ssh-keygen -R '${name}'\`, then: ${howToPin(host, port, fingerprint)}`,
            { ...details, known: check.known.map(where) },
          ),
        };
      }
      case 'unknown': {
        if (policy.mode === 'accept-new') {
          const file = files[0];
          if (file === undefined)
            throw new SnpsimError(SnpsimErrorCode.USAGE, 'accept-new needs a known_hosts file to append to');
          await appendEntry(file, formatKnownHostsLine(name, key, policy.hashKnownHosts ?? false));
          return { ok: true, accepted: { fingerprint, keyType, how: `added to ${file}` } };
        }
        const notes: string[] = [];
        for (const ca of check.certAuthorities)
          notes.push(
            `${where(ca)} is an @cert-authority entry for this host: host certificates are not supported ` +
              `by snpsim (ssh2 cannot verify them); pin the plain host key instead`,
          );
        for (const p of hosts.problems) notes.push(`${p.file}:${p.line} was skipped: ${p.message}`);
        const searched = files.map((f) => (missing.includes(f) ? `${f} (absent)` : f)).join(', ');
        return {
          ok: false,
          error: new SnpsimError(
            SnpsimErrorCode.SSH_HOSTKEY_UNKNOWN,
            `host key of ${endpoint} is not known: offered ${offered}; no entry for ${name} in ${searched}. ` +
              `${notes.length > 0 ? `${notes.join('. ')}. ` : ''}${howToPin(host, port, fingerprint)}`,
            { ...details, searched: files },
          ),
        };
      }
    }
  };
  if (policy.mode !== 'accept-new') return run();
  // accept-new reads and appends under one lock per file so parallel connections add one line.
  const lockKey = files[0] ?? '';
  const previous = appendLocks.get(lockKey) ?? Promise.resolve();
  const current = previous.then(run, run);
  const settled = current.catch(() => undefined);
  appendLocks.set(lockKey, settled);
  try {
    return await current;
  } finally {
    if (appendLocks.get(lockKey) === settled) appendLocks.delete(lockKey);
  }
}
