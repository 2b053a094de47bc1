/**
 * `ssh`: agent-protocol steps per second over loopback SSH against the ssh2 simulated guest (one
 * batch = one exec channel: all request lines written at once, responses streamed back), beside the
 * round trips per second of a raw ssh2 echo channel on the same machine. The ratio shows what
 * batching buys (a batch pipelines its steps into one round trip) and what the protocol, the codec
 * and the backend cost on top of SSH itself.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { Bench } from 'tinybench';
import {
  type AgentBackend,
  type AgentRequest,
  generateEd25519KeyPair,
  parseAuthorizedKeys,
  protocolBackend,
  SimGuestServer,
  SshAgentTarget,
  simBackends,
} from '../guest-harness/index.js';
import type { BenchOptions, BenchRow, BenchSuite } from './suite.js';

const STEPS = 100;
const ECHO_ROUND_TRIPS = 100;

interface Setup {
  readonly dir: string;
  readonly identity: string;
  readonly authorized: ReturnType<typeof parseAuthorizedKeys>['keys'];
}

function setup(): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'snpsim-bench-ssh-'));
  const pair = generateEd25519KeyPair();
  const identity = join(dir, 'id_ed25519');
  writeFileSync(identity, pair.private, { mode: 0o600 });
  return { dir, identity, authorized: parseAuthorizedKeys(pair.public, 'bench').keys };
}

async function simTarget(
  s: Setup,
  backend: AgentBackend,
): Promise<{ server: SimGuestServer; target: SshAgentTarget }> {
  const server = await SimGuestServer.start({ backend, authorizedKeys: s.authorized });
  const target = new SshAgentTarget(`ssh://bench@127.0.0.1:${server.port}`, {
    hostKey: { pins: [server.hostKey.fingerprint] },
    auth: { agentSocket: null, identityFiles: [s.identity] },
    keepaliveIntervalMs: 0,
  });
  await target.open();
  return { server, target };
}

/** An ssh2 server whose exec channels echo their input, and one client channel on it. */
async function echoChannel(): Promise<{
  roundTrips: (n: number) => Promise<void>;
  close: () => Promise<void>;
}> {
  const hostKey = generateEd25519KeyPair().private;
  const server = new ssh2.Server({ hostKeys: [hostKey] }, (client) => {
    // ssh2's server Connection has setNoDelay (lib/server.js); @types/ssh2 omits it.
    (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    client.on('authentication', (ctx) => ctx.accept());
    client.on('ready', () =>
      client.on('session', (accept) =>
        accept().once('exec', (acceptExec) => {
          const channel = acceptExec();
          channel.on('data', (chunk: Buffer) => channel.write(chunk));
        }),
      ),
    );
    client.on('error', () => undefined);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const client = new ssh2.Client();
  await new Promise<void>((resolve, reject) => {
    client.once('ready', resolve).once('error', reject);
    // The baseline measures channel round trips only: no auth beyond `none`, no host-key check.
    client.connect({ host: '127.0.0.1', port, username: 'bench', hostVerifier: () => true });
    client.setNoDelay(true);
  });
  const channel = await new Promise<ssh2.ClientChannel>((resolve, reject) =>
    client.exec('echo', (error, stream) => (error ? reject(error) : resolve(stream))),
  );
  let waiting: (() => void) | undefined;
  channel.on('data', () => waiting?.());
  return {
    roundTrips: async (n) => {
      for (let i = 0; i < n; i++) {
        const answered = new Promise<void>((resolve) => {
          waiting = resolve;
        });
        channel.write('1 hello\n');
        await answered;
      }
    },
    close: async () => {
      client.end();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function p50ms(bench: Bench, name: string): number {
  const r = bench.getTask(name)?.result;
  if (r === undefined || r.state !== 'completed') throw new Error(`ssh: task ${name} did not complete`);
  return r.latency.p50;
}

export const sshSuite: BenchSuite = {
  name: 'ssh',
  description: `agent-protocol steps/s over loopback SSH (simulated guest) vs raw ssh2 echo round trips/s`,
  async run({ quick, log }: BenchOptions): Promise<BenchRow[]> {
    const s = setup();
    const hello: AgentRequest[] = Array.from({ length: STEPS }, () => ({ verb: 'hello' }));
    const features: AgentRequest[] = Array.from({ length: STEPS }, () => ({ verb: 'hv-features' }));
    const closers: (() => Promise<void>)[] = [];
    try {
      const proto = await simTarget(s, protocolBackend());
      closers.push(
        () => proto.target.close(),
        () => proto.server.close(),
      );
      const modelFactory = simBackends.model;
      const model = modelFactory === undefined ? undefined : await simTarget(s, await modelFactory({}));
      if (model !== undefined)
        closers.push(
          () => model.target.close(),
          () => model.server.close(),
        );
      const echo = await echoChannel();
      closers.push(echo.close);
      const run = async (target: SshAgentTarget, requests: readonly AgentRequest[]) => {
        const result = await target.runBatch(requests, { stepTimeoutMs: 10_000 });
        if (result.error !== undefined || result.responses.length !== requests.length)
          throw new Error(`ssh: batch failed: ${result.error?.message ?? 'missing responses'}`);
      };
      const bench = new Bench({
        time: quick ? 200 : 2000,
        iterations: quick ? 3 : 10,
        warmupIterations: 2,
        throws: true,
      });
      bench.add('echo', () => echo.roundTrips(ECHO_ROUND_TRIPS));
      bench.add('protocol/batch', () => run(proto.target, hello));
      bench.add('protocol/single', () => run(proto.target, hello.slice(0, 1)));
      if (model !== undefined) bench.add('model/batch', () => run(model.target, features));
      log('ssh: running');
      await bench.run();
      const echoPerSecond = (ECHO_ROUND_TRIPS * 1000) / p50ms(bench, 'echo');
      const baseline = { name: 'raw ssh2 echo round trips/s', value: echoPerSecond };
      const rows: BenchRow[] = [
        {
          suite: 'ssh',
          case: `protocol backend / batch of ${STEPS} hello`,
          metric: 'steps/s',
          value: (STEPS * 1000) / p50ms(bench, 'protocol/batch'),
          perSecond: (STEPS * 1000) / p50ms(bench, 'protocol/batch'),
          baseline,
          ratio: (STEPS * 1000) / p50ms(bench, 'protocol/batch') / echoPerSecond,
          notes: 'one exec channel per batch; steps pipelined',
        },
        {
          suite: 'ssh',
          case: 'protocol backend / batch of 1 hello',
          metric: 'batches/s',
          value: 1000 / p50ms(bench, 'protocol/single'),
          perSecond: 1000 / p50ms(bench, 'protocol/single'),
          baseline,
          ratio: 1000 / p50ms(bench, 'protocol/single') / echoPerSecond,
          notes: 'channel open + hello + one step + exit: the cost of a round trip per step',
        },
      ];
      if (model !== undefined) {
        const perSecond = (STEPS * 1000) / p50ms(bench, 'model/batch');
        rows.push({
          suite: 'ssh',
          case: `model backend / batch of ${STEPS} hv-features`,
          metric: 'steps/s',
          value: perSecond,
          perSecond,
          baseline,
          ratio: perSecond / echoPerSecond,
          notes: 'a freshly booted model guest per batch',
        });
      }
      rows.push({
        suite: 'ssh',
        case: 'raw ssh2 echo channel',
        metric: 'round trips/s',
        value: echoPerSecond,
        perSecond: echoPerSecond,
        notes: `${ECHO_ROUND_TRIPS} sequential line round trips on one exec channel`,
      });
      return rows;
    } finally {
      for (const close of closers.reverse()) await close().catch(() => undefined);
      rmSync(s.dir, { recursive: true, force: true });
    }
  },
};
