/**
 * The simulated guest: the agent session's line handling (same answers as the C agent), the stdio
 * agent, what the ssh2 server refuses, host keys, authorized keys, and `snpsim sim-guest`.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import {
  type AgentBackend,
  EXIT_INTERNAL,
  generateEd25519KeyPair,
  parseAuthorizedKeys,
  persistentHostKey,
  protocolBackend,
  protocolBackendFactory,
  SimGuestServer,
  SimGuestStopped,
  SnpsimError,
  SnpsimErrorCode,
  SshAgentTarget,
  serveAgent,
} from '../../guest-harness/index.js';

const dir = mkdtempSync(join(tmpdir(), 'snpsim-sim-'));
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

const stdioAgent = fileURLToPath(new URL('../../guest-harness/sim/stdio-agent.js', import.meta.url));
const cli = fileURLToPath(new URL('../../../bin/snpsim.js', import.meta.url));

const pair = generateEd25519KeyPair();
writeFileSync(join(dir, 'id'), pair.private, { mode: 0o600 });
writeFileSync(join(dir, 'id.pub'), `${pair.public}\n`);
const pub = parseAuthorizedKeys(pair.public, 'test').keys;

const HELLO =
  'snpsim-agent protocol=1 agent=0.1.0 backend=sim kernel=none module=none cpus=4 possible_cpus=4 policy=none profile=none';

/** Input lines and the exact answers, as the C agent gives them (guest-harness/agent/snpsim_proto.c). */
const INPUT = [
  '1 hello',
  '1 hello',
  'x hello',
  '3 reboot',
  '4 hello x=1',
  '5 vmsa-alloc h=64 placement=split memory=private',
  '6 ap-creation request=1 apic=1 vmpl=0',
  `7 vmsa-set h=0 field=rip value=0x${'f'.repeat(2000)}`,
  '8 sev-info',
  '9 hello\r',
  '',
  '10 hello',
].join('\n');
const EXPECTED = [
  HELLO,
  `1 ok ${HELLO.slice('snpsim-agent '.length)}`,
  '1 err code=bad-request reason=seq-order',
  '0 err code=bad-request reason=bad-seq',
  '3 err code=bad-request reason=unknown-verb',
  '4 err code=bad-request reason=unknown-key',
  '5 err code=bad-request reason=out-of-range',
  '6 err code=bad-request reason=conflict',
  '7 err code=bad-request reason=too-long',
  '8 err code=unsupported',
  '9 err code=bad-request reason=bad-byte',
  '0 err code=bad-request reason=empty-line',
  '10 err code=bad-request reason=unterminated',
];

test('agent session: hello first, one answer per line, bad lines answered bad-request with a reason', async () => {
  const out: string[] = [];
  const status = await serveAgent(
    {
      input: Readable.from([Buffer.from(INPUT.slice(0, 300)), Buffer.from(INPUT.slice(300))]),
      write: (t) => out.push(t),
      writeError: () => undefined,
    },
    protocolBackend(),
  );
  assert.equal(status, 0);
  assert.deepEqual(out.join('').split('\n').slice(0, -1), EXPECTED);
});

test('agent session: a backend bug ends the run with status 70 and a stderr line; sessions are closed', async () => {
  let closed = 0;
  const backend: AgentBackend = {
    hello: protocolBackend().hello,
    openSession: () => ({
      execute: () => {
        throw new Error('boom');
      },
      close: () => {
        closed++;
      },
    }),
  };
  const err: string[] = [];
  const status = await serveAgent(
    {
      input: Readable.from(['1 sev-info\n2 sev-info\n']),
      write: () => undefined,
      writeError: (t) => err.push(t),
    },
    backend,
  );
  assert.equal(status, EXIT_INTERNAL);
  assert.match(err.join(''), /internal error on seq 1 \(sev-info\): boom/);
  assert.equal(closed, 1);
});

test('the stdio agent speaks the same protocol on stdin/stdout', () => {
  const result = spawnSync(process.execPath, [stdioAgent, '--backend', 'protocol'], {
    input: INPUT,
    encoding: 'latin1',
  });
  assert.equal(result.status, 0, result.stderr);
  assert.deepEqual(result.stdout.split('\n').slice(0, -1), EXPECTED);
  const bad = spawnSync(process.execPath, [stdioAgent, '--backend', 'nope'], { input: '', encoding: 'utf8' });
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /unknown backend 'nope'; known: .*protocol/);
  const policy = spawnSync(process.execPath, [stdioAgent, '--backend', 'protocol', '--policy', 'x'], {
    input: '',
    encoding: 'utf8',
  });
  assert.equal(policy.status, 2);
  assert.match(policy.stderr, /protocol backend has no model/);
});

test('the ssh2 simulated guest refuses other commands, shells, ptys, SFTP and passwords', async () => {
  const server = await SimGuestServer.start({ backend: protocolBackend(), authorizedKeys: pub });
  cleanups.push(() => server.close());
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    client.connect({ host: '127.0.0.1', port: server.port, username: 'anyone', privateKey: pair.private });
  });
  cleanups.push(() => void client.end());
  const execError = (command: string, options: ssh2.ExecOptions = {}) =>
    new Promise<Error | undefined>((resolve) =>
      client.exec(command, options, (error, stream) => {
        if (error) return resolve(error);
        stream.on('close', () => resolve(undefined)).resume();
        stream.end();
      }),
    );
  assert.ok(await execError('id'), 'exec id was served');
  assert.ok(await execError(`${server.command}; id`), 'a command with a suffix was served');
  assert.ok(await execError(server.command, { pty: true }), 'a pty was granted');
  assert.equal(await execError(server.command), undefined, 'the agent command was refused');
  const shell = await new Promise<Error | undefined>((resolve) =>
    client.shell((error) => resolve(error ?? undefined)),
  );
  assert.ok(shell, 'a shell was granted');
  const sftp = await new Promise<Error | undefined>((resolve) =>
    client.sftp((error) => resolve(error ?? undefined)),
  );
  assert.ok(sftp, 'SFTP was granted');
  const password = new ssh2.Client();
  const outcome = await new Promise<string>((resolve) => {
    password.once('ready', () => resolve('ready')).once('error', (e) => resolve(e.message));
    password.connect({
      host: '127.0.0.1',
      port: server.port,
      username: 'root',
      password: 'root',
      hostVerifier: () => true,
    });
  });
  password.end();
  assert.match(outcome, /All configured authentication methods failed/);
});

test('a backend that reports the guest stopped ends the run like a dead guest: GUEST_DIED, no status', async () => {
  const backend: AgentBackend = {
    hello: protocolBackend().hello,
    openSession: () => {
      let n = 0;
      return {
        execute: (request) => {
          if (n++ === 1) throw new SimGuestStopped('triple fault');
          return { status: 'err', verb: request.verb, code: 'unsupported' };
        },
        close: () => undefined,
      };
    },
  };
  const server = await SimGuestServer.start({ backend, authorizedKeys: pub });
  cleanups.push(() => server.close());
  const target = new SshAgentTarget(`ssh://root@127.0.0.1:${server.port}`, {
    hostKey: { pins: [server.hostKey.fingerprint] },
    auth: { agentSocket: null, identityFiles: [join(dir, 'id')] },
  });
  cleanups.push(() => target.close());
  await target.open();
  const result = await target.runBatch([{ verb: 'sev-info' }, { verb: 'sev-info' }, { verb: 'sev-info' }], {
    stepTimeoutMs: 5000,
  });
  assert.equal(result.error?.code, SnpsimErrorCode.GUEST_DIED);
  assert.match(
    result.error?.message ?? '',
    /channel closed without an exit status \(guest dead\?\) after 1 of 3 responses$/,
  );
  assert.equal(result.responses.length, 1);
});

test('persisted host keys: created 0600 with .pub, reloaded with the same fingerprint ssh-keygen prints', async () => {
  const file = join(dir, 'host_key');
  const created = await persistentHostKey(file);
  assert.equal(created.source, `created ${file}`);
  assert.equal(statSync(file).mode & 0o777, 0o600);
  const loaded = await persistentHostKey(file);
  assert.equal(loaded.fingerprint, created.fingerprint);
  assert.equal(loaded.source, `loaded from ${file}`);
  const printed = execFileSync('ssh-keygen', ['-l', '-f', `${file}.pub`], { encoding: 'utf8' });
  assert.equal(printed.split(' ')[1], created.fingerprint);
  writeFileSync(join(dir, 'junk_key'), 'not a key');
  await assert.rejects(
    persistentHostKey(join(dir, 'junk_key')),
    (e: unknown) =>
      SnpsimError.is(e) && e.code === SnpsimErrorCode.INPUT_INVALID && /not a usable key/.test(e.message),
  );
});

test('authorized keys: plain lines used, comments ignored, lines with options skipped with a reason', () => {
  const other = ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }).public;
  const parsed = parseAuthorizedKeys(
    [`# mine`, pair.public, '', `restrict,command="x" ${pair.public}`, other, 'ssh-ed25519 !!!'].join('\n'),
    'keys',
  );
  assert.equal(parsed.keys.length, 2);
  assert.deepEqual(
    parsed.problems.map((p) => p.split(':').slice(0, 2).join(':')),
    ['keys:4', 'keys:6'],
  );
  assert.throws(() => protocolBackendFactory({ profile: 'genoa' }), /no model/);
});

test('snpsim sim-guest: prints its host key and how to connect; serves until SIGTERM', async () => {
  const keyFile = join(dir, 'sim_host_key');
  const child = spawn(
    process.execPath,
    [
      cli,
      'sim-guest',
      '--port',
      '0',
      '--backend',
      'protocol',
      '--authorized-keys',
      join(dir, 'id.pub'),
      '--host-key',
      keyFile,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('stop with Ctrl-C')) resolve();
    });
    child.once('exit', () => reject(new Error(`sim-guest exited early: ${out}`)));
  });
  const port = Number(/listening on 127\.0\.0\.1:(\d+)/.exec(out)?.[1]);
  const fingerprint = /host key +ssh-ed25519 (SHA256:\S+) \(created /.exec(out)?.[1] ?? '';
  assert.ok(port > 0, out);
  assert.equal(fingerprint, (await persistentHostKey(keyFile)).fingerprint);
  assert.ok(out.includes(`--host-key ${fingerprint}`));
  assert.ok(out.includes(`ssh-keyscan -p ${port} 127.0.0.1 >> ~/.ssh/known_hosts`));
  const target = new SshAgentTarget(`ssh://me@127.0.0.1:${port}`, {
    hostKey: { pins: [fingerprint] },
    auth: { agentSocket: null, identityFiles: [join(dir, 'id')] },
  });
  try {
    assert.equal((await target.open()).backend, 'sim');
  } finally {
    await target.close();
  }
  child.kill('SIGTERM');
  assert.equal(await exited, 0);
  assert.match(out, /SIGTERM, stopping/);
  assert.ok(readFileSync(`${keyFile}.pub`, 'utf8').startsWith('ssh-ed25519 '));
});

test('snpsim sim-guest: usage errors exit 2 with the reason', () => {
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [cli, 'sim-guest', ...args], { encoding: 'utf8' });
  const noPort = run('--backend', 'protocol');
  assert.equal(noPort.status, 2);
  assert.match(noPort.stderr, /--port N is required/);
  const badPort = run('--port', '70000');
  assert.equal(badPort.status, 2);
  assert.match(badPort.stderr, /--port 70000: expected 0\.\.65535/);
  const badBackend = run('--port', '0', '--backend', 'qemu');
  assert.equal(badBackend.status, 2);
  assert.match(badBackend.stderr, /--backend qemu: unknown; known: model, protocol/);
  const noKeys = run('--port', '0', '--authorized-keys', join(dir, 'absent.pub'));
  assert.equal(noKeys.status, 2);
  assert.match(noKeys.stderr, /cannot read authorized keys/);
});
