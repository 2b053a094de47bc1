/**
 * `snpsim guest install`: upload the guest module and agent sources over SFTP to a fixed directory,
 * build them against the guest's running kernel, install the agent and load the module. Every remote
 * command is fixed text; the only values in it are paths checked against a strict pattern and
 * single-quoted. Each step is reported as it finishes.
 */
import type { Dirent } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { DEFAULT_AGENT_PATH } from '../protocol/index.js';
import type { SshConnection } from '../ssh/connection.js';
import { type RemoteResult, runRemote } from '../ssh/exec.js';
import { checkRemotePath, shellQuote } from '../ssh/remote-command.js';
import type { SFTPWrapper, Stats } from '../ssh/ssh2.js';
import { type CheckStatus, KMOD_NAME, parseProbe } from './guest-doctor.js';
import type { SshAgentTarget } from './ssh-target.js';

/** Where the sources go on the guest. */
export const REMOTE_SOURCE_DIR = '/usr/local/src/snpsim';
/** The agent binary the agent Makefile builds (guest-harness/agent/Makefile). */
const AGENT_BINARY = 'snpsim-agent';
/** Source files uploaded from kmod/ and agent/; build products and other files stay home. */
const SOURCE_FILE_RE = /^(?:Makefile|Kbuild|[A-Za-z0-9_][A-Za-z0-9_.-]*\.(?:c|h|S|md))$/;
const SOURCE_DIRS = ['kmod', 'agent'] as const;

export interface InstallStep {
  readonly name: string;
  readonly status: CheckStatus;
  readonly detail: string;
}

export interface InstallReport {
  readonly target: string;
  readonly steps: readonly InstallStep[];
  /** No step failed. */
  readonly ok: boolean;
}

export interface InstallOptions {
  /** Local directory holding `kmod/` and `agent/`; default: this package's guest-harness/. */
  readonly sourceDir?: string;
  /** Remote directory; default REMOTE_SOURCE_DIR (tests use a temporary one). */
  readonly remoteDir?: string;
  /** Install the agent and load the module after building (default true); false: upload + build. */
  readonly load?: boolean;
  /** Where the agent is installed (default PROTOCOL.md's path). */
  readonly agentPath?: string;
  /** Timeout of each remote command (default 10 minutes: a module build can be slow). */
  readonly stepTimeoutMs?: number;
  readonly onStep?: (step: InstallStep) => void;
}

function defaultSourceDir(): string {
  // dist/guest-harness/targets/guest-install.js -> <package>/guest-harness/
  return fileURLToPath(new URL('../../../guest-harness/', import.meta.url));
}

interface SourceFile {
  readonly dir: (typeof SOURCE_DIRS)[number];
  readonly name: string;
  readonly data: Buffer;
}

async function collectSources(sourceDir: string): Promise<{ files: SourceFile[]; skipped: string[] }> {
  const files: SourceFile[] = [];
  const skipped: string[] = [];
  for (const dir of SOURCE_DIRS) {
    let entries: Dirent[];
    try {
      entries = await readdir(join(sourceDir, dir), { withFileTypes: true });
    } catch (error) {
      throw new SnpsimError(
        SnpsimErrorCode.INPUT_INVALID,
        `cannot read the ${dir} sources in ${join(sourceDir, dir)}: ${(error as Error).message}`,
        { dir: join(sourceDir, dir) },
        error,
      );
    }
    for (const entry of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isFile() || !SOURCE_FILE_RE.test(entry.name)) {
        skipped.push(`${dir}/${entry.name}`);
        continue;
      }
      files.push({ dir, name: entry.name, data: await readFile(join(sourceDir, dir, entry.name)) });
    }
    if (!files.some((f) => f.dir === dir && f.name === 'Makefile'))
      throw new SnpsimError(SnpsimErrorCode.INPUT_INVALID, `${join(sourceDir, dir)} has no Makefile`);
  }
  return { files, skipped };
}

function sftpCall<T>(run: (done: (error: Error | null | undefined, value?: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    run((error, value) => (error ? reject(error) : resolve(value as T)));
  });
}

async function mkdirs(sftp: SFTPWrapper, path: string): Promise<void> {
  let prefix = '';
  for (const part of path.split('/').filter(Boolean)) {
    prefix += `/${part}`;
    const exists = await sftpCall<Stats>((done) => sftp.stat(prefix, done)).then(
      (stats) => stats.isDirectory(),
      () => false,
    );
    if (!exists) await sftpCall<void>((done) => sftp.mkdir(prefix, { mode: 0o755 }, done));
  }
}

async function upload(
  connection: SshConnection,
  remoteDir: string,
  files: readonly SourceFile[],
): Promise<void> {
  await connection.withSftp(async (sftp) => {
    for (const dir of SOURCE_DIRS) await mkdirs(sftp, `${remoteDir}/${dir}`);
    for (const file of files)
      await sftpCall<void>((done) =>
        sftp.writeFile(`${remoteDir}/${file.dir}/${file.name}`, file.data, { mode: 0o644 }, done),
      );
  });
}

function tail(result: RemoteResult): string {
  const text = `${result.stderr}\n${result.stdout}`
    .split('\n')
    .map((l) => l.replace(/[^\x20-\x7e]/g, '?').trimEnd())
    .filter(Boolean);
  const status = result.signal !== null ? `killed by ${result.signal}` : `exit status ${result.code}`;
  return `${status}${text.length > 0 ? `: ${text.slice(-6).join(' | ')}` : ''}`;
}

const PROBE = [
  'r=$(uname -r)',
  'echo "release=$r"',
  'echo "uid=$(id -u)"',
  'if [ -e "/lib/modules/$r/build/Makefile" ]; then echo headers=1; else echo headers=0; fi',
  'if command -v make >/dev/null 2>&1; then echo make=1; else echo make=0; fi',
  'if command -v cc >/dev/null 2>&1; then echo cc=1; else echo cc=0; fi',
  'exit 0',
].join('\n');

/** Runs the install; resolves with every step. Throws SnpsimError only when the guest is unreachable. */
export async function installGuest(
  target: SshAgentTarget,
  options: InstallOptions = {},
): Promise<InstallReport> {
  const remoteDir = checkRemotePath(options.remoteDir ?? REMOTE_SOURCE_DIR, 'remote directory').replace(
    /\/$/,
    '',
  );
  const agentPath = checkRemotePath(options.agentPath ?? DEFAULT_AGENT_PATH, 'agent path');
  const load = options.load ?? true;
  const timeoutMs = options.stepTimeoutMs ?? 600_000;
  const { files, skipped } = await collectSources(options.sourceDir ?? defaultSourceDir());
  const steps: InstallStep[] = [];
  const failed = new Set<string>();
  const report = (name: string, status: CheckStatus, detail: string) => {
    const step = { name, status, detail };
    steps.push(step);
    if (status === 'FAIL') failed.add(name);
    options.onStep?.(step);
  };
  /** A step that needs earlier ones: SKIP when any of them failed. */
  const blocked = (name: string, needs: readonly string[]) => {
    const cause = needs.find((n) => failed.has(n) || steps.some((s) => s.name === n && s.status === 'SKIP'));
    if (cause === undefined) return false;
    report(name, 'SKIP', `not run: ${cause} did not pass`);
    return true;
  };
  const q = shellQuote;
  const connection = await target.connect();
  const remote = (command: string) => runRemote(connection, command, { timeoutMs });
  const probe = parseProbe((await runRemote(connection, PROBE, { timeoutMs })).stdout).values;
  const release = probe.get('release') ?? '?';
  if (probe.get('uid') === '0') report('root', 'PASS', 'uid 0');
  else
    report(
      'root',
      'FAIL',
      `uid ${probe.get('uid') ?? '?'}: installing under /usr/local and insmod need root`,
    );
  const missing = ['make', 'cc'].filter((tool) => probe.get(tool) !== '1');
  if (missing.length === 0) report('toolchain', 'PASS', 'make and cc found');
  else report('toolchain', 'FAIL', `${missing.join(' and ')} missing (Debian: apt-get install make gcc)`);

  if (!blocked('upload', ['root'])) {
    try {
      await upload(connection, remoteDir, files);
      const bytes = files.reduce((n, f) => n + f.data.length, 0);
      report(
        'upload',
        'PASS',
        `${files.length} files, ${bytes} bytes to ${remoteDir}/{${SOURCE_DIRS.join(',')}} via SFTP` +
          `${skipped.length > 0 ? ` (not sent: ${skipped.join(', ')})` : ''}`,
      );
    } catch (error) {
      if (SnpsimError.is(error) && error.code !== SnpsimErrorCode.SSH_PROTOCOL) throw error;
      report('upload', 'FAIL', `SFTP to ${remoteDir}: ${(error as Error).message}`);
    }
  }

  if (probe.get('headers') === '1') report('headers', 'PASS', `/lib/modules/${release}/build`);
  else
    report(
      'headers',
      'FAIL',
      `/lib/modules/${release}/build is missing: install linux-headers-${release} on the guest`,
    );

  if (!blocked('build-module', ['upload', 'toolchain', 'headers'])) {
    const result = await remote(
      `make -C "/lib/modules/$(uname -r)/build" M=${q(`${remoteDir}/kmod`)} modules`,
    );
    if (result.code === 0) report('build-module', 'PASS', `${remoteDir}/kmod/${KMOD_NAME}.ko`);
    else report('build-module', 'FAIL', tail(result));
  }
  if (!blocked('build-agent', ['upload', 'toolchain'])) {
    const result = await remote(`make -C ${q(`${remoteDir}/agent`)}`);
    if (result.code === 0) report('build-agent', 'PASS', `${remoteDir}/agent/${AGENT_BINARY}`);
    else report('build-agent', 'FAIL', tail(result));
  }
  if (!load) {
    for (const name of ['install-agent', 'load-module', 'verify'])
      report(name, 'SKIP', 'not requested (--no-load: upload and build only)');
    return { target: target.id, steps, ok: failed.size === 0 };
  }
  if (!blocked('install-agent', ['build-agent'])) {
    const result = await remote(
      `install -D -m 0755 ${q(`${remoteDir}/agent/${AGENT_BINARY}`)} ${q(agentPath)}`,
    );
    if (result.code === 0) report('install-agent', 'PASS', agentPath);
    else report('install-agent', 'FAIL', tail(result));
  }
  if (!blocked('load-module', ['build-module'])) {
    const ko = q(`${remoteDir}/kmod/${KMOD_NAME}.ko`);
    const result = await remote(
      `if [ -d /sys/module/${KMOD_NAME} ]; then rmmod ${KMOD_NAME} || exit 1; fi\ninsmod ${ko}`,
    );
    if (result.code === 0) report('load-module', 'PASS', `insmod ${remoteDir}/kmod/${KMOD_NAME}.ko`);
    else {
      const log = await remote(`dmesg 2>/dev/null | grep -F '${KMOD_NAME}:' | tail -n 3`);
      report(
        'load-module',
        'FAIL',
        `${tail(result)}${log.stdout.trim() !== '' ? `; dmesg: ${log.stdout.trim().split('\n').join(' | ')}` : ''}`,
      );
    }
  }
  if (!blocked('verify', ['install-agent', 'load-module'])) {
    try {
      const hello = await target.open();
      if (hello.module !== 'none')
        report('verify', 'PASS', `agent ${hello.agent}, module ${hello.module}, kernel ${hello.kernel}`);
      else report('verify', 'FAIL', 'the agent runs but reports module=none');
    } catch (error) {
      if (!SnpsimError.is(error)) throw error;
      report('verify', 'FAIL', `${error.code}: ${error.message}`);
    }
  }
  return { target: target.id, steps, ok: failed.size === 0 };
}
