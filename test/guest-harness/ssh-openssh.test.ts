/**
 * The SSH client against Debian's OpenSSH sshd, started here on a loopback port with a generated
 * host key and user key; the agent command is the stdio agent (the simulated guest on stdin/stdout).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type AgentRequest,
  doctorGuest,
  installGuest,
  main,
  SnpsimError,
  SnpsimErrorCode,
  SshAgentTarget,
  type SshTargetOptions,
} from '../../guest-harness/index.js';

const SSHD = '/usr/sbin/sshd';
const present = existsSync(SSHD);
const skip = present ? false : `${SSHD} is absent (Debian: apt-get install openssh-server)`;
if (skip) process.stdout.write(`# skipping the OpenSSH tests: ${skip}\n`);

const stdioAgent = fileURLToPath(new URL('../../guest-harness/sim/stdio-agent.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'snpsim-sshd-'));
let sshd: ChildProcess | undefined;
let sshdLog = '';
let port = 0;
let hostFingerprint = '';
const user = userInfo().username;

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  return typeof address === 'object' && address !== null ? address.port : 0;
}

async function listening(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(p, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

before(async () => {
  if (skip) return;
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'snpsim-test-host',
    '-f',
    join(dir, 'host_key'),
  ]);
  execFileSync('ssh-keygen', [
    '-q',
    '-t',
    'ed25519',
    '-N',
    '',
    '-C',
    'snpsim-test-user',
    '-f',
    join(dir, 'id_ed25519'),
  ]);
  writeFileSync(join(dir, 'authorized_keys'), readFileSync(join(dir, 'id_ed25519.pub')));
  // `ssh-keygen -l` prints "256 SHA256:... comment (ED25519)".
  hostFingerprint =
    execFileSync('ssh-keygen', ['-l', '-f', join(dir, 'host_key.pub')], { encoding: 'utf8' }).split(' ')[1] ??
    '';
  port = await freePort();
  writeFileSync(
    join(dir, 'sshd_config'),
    [
      `Port ${port}`,
      'ListenAddress 127.0.0.1',
      `HostKey ${join(dir, 'host_key')}`,
      `PidFile ${join(dir, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(dir, 'authorized_keys')}`,
      'StrictModes no',
      'UsePAM no',
      'PasswordAuthentication no',
      'KbdInteractiveAuthentication no',
      'PubkeyAuthentication yes',
      'PermitRootLogin prohibit-password',
      'MaxSessions 10',
      'Subsystem sftp internal-sftp',
      'LogLevel VERBOSE',
      '',
    ].join('\n'),
  );
  // sshd's privilege separation directory (created by the Debian package's service unit).
  if (process.getuid?.() === 0 && !existsSync('/run/sshd'))
    mkdirSync('/run/sshd', { mode: 0o755, recursive: true });
  sshd = spawn(SSHD, ['-D', '-e', '-f', join(dir, 'sshd_config')], { stdio: ['ignore', 'pipe', 'pipe'] });
  sshd.stderr?.on('data', (chunk: Buffer) => {
    sshdLog += chunk.toString();
  });
  let exited = false;
  sshd.once('exit', () => {
    exited = true;
  });
  for (let i = 0; i < 200 && !exited; i++) {
    if (await listening(port)) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`sshd did not start (exited: ${exited}):\n${sshdLog}`);
});

after(() => {
  sshd?.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
});

function target(overrides: Partial<SshTargetOptions> = {}): SshAgentTarget {
  return new SshAgentTarget(`ssh://${user}@127.0.0.1:${port}`, {
    hostKey: { pins: [hostFingerprint] },
    auth: { agentSocket: null, identityFiles: [join(dir, 'id_ed25519')] },
    agentCommand: [process.execPath, stdioAgent, '--backend', 'protocol'],
    keepaliveIntervalMs: 0,
    ...overrides,
  });
}

test('key auth with a pinned host key; hello and a batch through the stdio agent under sshd', {
  skip,
}, async () => {
  const t = target();
  try {
    const hello = await t.open();
    assert.equal(hello.backend, 'sim');
    assert.equal(hello.protocol, 1);
    const requests: AgentRequest[] = [{ verb: 'hello' }, { verb: 'sev-info' }, { verb: 'vmsa-free', h: 3 }];
    const result = await t.runBatch(requests, { stepTimeoutMs: 10_000 });
    assert.equal(result.error, undefined, result.error?.message);
    assert.deepEqual(
      result.responses.map((r) => [r.seq, r.verb, r.status]),
      [
        [1, 'hello', 'ok'],
        [2, 'sev-info', 'err'],
        [3, 'vmsa-free', 'err'],
      ],
    );
  } finally {
    await t.close();
  }
});

test('a wrong pinned host key is refused before authentication', { skip }, async () => {
  const wrong = 'SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA';
  const t = target({ hostKey: { pins: [wrong] } });
  await assert.rejects(t.open(), (error: unknown) => {
    assert.ok(SnpsimError.is(error));
    assert.equal(error.code, SnpsimErrorCode.SSH_HOSTKEY_MISMATCH);
    assert.ok(error.message.includes(`offered ssh-ed25519 ${hostFingerprint}`), error.message);
    return true;
  });
  assert.doesNotMatch(sshdLog, /Accepted publickey.*\n.*SHA256:AAAA/);
});

test('known_hosts written by ssh-keyscan is accepted; the unknown-key hint is that command', {
  skip,
}, async () => {
  const knownHosts = join(dir, 'known_hosts');
  const empty = target({ hostKey: { knownHostsFiles: [knownHosts] } });
  const hint = await empty.open().then(
    () => assert.fail('unknown key accepted'),
    (error: unknown) => {
      assert.ok(SnpsimError.is(error) && error.code === SnpsimErrorCode.SSH_HOSTKEY_UNKNOWN);
      return error.message;
    },
  );
  assert.ok(hint.includes(hostFingerprint));
  const scanned = execFileSync('ssh-keyscan', ['-p', String(port), '-t', 'ed25519', '127.0.0.1'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  writeFileSync(knownHosts, scanned);
  const t = target({ hostKey: { knownHostsFiles: [knownHosts] } });
  try {
    assert.equal((await t.open()).backend, 'sim');
  } finally {
    await t.close();
  }
});

test('a wrong user key is refused by sshd: SSH_AUTH', { skip }, async () => {
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(dir, 'other')]);
  const t = target({ auth: { agentSocket: null, identityFiles: [join(dir, 'other')] } });
  await assert.rejects(
    t.open(),
    (error: unknown) => SnpsimError.is(error) && error.code === SnpsimErrorCode.SSH_AUTH,
  );
});

test('twelve batches at once over one connection stay below sshd MaxSessions 10 (model backend)', {
  skip,
}, async () => {
  const t = target({ agentCommand: [process.execPath, stdioAgent, '--backend', 'model'] });
  try {
    const hello = await t.open();
    assert.equal(hello.backend, 'sim');
    assert.notEqual(hello.policy, 'none');
    const results = await Promise.all(
      Array.from({ length: 12 }, () =>
        t.runBatch([{ verb: 'hello' }, { verb: 'hv-features' }], { stepTimeoutMs: 20_000 }),
      ),
    );
    for (const r of results) {
      assert.equal(r.error, undefined, r.error?.message);
      assert.deepEqual(
        r.responses.map((x) => x.status),
        ['ok', 'ok'],
      );
    }
  } finally {
    await t.close();
  }
});

test('an agent that fails before its hello, or is missing, is reported with its exit status', {
  skip,
}, async () => {
  const broken = target({ agentCommand: [process.execPath, stdioAgent, '--backend', 'nope'] });
  try {
    await assert.rejects(broken.open(), (error: unknown) => {
      assert.ok(SnpsimError.is(error) && error.code === SnpsimErrorCode.AGENT_PROTOCOL, String(error));
      assert.match(
        error.message,
        /exited with status 2 before its hello line; agent stderr: .*unknown backend 'nope'/,
      );
      return true;
    });
  } finally {
    await broken.close();
  }
  const missing = target({ agentCommand: [join(dir, 'no-such-agent')] });
  try {
    await assert.rejects(missing.open(), /status 127 before its hello line: command not found/);
  } finally {
    await missing.close();
  }
});

/** What the probe should find on this machine (the sshd runs here). */
function local() {
  const release = execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim();
  return {
    release,
    headers: existsSync(`/lib/modules/${release}/build/Makefile`),
    debugfs: readFileSync('/proc/mounts', 'utf8').includes(' /sys/kernel/debug debugfs '),
    root: process.getuid?.() === 0,
    hotplug: existsSync('/sys/devices/system/cpu/cpu1/online'),
  };
}

test('guest doctor: one line per requirement from the real probe, the hello and (no) module', {
  skip,
}, async () => {
  const here = local();
  const t = target();
  try {
    const report = await doctorGuest(t, { stepTimeoutMs: 20_000 });
    const status = Object.fromEntries(report.checks.map((c) => [c.id, c.status]));
    assert.deepEqual(Object.keys(status), [
      'snp',
      'vmpl0',
      'ap-creation',
      'kernel',
      'headers',
      'debugfs',
      'module-loading',
      'cpus',
      'root',
      'agent',
      'module',
    ]);
    const major = Number(here.release.split('.')[0]);
    const minor = Number(here.release.split('.')[1]);
    assert.equal(status.kernel, major > 6 || (major === 6 && minor >= 1) ? 'PASS' : 'FAIL');
    assert.equal(status.headers, here.headers ? 'PASS' : 'FAIL');
    assert.equal(status.debugfs, here.debugfs ? 'PASS' : 'FAIL');
    assert.equal(status.root, here.root ? 'PASS' : 'FAIL');
    assert.equal(status.cpus, here.hotplug ? 'PASS' : 'FAIL');
    assert.equal(status.agent, 'PASS');
    assert.equal(status.module, 'FAIL');
    assert.equal(status['ap-creation'], 'SKIP');
    assert.equal(status.vmpl0, 'SKIP');
    assert.notEqual(status.snp, 'PASS');
    assert.equal(report.ok, false);
    assert.match(
      report.checks.find((c) => c.id === 'kernel')?.detail ?? '',
      new RegExp(`^${here.release.replace(/[.+]/g, '\\$&')} `),
    );
  } finally {
    await t.close();
  }
});

test('snpsim guest doctor (CLI): exit 1 when not ready, PASS/FAIL/SKIP lines, --json', { skip }, () => {
  const cli = fileURLToPath(new URL('../../../bin/snpsim.js', import.meta.url));
  const args = [
    cli,
    'guest',
    'doctor',
    '--target',
    `ssh://${user}@127.0.0.1:${port}`,
    '--host-key',
    hostFingerprint,
    '--identity',
    join(dir, 'id_ed25519'),
    '--no-agent',
    '--agent-command',
    `${process.execPath} ${stdioAgent} --backend protocol`,
  ];
  const text = spawnSync(process.execPath, args, { encoding: 'utf8' });
  assert.equal(text.status, 1, text.stderr);
  const lines = text.stdout.trim().split('\n');
  assert.equal(lines[0], `snpsim guest doctor: ssh://${user}@127.0.0.1:${port}`);
  assert.equal(lines.length, 13);
  for (const l of lines.slice(1, -1)) assert.match(l, /^(PASS|FAIL|SKIP) {2}\S/);
  assert.match(lines.at(-1) ?? '', /^\d+ PASS, \d+ FAIL, \d+ SKIP: not ready$/);
  const json = spawnSync(process.execPath, [...args, '--json'], { encoding: 'utf8' });
  assert.equal(json.status, 1);
  const report = JSON.parse(json.stdout) as { target: string; ok: boolean; checks: { id: string }[] };
  assert.equal(report.ok, false);
  assert.equal(report.checks.length, 11);
  const unreachable = spawnSync(
    process.execPath,
    [
      cli,
      'guest',
      'doctor',
      '--target',
      'ssh://root@127.0.0.1:1',
      '--no-agent',
      '--identity',
      join(dir, 'id_ed25519'),
      '--host-key',
      hostFingerprint,
    ],
    { encoding: 'utf8' },
  );
  assert.equal(unreachable.status, 3);
  assert.match(unreachable.stderr, /SNPSIM_SSH_CONNECTION_REFUSED/);
  const usage = spawnSync(
    process.execPath,
    [cli, 'guest', 'doctor', '--target', 'ssh://root@h', '--host-key', 'SHA256:nope'],
    { encoding: 'utf8' },
  );
  assert.equal(usage.status, 2);
  assert.match(usage.stderr, /--host-key "SHA256:nope": expected SHA256: and 43 base64 characters/);
});

function fixtureSources(agentMakefile: string): string {
  const root = mkdtempSync(join(dir, 'src-'));
  mkdirSync(join(root, 'kmod', 'sub'), { recursive: true });
  mkdirSync(join(root, 'agent'));
  writeFileSync(join(root, 'kmod', 'Kbuild'), 'obj-m += snpsim.o\n');
  writeFileSync(join(root, 'kmod', 'Makefile'), 'all:\n\ttrue\n');
  writeFileSync(join(root, 'kmod', 'snpsim_kabi.h'), '#define SNPSIM_KABI 1\n');
  writeFileSync(join(root, 'kmod', 'snpsim.o'), 'stale object');
  writeFileSync(join(root, 'kmod', "we'ird.c"), 'int x;\n');
  writeFileSync(join(root, 'agent', 'Makefile'), agentMakefile);
  writeFileSync(
    join(root, 'agent', 'main.c'),
    '#include "../kmod/snpsim_kabi.h"\nint main(void) { return SNPSIM_KABI - 1; }\n',
  );
  return root;
}

test('guest install --no-load: SFTP upload of the sources only, headers check, agent build', {
  skip,
}, async () => {
  const here = local();
  const source = fixtureSources('all: snpsim-agent\nsnpsim-agent: main.c\n\tcc -o snpsim-agent main.c\n');
  const remoteDir = join(dir, 'remote', 'snpsim');
  const t = target();
  const seen: string[] = [];
  try {
    const report = await installGuest(t, {
      sourceDir: source,
      remoteDir,
      load: false,
      onStep: (s) => seen.push(s.name),
    });
    const status = Object.fromEntries(report.steps.map((s) => [s.name, s.status]));
    assert.deepEqual(
      seen,
      report.steps.map((s) => s.name),
    );
    assert.equal(status.root, here.root ? 'PASS' : 'FAIL');
    assert.equal(status.toolchain, 'PASS');
    assert.equal(status.upload, 'PASS');
    assert.equal(
      readFileSync(join(remoteDir, 'agent', 'main.c'), 'utf8'),
      readFileSync(join(source, 'agent', 'main.c'), 'utf8'),
    );
    assert.ok(existsSync(join(remoteDir, 'kmod', 'snpsim_kabi.h')));
    assert.equal(existsSync(join(remoteDir, 'kmod', 'snpsim.o')), false);
    assert.equal(existsSync(join(remoteDir, 'kmod', "we'ird.c")), false);
    assert.match(
      report.steps.find((s) => s.name === 'upload')?.detail ?? '',
      /not sent: kmod\/snpsim\.o, kmod\/sub, kmod\/we'ird\.c/,
    );
    assert.equal(status.headers, here.headers ? 'PASS' : 'FAIL');
    assert.equal(status['build-agent'], 'PASS');
    assert.ok(existsSync(join(remoteDir, 'agent', 'snpsim-agent')));
    if (!here.headers)
      assert.match(
        report.steps.find((s) => s.name === 'build-module')?.detail ?? '',
        /not run: headers did not pass/,
      );
    for (const name of ['install-agent', 'load-module', 'verify']) assert.equal(status[name], 'SKIP');
    assert.equal(report.ok, here.headers && here.root);
  } finally {
    await t.close();
  }
});

test('guest install: a failing build is reported with its output and blocks what depends on it', {
  skip,
}, async () => {
  const source = fixtureSources('all:\n\t@echo "main.c:1: error: no agent today" >&2; exit 2\n');
  const t = target();
  try {
    const report = await installGuest(t, { sourceDir: source, remoteDir: join(dir, 'remote2'), load: true });
    const step = (name: string) => report.steps.find((s) => s.name === name);
    assert.equal(step('build-agent')?.status, 'FAIL');
    assert.match(step('build-agent')?.detail ?? '', /^exit status 2: .*main\.c:1: error: no agent today/);
    assert.equal(step('install-agent')?.status, 'SKIP');
    assert.match(step('install-agent')?.detail ?? '', /not run: build-agent did not pass/);
    assert.equal(step('verify')?.status, 'SKIP');
    assert.equal(report.ok, false);
    await assert.rejects(
      installGuest(t, { sourceDir: source, remoteDir: '/tmp/../etc' }),
      (e: unknown) =>
        SnpsimError.is(e) && e.code === SnpsimErrorCode.INPUT_INVALID && /remote directory/.test(e.message),
    );
  } finally {
    await t.close();
  }
});

test('a hung agent under sshd: STEP_TIMEOUT returns at once, without waiting for the process', {
  skip,
}, async () => {
  const hung = target({ agentCommand: ['/bin/sleep', '5'], helloTimeoutMs: 300 });
  try {
    await assert.rejects(hung.open(), (error: unknown) => {
      assert.ok(SnpsimError.is(error) && error.code === SnpsimErrorCode.STEP_TIMEOUT, String(error));
      assert.match(error.message, /no hello line within 300 ms/);
      return true;
    });
    // The connection is still usable for other commands.
    const ok = target();
    try {
      assert.equal((await ok.open()).backend, 'sim');
    } finally {
      await ok.close();
    }
  } finally {
    await hung.close();
  }
});

/** `snpsim run` through the CLI against this sshd: the model-backed stdio agent is the guest. */
async function runCli(
  scenarios: readonly string[],
  agentCommand: string,
  report: string,
): Promise<{ code: number; err: string; report: RunReportJson }> {
  const err: string[] = [];
  const io = { stdout: { write: () => true }, stderr: { write: (s: string) => err.push(s) } };
  const code = await main(
    [
      'run',
      ...scenarios,
      '--target',
      `ssh://${user}@127.0.0.1:${port}`,
      '--host-key',
      hostFingerprint,
      '--identity',
      join(dir, 'id_ed25519'),
      '--no-agent',
      '--agent-command',
      agentCommand,
      '--json',
      report,
      '--quiet',
    ],
    io,
  );
  return { code, err: err.join(''), report: JSON.parse(readFileSync(report, 'utf8')) as RunReportJson };
}

interface RunReportJson {
  readonly targets: readonly {
    readonly error?: { readonly code: string };
    readonly scenarios: readonly {
      readonly name: string;
      readonly status: string;
      readonly reason?: string;
      readonly steps: readonly { readonly step: number; readonly target?: { readonly kind: string } }[];
    }[];
  }[];
}

const scenario = (name: string) => fileURLToPath(new URL(`../../../scenarios/${name}.json`, import.meta.url));

test('snpsim run: corpus scenarios run through sshd (pinned host key, key auth) and match the model', {
  skip,
}, async () => {
  const names = ['lifecycle-create-linux-vmsa', 'discovery-hv-features-nae', 'malformed-gpa-unaligned'];
  const { code, err, report } = await runCli(
    names.map(scenario),
    `${process.execPath} ${stdioAgent} --backend model`,
    join(dir, 'report-pass.json'),
  );
  assert.equal(code, 0, err);
  assert.deepEqual(
    report.targets[0]?.scenarios.map((s) => [s.name, s.status]),
    names.map((n) => [n, 'pass']),
  );
});

test('snpsim run: the SSH connection cut mid-scenario is exit 3 with a partial report', { skip }, () => {
  // The agent answers its hello and two requests, then (once sshd has forwarded them) the sshd
  // process serving this session is killed (SIGKILL): the TCP connection drops mid-batch.
  const cutAgent = join(dir, 'cut-agent.sh');
  writeFileSync(
    cutAgent,
    [
      '#!/bin/sh',
      `session=$PPID`,
      `'${process.execPath}' '${stdioAgent}' --backend model | {`,
      '  n=0',
      '  while IFS= read -r line; do',
      `    printf '%s\\n' "$line"`,
      '    n=$((n + 1))',
      '    if [ "$n" -eq 3 ]; then sleep 0.3; kill -9 "$session"; fi',
      '  done',
      '}',
      '',
    ].join('\n'),
    { mode: 0o755 },
  );
  return runCli([scenario('lifecycle-create-linux-vmsa')], cutAgent, join(dir, 'report-cut.json')).then(
    ({ code, err, report }) => {
      assert.equal(code, 3, err);
      const run = report.targets[0]?.scenarios[0];
      assert.equal(run?.status, 'error', JSON.stringify(run?.reason));
      assert.match(run?.reason ?? '', /died/);
      // The partial report keeps what the guest answered before the cut.
      assert.deepEqual(
        run?.steps.slice(0, 2).map((step) => step.target?.kind),
        ['ok', 'ok'],
      );
    },
  );
});
