/**
 * End to end over real SSH on loopback: the ssh2 simulated guest and the SSH target.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import ssh2 from 'ssh2';
import {
  type AgentBackend,
  type AgentReply,
  type AgentRequest,
  type AgentResponse,
  generateEd25519KeyPair,
  protocolBackend,
  runFleet,
  SimGuestServer,
  SnpsimError,
  SnpsimErrorCode,
  SshAgentTarget,
  type SshTargetOptions,
} from '../../guest-harness/index.js';

const dir = mkdtempSync(join(tmpdir(), 'snpsim-e2e-'));
const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const c of cleanups.reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

function userKey(name: string, passphrase?: string) {
  const pair =
    passphrase === undefined
      ? generateEd25519KeyPair()
      : generateEd25519KeyPair({ passphrase, cipher: 'aes256-ctr', rounds: 1 });
  const file = join(dir, name);
  writeFileSync(file, pair.private, { mode: 0o600 });
  writeFileSync(`${file}.pub`, `${pair.public}\n`);
  const parsed = ssh2.utils.parseKey(pair.public);
  if (parsed instanceof Error) throw parsed;
  return { file, pub: parsed };
}

const alice = userKey('alice');
const mallory = userKey('mallory');

async function startSim(backend: AgentBackend = protocolBackend()): Promise<SimGuestServer> {
  const server = await SimGuestServer.start({ backend, authorizedKeys: [alice.pub] });
  cleanups.push(() => server.close());
  return server;
}

function targetFor(server: SimGuestServer, overrides: Partial<SshTargetOptions> = {}): SshAgentTarget {
  const target = new SshAgentTarget(`ssh://root@127.0.0.1:${server.port}`, {
    hostKey: { pins: [server.hostKey.fingerprint] },
    auth: { agentSocket: null, identityFiles: [alice.file] },
    keepaliveIntervalMs: 0,
    ...overrides,
  });
  cleanups.push(() => target.close());
  return target;
}

async function rejects(promise: Promise<unknown>, code: string, message?: RegExp): Promise<SnpsimError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(SnpsimError.is(error), `not a SnpsimError: ${String(error)}`);
    assert.equal(error.code, code, error.message);
    if (message !== undefined) assert.match(error.message, message);
    return error;
  }
  assert.fail(`expected ${code}`);
}

/** A backend whose replies come from a function; `cpus=2` in the hello tells it apart. */
function scripted(
  answer: (request: AgentRequest, index: number) => AgentReply | Promise<AgentReply>,
): AgentBackend {
  const base = protocolBackend({ cpus: 2 });
  return {
    hello: base.hello,
    openSession: () => {
      let index = 0;
      return { execute: (request) => answer(request, index++), close: () => undefined };
    },
  };
}

const reEscape = (text: string) => text.replace(/[+/]/g, '\\$&');

test('open() reads the hello; a batch returns one response per request, in order, streamed', async () => {
  const server = await startSim();
  const target = targetFor(server);
  const hello = await target.open();
  assert.equal(hello.backend, 'sim');
  assert.equal(hello.protocol, 1);
  assert.equal(hello.cpus, 4);
  const requests: AgentRequest[] = [
    { verb: 'hello' },
    { verb: 'hv-features' },
    { verb: 'cpu-offline', cpu: 1 },
    { verb: 'hello' },
  ];
  const seen: [number, number][] = [];
  const result = await target.runBatch(requests, {
    stepTimeoutMs: 5000,
    onResponse: (response, index) => seen.push([index, response.seq]),
  });
  assert.equal(result.error, undefined);
  assert.deepEqual(seen, [
    [0, 1],
    [1, 2],
    [2, 3],
    [3, 4],
  ]);
  assert.deepEqual(
    result.responses.map((r) => [r.seq, r.verb, r.status, r.status === 'err' ? r.code : '']),
    [
      [1, 'hello', 'ok', ''],
      [2, 'hv-features', 'err', 'unsupported'],
      [3, 'cpu-offline', 'err', 'unsupported'],
      [4, 'hello', 'ok', ''],
    ],
  );
  const first = result.responses[0];
  assert.ok(first?.status === 'ok' && first.verb === 'hello' && first.hello.kernel === 'none');
  assert.equal(result.hello?.agent, '0.1.0');
  // An empty batch is a hello only.
  const empty = await target.runBatch([], { stepTimeoutMs: 5000 });
  assert.deepEqual([empty.responses.length, empty.error], [0, undefined]);
});

test('a request that cannot be encoded is refused before anything is sent', async () => {
  const server = await startSim();
  const target = targetFor(server);
  await target.open();
  const result = await target.runBatch([{ verb: 'hello' }, { verb: 'vmsa-free', h: 99 }], {
    stepTimeoutMs: 5000,
  });
  assert.equal(result.responses.length, 0);
  assert.equal(result.error?.code, SnpsimErrorCode.INPUT_INVALID);
  assert.match(result.error?.message ?? '', /vmsa-free: h = 99/);
});

test('a wrong pinned host key is refused, showing the offered fingerprint', async () => {
  const server = await startSim();
  const other = await startSim();
  const target = targetFor(server, { hostKey: { pins: [other.hostKey.fingerprint] } });
  const error = await rejects(target.open(), SnpsimErrorCode.SSH_HOSTKEY_MISMATCH);
  assert.match(error.message, new RegExp(`offered ssh-ed25519 ${reEscape(server.hostKey.fingerprint)}`));
  assert.match(error.message, new RegExp(`pinned ${reEscape(other.hostKey.fingerprint)}`));
  assert.match(error.message, new RegExp(`127\\.0\\.0\\.1:${server.port}`));
});

test('an unknown host key is refused by default, with the fingerprint and how to pin it', async () => {
  const server = await startSim();
  const knownHosts = join(dir, 'kh-unknown');
  const target = targetFor(server, { hostKey: { knownHostsFiles: [knownHosts] } });
  const error = await rejects(target.open(), SnpsimErrorCode.SSH_HOSTKEY_UNKNOWN);
  assert.ok(error.message.includes(server.hostKey.fingerprint));
  assert.ok(error.message.includes(`--host-key ${server.hostKey.fingerprint}`));
  assert.ok(error.message.includes(`ssh-keyscan -p ${server.port} 127.0.0.1 >> ~/.ssh/known_hosts`));
  assert.equal(existsSync(knownHosts), false);
});

test('accept-new remembers the key in known_hosts; strict mode then accepts it; a changed key is refused', async () => {
  const server = await startSim();
  const knownHosts = join(dir, 'kh-accept');
  const first = targetFor(server, { hostKey: { knownHostsFiles: [knownHosts], mode: 'accept-new' } });
  await first.open();
  assert.match(
    readFileSync(knownHosts, 'utf8'),
    new RegExp(`^\\[127\\.0\\.0\\.1\\]:${server.port} ssh-ed25519 `),
  );
  const strict = targetFor(server, { hostKey: { knownHostsFiles: [knownHosts] } });
  await strict.open();
  // The same host:port now answers with another key: refused even in accept-new mode.
  const port = server.port;
  await server.close();
  const impostor = await SimGuestServer.start({
    backend: protocolBackend(),
    authorizedKeys: [alice.pub],
    port,
  });
  cleanups.push(() => impostor.close());
  const again = targetFor(impostor, { hostKey: { knownHostsFiles: [knownHosts], mode: 'accept-new' } });
  const error = await rejects(again.open(), SnpsimErrorCode.SSH_HOSTKEY_MISMATCH, /REMOTE HOST KEY CHANGED/);
  assert.ok(error.message.includes(impostor.hostKey.fingerprint));
});

test('authentication failure names what was offered', async () => {
  const server = await startSim();
  const target = targetFor(server, { auth: { agentSocket: null, identityFiles: [mallory.file] } });
  const error = await rejects(target.open(), SnpsimErrorCode.SSH_AUTH, /accepted none of/);
  assert.ok(error.message.includes(mallory.file));
  assert.match(error.message, /root@127\.0\.0\.1:\d+/);
});

test('an encrypted key needs a passphrase (option or SNPSIM_SSH_PASSPHRASE); without one nothing prompts', async () => {
  const carol = userKey('carol', 'correct horse');
  const sim = await SimGuestServer.start({ backend: protocolBackend(), authorizedKeys: [carol.pub] });
  cleanups.push(() => sim.close());
  const saved = process.env.SNPSIM_SSH_PASSPHRASE;
  delete process.env.SNPSIM_SSH_PASSPHRASE;
  try {
    const none = targetFor(sim, { auth: { agentSocket: null, identityFiles: [carol.file] } });
    await rejects(none.open(), SnpsimErrorCode.SSH_AUTH, /encrypted, and no passphrase given.*never prompts/);
    const passFile = join(dir, 'carol.pass');
    writeFileSync(passFile, 'correct horse\n');
    const withFile = targetFor(sim, {
      auth: { agentSocket: null, identityFiles: [carol.file], passphraseFile: passFile },
    });
    assert.equal((await withFile.open()).backend, 'sim');
    process.env.SNPSIM_SSH_PASSPHRASE = 'correct horse';
    const withEnv = targetFor(sim, { auth: { agentSocket: null, identityFiles: [carol.file] } });
    assert.equal((await withEnv.open()).backend, 'sim');
    process.env.SNPSIM_SSH_PASSPHRASE = 'wrong';
    const wrong = targetFor(sim, { auth: { agentSocket: null, identityFiles: [carol.file] } });
    await rejects(wrong.open(), SnpsimErrorCode.SSH_AUTH, /bad passphrase/);
  } finally {
    if (saved === undefined) delete process.env.SNPSIM_SSH_PASSPHRASE;
    else process.env.SNPSIM_SSH_PASSPHRASE = saved;
  }
});

const hasAgent = spawnSync('ssh-agent', ['-h'], { stdio: 'ignore' }).error === undefined;

test('ssh-agent authentication', { skip: !hasAgent && 'ssh-agent is not installed' }, async () => {
  const server = await startSim();
  const socket = join(dir, 'agent.sock');
  const agent: ChildProcess = spawn('ssh-agent', ['-D', '-a', socket], { stdio: 'ignore' });
  cleanups.push(() => {
    agent.kill();
  });
  for (let i = 0; i < 100 && !existsSync(socket); i++) await new Promise((r) => setTimeout(r, 20));
  const added = spawnSync('ssh-add', [alice.file], {
    env: { ...process.env, SSH_AUTH_SOCK: socket },
    stdio: 'ignore',
  });
  assert.equal(added.status, 0);
  const target = targetFor(server, { auth: { agentSocket: socket, identityFiles: [] } });
  assert.equal((await target.open()).backend, 'sim');
  // Without keys in files and with an agent that holds no accepted key, auth fails cleanly.
  const other = await SimGuestServer.start({ backend: protocolBackend(), authorizedKeys: [mallory.pub] });
  cleanups.push(() => other.close());
  const refused = targetFor(other, { auth: { agentSocket: socket, identityFiles: [] } });
  await rejects(refused.open(), SnpsimErrorCode.SSH_AUTH, new RegExp(`ssh-agent at ${reEscape(socket)}`));
});

test('connection refused, DNS failure and handshake timeout have their own codes', async () => {
  const closed: Server = createServer();
  await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
  const address = closed.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await new Promise<void>((r) => closed.close(() => r()));
  const auth = { agentSocket: null, identityFiles: [alice.file] };
  const refused = new SshAgentTarget(`ssh://root@127.0.0.1:${port}`, { hostKey: { pins: [] }, auth });
  await rejects(
    refused.open(),
    SnpsimErrorCode.SSH_CONNECTION_REFUSED,
    new RegExp(`root@127\\.0\\.0\\.1:${port}`),
  );

  const dns = new SshAgentTarget('ssh://root@no-such-guest.invalid:22', { hostKey: { pins: [] }, auth });
  await rejects(dns.open(), SnpsimErrorCode.SSH_DNS, /no-such-guest\.invalid/);

  // A server that accepts TCP and never speaks SSH.
  const held: Socket[] = [];
  const silent: Server = createServer((socket) => void held.push(socket));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  cleanups.push(() => {
    for (const socket of held) socket.destroy();
    return new Promise<void>((r) => silent.close(() => r()));
  });
  const silentAddress = silent.address();
  const silentPort = typeof silentAddress === 'object' && silentAddress !== null ? silentAddress.port : 0;
  const hung = new SshAgentTarget(`ssh://root@127.0.0.1:${silentPort}`, {
    hostKey: { pins: [] },
    auth,
    readyTimeoutMs: 300,
  });
  await rejects(
    hung.open(),
    SnpsimErrorCode.SSH_TIMEOUT,
    /no SSH handshake with root@127\.0\.0\.1:\d+ within 300 ms/,
  );
});

test('a connection cut mid-batch is GUEST_DIED with the responses received so far', async () => {
  let server: SimGuestServer | undefined;
  server = await startSim(
    scripted((request, index) => {
      if (index === 2) {
        server?.dropConnections();
        return new Promise<AgentReply>(() => undefined);
      }
      return request.verb === 'hello'
        ? { status: 'ok', verb: 'hello', hello: protocolBackend({ cpus: 2 }).hello() }
        : { status: 'err', verb: request.verb, code: 'unsupported' };
    }),
  );
  const target = targetFor(server);
  await target.open();
  const result = await target.runBatch(
    [{ verb: 'hello' }, { verb: 'sev-info' }, { verb: 'hello' }, { verb: 'hello' }],
    { stepTimeoutMs: 5000 },
  );
  assert.equal(result.error?.code, SnpsimErrorCode.GUEST_DIED);
  assert.match(
    result.error?.message ?? '',
    /connection to root@127\.0\.0\.1:\d+ lost .*after 2 of 4 responses/,
  );
  assert.deepEqual(
    result.responses.map((r) => r.verb),
    ['hello', 'sev-info'],
  );
  // The target knows its connection is gone: a later batch fails at once.
  const later = await target.runBatch([{ verb: 'hello' }], { stepTimeoutMs: 5000 });
  assert.equal(later.error?.code, SnpsimErrorCode.GUEST_DIED);
  assert.equal(later.responses.length, 0);
  // open() reconnects (a guest that came back); batches work again.
  await target.open();
  const again = await target.runBatch([{ verb: 'hello' }], { stepTimeoutMs: 5000 });
  assert.equal(again.error, undefined);
  assert.equal(again.responses.length, 1);
});

test('a guest that hangs (TCP up, nothing answered) is detected by keepalive: GUEST_DIED', async () => {
  let server: SimGuestServer | undefined;
  server = await startSim(
    scripted((request) => {
      if (request.verb === 'pv-kick') {
        server?.freezeConnections();
        return new Promise<AgentReply>(() => undefined);
      }
      return { status: 'err', verb: request.verb, code: 'unsupported' };
    }),
  );
  const target = targetFor(server, { keepaliveIntervalMs: 100, keepaliveCountMax: 2 });
  await target.open();
  const result = await target.runBatch([{ verb: 'sev-info' }, { verb: 'pv-kick', apic: 1 }], {
    stepTimeoutMs: 60_000,
  });
  assert.equal(result.error?.code, SnpsimErrorCode.GUEST_DIED);
  assert.match(
    result.error?.message ?? '',
    /keepalives unanswered \(guest hung, or network down\) after 1 of 2 responses/,
  );
  assert.equal(result.responses.length, 1);
});

test('a step that never answers is STEP_TIMEOUT with the earlier responses; the connection survives', async () => {
  const server = await startSim(
    scripted((request) =>
      request.verb === 'pv-kick'
        ? new Promise<AgentReply>(() => undefined)
        : { status: 'err', verb: request.verb, code: 'unsupported' },
    ),
  );
  const target = targetFor(server);
  await target.open();
  const result = await target.runBatch(
    [{ verb: 'sev-info' }, { verb: 'pv-kick', apic: 1 }, { verb: 'sev-info' }],
    { stepTimeoutMs: 200 },
  );
  assert.equal(result.error?.code, SnpsimErrorCode.STEP_TIMEOUT);
  assert.match(
    result.error?.message ?? '',
    /no response to step 2 of 3 \(pv-kick\) within 200 ms; 1 of 3 responses received/,
  );
  assert.equal(result.responses.length, 1);
  const next = await target.runBatch([{ verb: 'sev-info' }], { stepTimeoutMs: 2000 });
  assert.equal(next.error, undefined);
  assert.equal(next.responses.length, 1);
});

test('an agent that exits mid-batch is GUEST_DIED, with its exit status and stderr', async () => {
  const server = await startSim(
    scripted((request, index) => {
      if (index === 1) throw new Error('model exploded');
      return { status: 'err', verb: request.verb, code: 'unsupported' };
    }),
  );
  const target = targetFor(server);
  await target.open();
  const result = await target.runBatch([{ verb: 'sev-info' }, { verb: 'sev-info' }, { verb: 'sev-info' }], {
    stepTimeoutMs: 5000,
  });
  assert.equal(result.error?.code, SnpsimErrorCode.GUEST_DIED);
  assert.match(
    result.error?.message ?? '',
    /exited with status 70 after 1 of 3 responses; agent stderr: .*model exploded/,
  );
  assert.equal(result.responses.length, 1);
});

test('batches queue below MaxSessions on one connection and each gets its own handles', async () => {
  let open = 0;
  let peak = 0;
  const backend: AgentBackend = {
    hello: protocolBackend().hello,
    openSession: () => {
      open++;
      peak = Math.max(peak, open);
      return {
        execute: async (request) => {
          await new Promise((r) => setTimeout(r, 5));
          return { status: 'err', verb: request.verb, code: 'unsupported' };
        },
        close: () => {
          open--;
        },
      };
    },
  };
  const server = await startSim(backend);
  const target = targetFor(server, { maxSessions: 3 });
  await target.open();
  const results = await Promise.all(
    Array.from({ length: 12 }, () =>
      target.runBatch([{ verb: 'sev-info' }, { verb: 'hv-features' }], { stepTimeoutMs: 5000 }),
    ),
  );
  assert.ok(results.every((r) => r.error === undefined && r.responses.length === 2));
  assert.ok(peak <= 3, `peak ${peak} sessions`);
  assert.ok(peak >= 2, `peak ${peak}: batches did not overlap at all`);
});

test('fleet: several targets in parallel, each with its own outcome, failures kept per target', async () => {
  const one = await startSim();
  const two = await startSim(scripted((r) => ({ status: 'err', verb: r.verb, code: 'busy' })));
  const three = await startSim();
  const bad = targetFor(three, { hostKey: { pins: [two.hostKey.fingerprint] } });
  const targets = [targetFor(one), targetFor(two), bad];
  let concurrent = 0;
  let peak = 0;
  const outcomes = await runFleet(
    targets,
    async (target) => {
      concurrent++;
      peak = Math.max(peak, concurrent);
      try {
        const hello = await target.open();
        const result = await target.runBatch([{ verb: 'sev-info' }], { stepTimeoutMs: 5000 });
        return {
          cpus: hello.cpus,
          codes: result.responses.map((r: AgentResponse) => (r.status === 'err' ? r.code : 'ok')),
        };
      } finally {
        concurrent--;
      }
    },
    { concurrency: 2 },
  );
  assert.ok(peak <= 2);
  assert.deepEqual(
    outcomes.map((o) => [o.target, o.ok]),
    targets.map((t, i) => [t.id, i < 2]),
  );
  assert.deepEqual(outcomes[0]?.ok && outcomes[0].value, { cpus: 4, codes: ['unsupported'] });
  assert.deepEqual(outcomes[1]?.ok && outcomes[1].value, { cpus: 2, codes: ['busy'] });
  const third = outcomes[2];
  assert.ok(third !== undefined && !third.ok && third.error.code === SnpsimErrorCode.SSH_HOSTKEY_MISMATCH);
  await assert.rejects(
    runFleet([targets[0] as SshAgentTarget, targets[0] as SshAgentTarget], async () => 1),
    /listed twice/,
  );
  await assert.rejects(
    runFleet([targets[0] as SshAgentTarget], async () => {
      throw new TypeError('bug in caller');
    }),
    TypeError,
  );
});
