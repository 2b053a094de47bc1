/**
 * `--target` values: `model[:POLICY[:PROFILE]]`, `sim[:POLICY[:PROFILE]]`,
 * `ssh://user@host[:port]`, `fixture:FILE`. A model-backed target without a policy uses the run's
 * `--policy` / `--profile`, so the target agrees with the reference unless told otherwise.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';

export type TargetSpec =
  | {
      readonly kind: 'model' | 'sim';
      readonly text: string;
      readonly policy?: string;
      readonly profile?: string;
    }
  | {
      readonly kind: 'ssh';
      readonly text: string;
      readonly user: string;
      readonly host: string;
      readonly port: number;
    }
  | { readonly kind: 'fixture'; readonly text: string; readonly file: string };

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, message);
}

const USER_RE = /^[A-Za-z0-9._][A-Za-z0-9._-]{0,31}$/;
const HOST_RE =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV4_RE = /^(?:\d{1,3}\.){3}\d{1,3}$/;

export function parseTargetSpec(text: string): TargetSpec {
  const forms = 'model[:POLICY[:PROFILE]], sim[:POLICY[:PROFILE]], ssh://user@host[:port] or fixture:FILE';
  if (text.startsWith('fixture:')) {
    const file = text.slice('fixture:'.length);
    if (file === '') throw usage(`--target ${text}: fixture: needs a file name (fixture:FILE)`);
    return { kind: 'fixture', text, file };
  }
  if (text.startsWith('ssh://')) {
    const m = /^ssh:\/\/([^@/]+)@(\[[0-9A-Fa-f:.]+\]|[^:/@[\]]+)(?::(\d{1,5}))?\/?$/.exec(text);
    if (!m) throw usage(`--target ${text}: expected ssh://user@host[:port]`);
    const [, user = '', rawHost = '', portText] = m;
    const host = rawHost.startsWith('[') ? rawHost.slice(1, -1) : rawHost;
    if (!USER_RE.test(user)) throw usage(`--target ${text}: '${user}' is not a valid user name`);
    if (!rawHost.startsWith('[') && !HOST_RE.test(host) && !IPV4_RE.test(host)) {
      throw usage(`--target ${text}: '${host}' is not a valid host name or address`);
    }
    const port = portText === undefined ? 22 : Number(portText);
    if (port < 1 || port > 65535) throw usage(`--target ${text}: port ${portText} is not in 1..65535`);
    return { kind: 'ssh', text, user, host, port };
  }
  const [kind, policy, profile, ...rest] = text.split(':');
  if ((kind === 'model' || kind === 'sim') && rest.length === 0) {
    if (policy === '' || profile === '')
      throw usage(`--target ${text}: empty policy or profile; expected ${forms}`);
    return {
      kind,
      text,
      ...(policy !== undefined ? { policy } : {}),
      ...(profile !== undefined ? { profile } : {}),
    };
  }
  throw usage(`--target ${text}: unknown target; expected ${forms}`);
}
