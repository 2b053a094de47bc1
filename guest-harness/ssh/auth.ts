/**
 * Client authentication: ssh-agent (`SSH_AUTH_SOCK`) first, then private-key files (explicit, or
 * OpenSSH's defaults `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` that exist). Encrypted keys are
 * decrypted with a passphrase from `SNPSIM_SSH_PASSPHRASE` or a passphrase file; there is never a
 * prompt. Keys that cannot be used are reported in the auth failure, not silently dropped.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { sshFingerprint } from './fingerprint.js';
import { type AnyAuthMethod, type ParsedKey, utils } from './ssh2.js';

/** The environment variable a passphrase for encrypted key files is read from. */
export const PASSPHRASE_ENV = 'SNPSIM_SSH_PASSPHRASE';

export interface SshAuthOptions {
  /** ssh-agent socket; default `SSH_AUTH_SOCK`; `null` disables the agent. */
  readonly agentSocket?: string | null;
  /** Private-key files to try, in order; default: the OpenSSH default identities that exist. */
  readonly identityFiles?: readonly string[];
  /** Passphrase for encrypted keys (default: `SNPSIM_SSH_PASSPHRASE`, then `passphraseFile`). */
  readonly passphrase?: string;
  /** A file whose first line is the passphrase. */
  readonly passphraseFile?: string;
}

export function defaultIdentityFiles(): string[] {
  return ['id_ed25519', 'id_ecdsa', 'id_rsa'].map((name) => join(homedir(), '.ssh', name));
}

export interface PreparedAuth {
  /** Methods in the order they are offered. */
  readonly methods: readonly AnyAuthMethod[];
  /** What is offered, for the failure message (`ssh-agent at ...`, `FILE (ssh-ed25519 SHA256:...)`). */
  readonly offered: readonly string[];
  /** What could not be offered and why. */
  readonly skipped: readonly string[];
}

async function passphraseOf(options: SshAuthOptions): Promise<string | undefined> {
  if (options.passphrase !== undefined) return options.passphrase;
  const env = process.env[PASSPHRASE_ENV];
  if (env !== undefined && env !== '') return env;
  if (options.passphraseFile === undefined) return undefined;
  try {
    const text = await readFile(options.passphraseFile, 'utf8');
    return text.split(/\r?\n/)[0] ?? '';
  } catch (error) {
    throw new SnpsimError(
      SnpsimErrorCode.INPUT_INVALID,
      `cannot read passphrase file ${options.passphraseFile}: ${(error as Error).message}`,
      { file: options.passphraseFile },
      error,
    );
  }
}

function firstKey(parsed: ParsedKey | ParsedKey[] | Error): ParsedKey | Error {
  if (Array.isArray(parsed)) return parsed[0] ?? new Error('no key in file');
  return parsed;
}

/** Builds the auth methods for `username`; throws SSH_AUTH when there is nothing to offer. */
export async function prepareAuth(username: string, options: SshAuthOptions = {}): Promise<PreparedAuth> {
  const methods: AnyAuthMethod[] = [];
  const offered: string[] = [];
  const skipped: string[] = [];
  const agent = options.agentSocket === undefined ? process.env.SSH_AUTH_SOCK : options.agentSocket;
  if (agent !== null && agent !== undefined && agent !== '') {
    methods.push({ type: 'agent', username, agent });
    offered.push(`ssh-agent at ${agent}`);
  }
  const explicit = options.identityFiles !== undefined;
  const files = options.identityFiles ?? defaultIdentityFiles();
  let passphrase: string | undefined;
  let passphraseRead = false;
  for (const file of files) {
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (!explicit && code === 'ENOENT') continue;
      throw new SnpsimError(
        SnpsimErrorCode.INPUT_INVALID,
        `cannot read identity file ${file}: ${(error as Error).message}`,
        { file },
        error,
      );
    }
    let key = firstKey(utils.parseKey(data));
    if (key instanceof Error && /encrypted/i.test(key.message)) {
      if (!passphraseRead) {
        passphrase = await passphraseOf(options);
        passphraseRead = true;
      }
      if (passphrase === undefined) {
        skipped.push(
          `${file}: encrypted, and no passphrase given (set ${PASSPHRASE_ENV} or --passphrase-file; snpsim never prompts)`,
        );
        continue;
      }
      key = firstKey(utils.parseKey(data, passphrase));
    }
    if (key instanceof Error) {
      skipped.push(`${file}: ${key.message}`);
      continue;
    }
    if (!key.isPrivateKey()) {
      skipped.push(`${file}: not a private key`);
      continue;
    }
    methods.push({ type: 'publickey', username, key });
    offered.push(`${file} (${key.type} ${sshFingerprint(key.getPublicSSH())})`);
  }
  if (methods.length === 0) {
    const looked = explicit ? files.join(', ') : `no SSH_AUTH_SOCK, none of ${files.join(', ')}`;
    throw new SnpsimError(
      SnpsimErrorCode.SSH_AUTH,
      `no usable SSH credentials for ${username}: ${looked}${skipped.length > 0 ? `; ${skipped.join('; ')}` : ''}`,
      { username, skipped },
    );
  }
  return { methods, offered, skipped };
}
