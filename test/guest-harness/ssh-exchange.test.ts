/**
 * The client side of a batch against a scripted agent channel: every way an agent's output can be
 * wrong is AGENT_PROTOCOL, an early end is GUEST_DIED, silence is STEP_TIMEOUT; partial responses
 * are kept.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  type AgentChannel,
  type AgentRequest,
  type BatchResult,
  encodeBatch,
  exchange,
  SnpsimErrorCode,
} from '../../guest-harness/index.js';

const HELLO = 'snpsim-agent protocol=1 agent=0.1.0 backend=sim kernel=none module=none';

interface Script {
  /** stdout chunks, delivered after the requests were sent. */
  readonly out: readonly string[];
  readonly stderr?: string;
  /** Exit status reported, then close; `undefined`: stay open. */
  readonly exit?: number | null;
  readonly signal?: string;
  readonly lost?: string;
}

function run(
  requests: readonly AgentRequest[],
  script: Script,
  stepTimeoutMs = 1000,
): Promise<BatchResult & { sent: string; aborted: boolean }> {
  let sent = '';
  let aborted = false;
  const listeners = {
    out: [] as ((c: Buffer) => void)[],
    err: [] as ((c: Buffer) => void)[],
    exit: [] as ((c: number | null, s: string | null) => void)[],
    close: [] as (() => void)[],
  };
  const channel: AgentChannel = {
    sendAndEnd(text) {
      sent = text;
      setImmediate(() => {
        for (const chunk of script.out) for (const l of listeners.out) l(Buffer.from(chunk, 'latin1'));
        if (script.stderr !== undefined) for (const l of listeners.err) l(Buffer.from(script.stderr));
        if (script.exit !== undefined) {
          for (const l of listeners.exit) l(script.exit, script.signal ?? null);
          for (const l of listeners.close) l();
        }
      });
    },
    onStdout: (l) => void listeners.out.push(l),
    onStderr: (l) => void listeners.err.push(l),
    onExit: (l) => void listeners.exit.push(l),
    onClose: (l) => void listeners.close.push(l),
    abort: () => {
      aborted = true;
    },
  };
  const lost = script.lost;
  return exchange(channel, requests, encodeBatch(requests), {
    stepTimeoutMs,
    endpoint: 'root@guest:22',
    command: "'/agent'",
    connectionLoss: () =>
      lost === undefined ? undefined : { code: SnpsimErrorCode.GUEST_DIED, message: lost },
  }).then((r) => ({ ...r, sent, aborted }));
}

const two: AgentRequest[] = [{ verb: 'sev-info' }, { verb: 'pv-kick', apic: 2 }];

test('all request lines are written at once with seq 1..N; responses split across chunks are reassembled', async () => {
  const r = await run(two, {
    out: [`${HELLO}\n1 ok msr=0x`, '33000001 max=2 min=1 cbit=51\n2 ok re', 't=-22\n'],
    exit: 0,
  });
  assert.equal(r.sent, '1 sev-info\n2 pv-kick apic=2\n');
  assert.equal(r.error, undefined);
  assert.deepEqual(
    r.responses.map((x) => (x.status === 'ok' && x.verb === 'pv-kick' ? x.ret : x.seq)),
    [1, -22],
  );
  assert.equal(r.aborted, false);
});

const cases: [string, Script, string, RegExp, number][] = [
  [
    'no hello',
    { out: [], exit: 127 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /status 127 before its hello line: command not found/,
    0,
  ],
  [
    'not executable',
    { out: [], exit: 126, stderr: 'Permission denied' },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /not executable; agent stderr: Permission denied/,
    0,
  ],
  [
    'bad hello',
    { out: ['hello there\n'], exit: 0 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /bad hello line: hello must start with snpsim-agent/,
    0,
  ],
  [
    'newer protocol',
    { out: ['snpsim-agent protocol=2 agent=9 backend=sim kernel=none module=none\n'], exit: 0 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /unsupported protocol: agent speaks protocol 2/,
    0,
  ],
  [
    'wrong seq',
    { out: [`${HELLO}\n2 ok msr=0x0 max=1 min=1 cbit=51\n`], exit: 0 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /response seq 2 where seq 1 \(sev-info\) was expected/,
    0,
  ],
  [
    'garbage response',
    { out: [`${HELLO}\n1 ok msr=0x0 max=1 min=1 cbit=51\n2 ok\n`], exit: 0 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /step 2 \(pv-kick\) is not protocol v1: pv-kick response: missing ret=/,
    1,
  ],
  [
    'extra output',
    { out: [`${HELLO}\n1 err code=busy\n2 err code=busy\n3 ok\n`], exit: 0 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /extra output after the last response/,
    2,
  ],
  [
    'unterminated line',
    { out: [`${HELLO}\n1 err code=busy`], exit: 0 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /output ended inside a line/,
    0,
  ],
  [
    'overlong line',
    { out: [`${HELLO}\n${'1'.repeat(1100)}`] },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /more than 1024 bytes without a newline/,
    0,
  ],
  [
    'non-zero exit after all responses',
    { out: [`${HELLO}\n1 err code=busy\n2 err code=busy\n`], exit: 1 },
    SnpsimErrorCode.AGENT_PROTOCOL,
    /exited with status 1 after answering every request/,
    2,
  ],
  [
    'agent died mid-batch',
    { out: [`${HELLO}\n1 err code=busy\n`], exit: null, signal: 'SIGSEGV', stderr: 'oops\x00\x01' },
    SnpsimErrorCode.GUEST_DIED,
    /was killed by signal SIGSEGV after 1 of 2 responses; agent stderr: oops/,
    1,
  ],
  [
    'connection lost mid-batch',
    { out: [`${HELLO}\n1 err code=busy\n`], exit: null, lost: 'connection to root@guest:22 lost' },
    SnpsimErrorCode.GUEST_DIED,
    /connection to root@guest:22 lost after 1 of 2 responses/,
    1,
  ],
  [
    'silent agent',
    { out: [`${HELLO}\n1 err code=busy\n`] },
    SnpsimErrorCode.STEP_TIMEOUT,
    /no response to step 2 of 2 \(pv-kick\) within 50 ms; 1 of 2 responses received/,
    1,
  ],
  [
    'no exit after the last response',
    { out: [`${HELLO}\n1 err code=busy\n2 err code=busy\n`] },
    SnpsimErrorCode.STEP_TIMEOUT,
    /the agent did not exit within 50 ms of its last response; 2 of 2/,
    2,
  ],
];

for (const [name, script, code, message, kept] of cases) {
  test(`agent output: ${name}`, async () => {
    const r = await run(two, script, 50);
    assert.equal(r.error?.code, code, r.error?.message);
    assert.match(r.error?.message ?? '', message);
    assert.match(r.error?.message ?? '', /root@guest:22/);
    assert.equal(r.responses.length, kept);
    assert.equal(r.aborted, true);
  });
}

test('a wait-marker step gets its timeout_ms on top of the step timeout', async () => {
  const r = await run([{ verb: 'wait-marker', h: 0, timeoutMs: 500 }], { out: [`${HELLO}\n`] }, 50);
  assert.equal(r.error?.code, SnpsimErrorCode.STEP_TIMEOUT);
  assert.match(r.error?.message ?? '', /within 550 ms/);
});

test("an exception in onResponse is the caller's bug: it rejects, the channel is aborted", async () => {
  let aborted = false;
  const listeners: ((c: Buffer) => void)[] = [];
  const channel: AgentChannel = {
    sendAndEnd: () =>
      setImmediate(() => {
        for (const l of listeners) l(Buffer.from(`${HELLO}\n1 err code=busy\n`));
      }),
    onStdout: (l) => void listeners.push(l),
    onStderr: () => undefined,
    onExit: () => undefined,
    onClose: () => undefined,
    abort: () => {
      aborted = true;
    },
  };
  await assert.rejects(
    exchange(channel, [{ verb: 'hello' }], '1 hello\n', {
      stepTimeoutMs: 1000,
      endpoint: 'e',
      command: 'c',
      onResponse: () => {
        throw new TypeError('caller bug');
      },
    }),
    TypeError,
  );
  assert.equal(aborted, true);
});
