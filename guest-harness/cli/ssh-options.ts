/**
 * The SSH options of every command that opens an ssh:// target (`snpsim run`, `search`, `guest`):
 * one parseArgs spec, one usage text, one conversion to SshTargetOptions. `--target` is not here:
 * each command gives it its own meaning (run: repeatable, many kinds; search: one spec; guest: one
 * ssh:// URL).
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import {
  DEFAULT_KEEPALIVE_COUNT_MAX,
  DEFAULT_KEEPALIVE_INTERVAL_MS,
  DEFAULT_READY_TIMEOUT_MS,
} from '../ssh/connection.js';
import { parseFingerprint } from '../ssh/fingerprint.js';
import { remoteCommand } from '../ssh/remote-command.js';
import { DEFAULT_AGENT_COMMAND, type SshTargetOptions } from '../targets/ssh-target.js';

/** parseArgs options; spread them into a command's own options. */
export const SSH_PARSE_OPTIONS = {
  identity: { type: 'string', multiple: true },
  'no-agent': { type: 'boolean' },
  'passphrase-file': { type: 'string' },
  'known-hosts': { type: 'string', multiple: true },
  'host-key': { type: 'string', multiple: true },
  'accept-new': { type: 'boolean' },
  'hash-known-hosts': { type: 'boolean' },
  'connect-timeout': { type: 'string' },
  'step-timeout': { type: 'string' },
  keepalive: { type: 'string' },
  'agent-command': { type: 'string' },
} as const;

/** The values parseArgs returns for SSH_PARSE_OPTIONS. */
export type SshParsedValues = {
  readonly [K in keyof typeof SSH_PARSE_OPTIONS]?: (typeof SSH_PARSE_OPTIONS)[K]['type'] extends 'boolean'
    ? boolean
    : (typeof SSH_PARSE_OPTIONS)[K] extends { multiple: true }
      ? string[]
      : string;
};

/**
 * The usage block. `stepTimeoutDefault` says what --step-timeout defaults to in the command
 * (the one line that differs between commands).
 */
export function sshUsage(stepTimeoutDefault: string): string {
  return `ssh options (for ssh:// targets):
  --host-key SHA256:...     pin the host key (repeatable); known_hosts is then not read
  --known-hosts FILE        known_hosts file (repeatable; default ~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts)
  --accept-new              add an unknown host key to the first known_hosts file (OpenSSH
                            StrictHostKeyChecking=accept-new); a changed key is still refused
  --hash-known-hosts        write that entry hashed (|1|salt|hmac)
  --identity FILE           private key (repeatable; default ~/.ssh/id_ed25519, id_ecdsa, id_rsa)
  --no-agent                do not use ssh-agent (default: SSH_AUTH_SOCK when set)
  --passphrase-file FILE    passphrase of encrypted keys (or SNPSIM_SSH_PASSPHRASE); never prompted
  --connect-timeout MS      TCP connect + SSH handshake + auth (default ${DEFAULT_READY_TIMEOUT_MS})
  --step-timeout MS         per response / remote command, and the agent's hello
                            (default ${stepTimeoutDefault})
  --keepalive MS            keepalive interval, 0 = off (default ${DEFAULT_KEEPALIVE_INTERVAL_MS}; ${DEFAULT_KEEPALIVE_COUNT_MAX} missed = connection lost)
  --agent-command "PATH [ARGS]"  the agent on the guest (default ${DEFAULT_AGENT_COMMAND.join(' ')})
`;
}

/** What the SSH options say, ready for SshAgentTarget. */
export interface SshCliOptions {
  /** Host-key policy, auth, connect timeout, keepalive, agent command and hello timeout. */
  readonly target: SshTargetOptions;
  /** --step-timeout; absent: the command's default. */
  readonly stepTimeoutMs?: number;
}

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, message);
}

/** A non-negative integer of milliseconds, or undefined when the option is absent. */
function millis(flag: string, text: string | undefined, allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(?:0|[1-9][0-9]{0,8})$/.test(text) || (!allowZero && text === '0'))
    throw usage(
      `${flag} ${JSON.stringify(text)}: expected ${allowZero ? 'a whole number >= 0' : 'a positive whole number'} of milliseconds`,
    );
  return Number(text);
}

/**
 * `--agent-command "PATH [ARGS]"` as argv: split on whitespace, each word checked as the remote
 * command will check it (ssh/remote-command.ts), so a bad value fails here, naming the flag, even
 * when no ssh:// target is opened.
 */
export function parseAgentCommand(flag: string, text: string): readonly string[] {
  const argv = text.trim().split(/\s+/);
  if (argv[0] === '') throw usage(`${flag} is empty`);
  try {
    remoteCommand(argv, 'agent command');
  } catch (error) {
    if (!SnpsimError.is(error)) throw error;
    throw usage(`${flag} ${JSON.stringify(text)}: ${error.message}`);
  }
  return argv;
}

/** A `SHA256:` pin as ssh-keygen -l prints it; the padded form (a trailing `=`) is accepted too. */
function hostKeyPin(text: string): string {
  const trimmed = text.trim();
  const pin = parseFingerprint(trimmed.endsWith('=') ? trimmed.slice(0, -1) : trimmed);
  if (pin === undefined)
    throw usage(
      `--host-key ${JSON.stringify(text)}: expected SHA256: and 43 base64 characters, as ssh-keygen -l prints`,
    );
  return pin;
}

function files(flag: string, list: readonly string[] | undefined): readonly string[] | undefined {
  if (list?.includes('') === true) throw usage(`${flag}: empty file name`);
  return list;
}

/**
 * SshCliOptions from parsed values: pure, no file is read. Throws a USAGE SnpsimError (exit 2)
 * naming the flag whose value is wrong.
 */
export function sshOptionsFromArgs(values: SshParsedValues): SshCliOptions {
  const pins = (values['host-key'] ?? []).map(hostKeyPin);
  if (pins.length > 0 && (values['accept-new'] === true || values['known-hosts'] !== undefined))
    throw usage('--host-key pins the key: it cannot be combined with --known-hosts or --accept-new');
  const knownHostsFiles = files('--known-hosts', values['known-hosts']);
  const identityFiles = files('--identity', values.identity);
  const passphraseFile = values['passphrase-file'];
  if (passphraseFile === '') throw usage('--passphrase-file: empty file name');
  const readyTimeoutMs = millis('--connect-timeout', values['connect-timeout']);
  const keepaliveIntervalMs = millis('--keepalive', values.keepalive, true);
  const stepTimeoutMs = millis('--step-timeout', values['step-timeout']);
  const agentCommandText = values['agent-command'];
  const agentCommand =
    agentCommandText === undefined ? undefined : parseAgentCommand('--agent-command', agentCommandText);
  return {
    ...(stepTimeoutMs !== undefined ? { stepTimeoutMs } : {}),
    target: {
      hostKey: {
        ...(pins.length > 0 ? { pins } : {}),
        ...(knownHostsFiles !== undefined ? { knownHostsFiles } : {}),
        ...(values['accept-new'] === true ? { mode: 'accept-new' as const } : {}),
        ...(values['hash-known-hosts'] === true ? { hashKnownHosts: true } : {}),
      },
      auth: {
        ...(values['no-agent'] === true ? { agentSocket: null } : {}),
        ...(identityFiles !== undefined ? { identityFiles } : {}),
        ...(passphraseFile !== undefined ? { passphraseFile } : {}),
      },
      ...(readyTimeoutMs !== undefined ? { readyTimeoutMs } : {}),
      ...(keepaliveIntervalMs !== undefined ? { keepaliveIntervalMs } : {}),
      ...(agentCommand !== undefined ? { agentCommand } : {}),
      // README (harness): the hello gets the step timeout too.
      ...(stepTimeoutMs !== undefined ? { helloTimeoutMs: stepTimeoutMs } : {}),
    },
  };
}
