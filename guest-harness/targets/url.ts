/**
 * `ssh://user@host[:port]` target URLs, validated strictly: the user and host end up in SSH
 * requests, error messages and suggested commands, so only plain names are accepted.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';

export interface SshTargetUrl {
  readonly user: string;
  /** Host name or IP address (IPv6 without brackets). */
  readonly host: string;
  readonly port: number;
}

/** POSIX portable user names (plus upper case), at most 32 characters (useradd's limit). */
const USER_RE = /^[A-Za-z_][A-Za-z0-9_.-]{0,31}$/;
/** RFC 1123 labels. */
const LABEL_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;

function bad(url: string, problem: string): never {
  throw new SnpsimError(
    SnpsimErrorCode.USAGE,
    `target ${JSON.stringify(url)}: ${problem} (expected ssh://user@host[:port], e.g. ssh://root@10.0.0.5:22)`,
    { target: url },
  );
}

function isHostName(host: string): boolean {
  return host.length <= 253 && host.split('.').every((label) => LABEL_RE.test(label));
}

/** Parses and validates a target URL; throws SnpsimError (USAGE) naming the problem. */
export function parseSshTargetUrl(url: string): SshTargetUrl {
  if (!url.startsWith('ssh://')) return bad(url, 'must start with ssh://');
  const rest = url.slice('ssh://'.length);
  const at = rest.lastIndexOf('@');
  if (at < 0) return bad(url, 'a user is required (ssh://root@HOST)');
  const user = rest.slice(0, at);
  if (user.includes(':')) return bad(url, 'passwords in the URL are not supported; use keys or ssh-agent');
  if (!USER_RE.test(user)) return bad(url, `user ${JSON.stringify(user)} is not a plain user name`);
  let hostPort = rest.slice(at + 1);
  if (hostPort.endsWith('/')) hostPort = hostPort.slice(0, -1);
  if (/[/?#%\s]/.test(hostPort)) return bad(url, 'no path, query, fragment or escapes after host[:port]');
  let host: string;
  let portText: string | undefined;
  if (hostPort.startsWith('[')) {
    const close = hostPort.indexOf(']');
    if (close < 0) return bad(url, 'unterminated [IPv6] address');
    host = hostPort.slice(1, close);
    if (!isIPv6(host)) return bad(url, `${JSON.stringify(host)} is not an IPv6 address`);
    const after = hostPort.slice(close + 1);
    if (after !== '' && !after.startsWith(':')) return bad(url, 'expected :port after ]');
    portText = after === '' ? undefined : after.slice(1);
  } else {
    const colon = hostPort.indexOf(':');
    host = colon < 0 ? hostPort : hostPort.slice(0, colon);
    portText = colon < 0 ? undefined : hostPort.slice(colon + 1);
    if (host === '') return bad(url, 'a host is required');
    if (!isIPv4(host) && !isHostName(host))
      return bad(url, `host ${JSON.stringify(host)} is not a host name or IP address`);
  }
  let port = 22;
  if (portText !== undefined) {
    if (!/^[1-9][0-9]{0,4}$/.test(portText) || Number(portText) > 65535)
      return bad(url, `port ${JSON.stringify(portText)} is not 1..65535`);
    port = Number(portText);
  }
  return { user, host, port };
}

/** The canonical URL, with the port always written. */
export function formatSshTargetUrl(target: SshTargetUrl): string {
  const host = isIPv6(target.host) ? `[${target.host}]` : target.host;
  return `ssh://${target.user}@${host}:${target.port}`;
}
