/**
 * `--target` values: `model[:POLICY[:PROFILE]]`, `sim[:POLICY[:PROFILE]]`,
 * `ssh://user@host[:port]`, `fixture:FILE`. A model-backed target without a policy uses the run's
 * `--policy` / `--profile`, so the target agrees with the reference unless told otherwise.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { parseSshTargetUrl } from '../targets/index.js';

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

export function parseTargetSpec(text: string): TargetSpec {
  const forms = 'model[:POLICY[:PROFILE]], sim[:POLICY[:PROFILE]], ssh://user@host[:port] or fixture:FILE';
  if (text.startsWith('fixture:')) {
    const file = text.slice('fixture:'.length);
    if (file === '') throw usage(`--target ${text}: fixture: needs a file name (fixture:FILE)`);
    return { kind: 'fixture', text, file };
  }
  if (text.startsWith('ssh://')) {
    // One URL grammar for every command (guest install/doctor use the same parser).
    const { user, host, port } = parseSshTargetUrl(text);
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
