/**
 * The SSH options shared by `snpsim guest install|doctor` (and usable by any command that opens an
 * ssh:// target): parseArgs spec, usage text, and the conversion to SshTargetOptions.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { parseFingerprint } from '../ssh/fingerprint.js';
import { DEFAULT_AGENT_COMMAND, type SshTargetOptions } from '../targets/ssh-target.js';

export const SSH_PARSE_OPTIONS = {
  target: { type: 'string' },
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

export const SSH_USAGE = `ssh options:
  --target ssh://user@host[:port]   the guest (required)
  --host-key SHA256:...     pin the host key (repeatable); known_hosts is then not read
  --known-hosts FILE        known_hosts file (repeatable; default ~/.ssh/known_hosts, /etc/ssh/ssh_known_hosts)
  --accept-new              add an unknown host key to the first known_hosts file (OpenSSH
                            StrictHostKeyChecking=accept-new); a changed key is still refused
  --hash-known-hosts        write that entry hashed (|1|salt|hmac)
  --identity FILE           private key (repeatable; default ~/.ssh/id_ed25519, id_ecdsa, id_rsa)
  --no-agent                do not use ssh-agent (default: SSH_AUTH_SOCK when set)
  --passphrase-file FILE    passphrase of encrypted keys (or SNPSIM_SSH_PASSPHRASE); never prompted
  --connect-timeout MS      TCP connect + SSH handshake + auth (default 20000)
  --step-timeout MS         per request / remote command (default depends on the command)
  --keepalive MS            keepalive interval, 0 = off (default 15000; 3 missed = connection lost)
  --agent-command "PATH [ARGS]"  the agent on the guest (default ${DEFAULT_AGENT_COMMAND.join(' ')})
`;

export type SshParsedValues = {
  readonly [K in keyof typeof SSH_PARSE_OPTIONS]?: (typeof SSH_PARSE_OPTIONS)[K]['type'] extends 'boolean'
    ? boolean
    : (typeof SSH_PARSE_OPTIONS)[K] extends { multiple: true }
      ? string[]
      : string;
};

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, message);
}

/** A non-negative integer of milliseconds, or undefined when the option is absent. */
export function millis(flag: string, text: string | undefined, allowZero = false): number | undefined {
  if (text === undefined) return undefined;
  if (!/^(?:0|[1-9][0-9]{0,8})$/.test(text) || (!allowZero && text === '0'))
    throw usage(
      `${flag} ${JSON.stringify(text)}: expected ${allowZero ? 'a whole number >= 0' : 'a positive whole number'} of milliseconds`,
    );
  return Number(text);
}

/** The target URL and SshTargetOptions from parsed values; throws USAGE naming the bad flag. */
export function sshTargetFromArgs(values: SshParsedValues): {
  readonly url: string;
  readonly options: SshTargetOptions;
  readonly stepTimeoutMs?: number;
} {
  const url = values.target;
  if (url === undefined) throw usage('--target ssh://user@host[:port] is required');
  const pins = (values['host-key'] ?? []).map((text) => {
    const pin = parseFingerprint(text);
    if (pin === undefined)
      throw usage(
        `--host-key ${JSON.stringify(text)}: expected SHA256: and 43 base64 characters, as ssh-keygen -l prints`,
      );
    return pin;
  });
  if (pins.length > 0 && (values['accept-new'] === true || values['known-hosts'] !== undefined))
    throw usage('--host-key pins the key: it cannot be combined with --known-hosts or --accept-new');
  const readyTimeoutMs = millis('--connect-timeout', values['connect-timeout']);
  const keepaliveIntervalMs = millis('--keepalive', values.keepalive, true);
  const stepTimeoutMs = millis('--step-timeout', values['step-timeout']);
  const agentCommand = values['agent-command']?.trim().split(/\s+/);
  if (agentCommand !== undefined && agentCommand[0] === '') throw usage('--agent-command is empty');
  return {
    url,
    ...(stepTimeoutMs !== undefined ? { stepTimeoutMs } : {}),
    options: {
      hostKey: {
        ...(pins.length > 0 ? { pins } : {}),
        ...(values['known-hosts'] !== undefined ? { knownHostsFiles: values['known-hosts'] } : {}),
        ...(values['accept-new'] === true ? { mode: 'accept-new' as const } : {}),
        ...(values['hash-known-hosts'] === true ? { hashKnownHosts: true } : {}),
      },
      auth: {
        ...(values['no-agent'] === true ? { agentSocket: null } : {}),
        ...(values.identity !== undefined ? { identityFiles: values.identity } : {}),
        ...(values['passphrase-file'] !== undefined ? { passphraseFile: values['passphrase-file'] } : {}),
      },
      ...(readyTimeoutMs !== undefined ? { readyTimeoutMs } : {}),
      ...(keepaliveIntervalMs !== undefined ? { keepaliveIntervalMs } : {}),
      ...(agentCommand !== undefined ? { agentCommand } : {}),
    },
  };
}
