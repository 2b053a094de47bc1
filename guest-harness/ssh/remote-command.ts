/**
 * Remote command lines. Nothing from user input reaches a remote shell unchecked: each argument must
 * match a strict pattern (no spaces, quotes, `$`, backticks, globs or control bytes) and is then
 * single-quoted anyway, so the shell sees exactly one literal word per argument.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';

/** Characters allowed in a remote argument. */
export const REMOTE_ARG_RE = /^[A-Za-z0-9._/+=:@,-]+$/;
/** An absolute remote path: safe characters, no `..` segment, no `//`. */
const REMOTE_PATH_RE = /^(?:\/[A-Za-z0-9._+-]+)+\/?$/;

/** POSIX shell single quoting. */
export function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/** Checks one argument; `what` names it in the error. Options (`-x`) only where `option` allows. */
export function checkRemoteArg(arg: string, what: string, option = false): string {
  if (!REMOTE_ARG_RE.test(arg) || (!option && arg.startsWith('-')))
    throw new SnpsimError(
      SnpsimErrorCode.INPUT_INVALID,
      `${what} ${JSON.stringify(arg)} is not allowed in a remote command: use only [A-Za-z0-9._/+=:@,-]` +
        `${option ? '' : ', not starting with -'}`,
      { value: arg },
    );
  return arg;
}

/** Checks an absolute remote path (no `..`, no relative parts). */
export function checkRemotePath(path: string, what: string): string {
  if (!REMOTE_PATH_RE.test(path) || path.split('/').some((part) => part === '..' || part === '.'))
    throw new SnpsimError(
      SnpsimErrorCode.INPUT_INVALID,
      `${what} ${JSON.stringify(path)} must be an absolute path of [A-Za-z0-9._+-] segments without . or ..`,
      { value: path },
    );
  return path;
}

/**
 * The command string for an argv whose every element passes checkRemoteArg; the program (argv[0])
 * may not look like an option, later arguments may.
 */
export function remoteCommand(argv: readonly string[], what = 'argument'): string {
  if (argv.length === 0) throw new SnpsimError(SnpsimErrorCode.INPUT_INVALID, `${what}: empty command`);
  return argv.map((arg, i) => shellQuote(checkRemoteArg(arg, what, i > 0))).join(' ');
}
