/**
 * The SSH client against Debian's OpenSSH sshd, started here on a loopback port with a generated
 * host key and user key; the agent command is the stdio agent (the simulated guest on stdin/stdout).
 */
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir, userInfo } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import {
  type AgentRequest,
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
    agentCommand: [process.execPath, stdioAgent],
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

test('twenty batches at once over one connection stay below sshd MaxSessions 10', { skip }, async () => {
  const t = target();
  try {
    await t.open();
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        t.runBatch([{ verb: 'hello' }, { verb: 'wait-marker', h: i % 64, timeoutMs: 0 }], {
          stepTimeoutMs: 20_000,
        }),
      ),
    );
    for (const r of results) {
      assert.equal(r.error, undefined, r.error?.message);
      assert.equal(r.responses.length, 2);
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
