/**
 * One batch with a running agent (PROTOCOL.md "Framing"): all request lines written at once then
 * EOF, the hello line read first, then one response per request in order, each within the step
 * timeout. Transport-agnostic: an SSH exec channel and a local child process both fit AgentChannel.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import {
  type AgentHello,
  type AgentRequest,
  type AgentResponse,
  decodeHello,
  decodeResponse,
  encodeRequest,
  MAX_LINE_BYTES,
} from '../protocol/index.js';
import type { BatchResult } from './target.js';

/** A running agent: its stdin, stdout, stderr and end. */
export interface AgentChannel {
  /** Writes to the agent's stdin, then closes it (EOF). */
  sendAndEnd(text: string): void;
  onStdout(listener: (chunk: Buffer) => void): void;
  onStderr(listener: (chunk: Buffer) => void): void;
  /** Exit status or signal, when the transport reports one. */
  onExit(listener: (code: number | null, signal: string | null) => void): void;
  /** The channel is gone; all stdout has been delivered. */
  onClose(listener: () => void): void;
  /** Ends the agent run now (timeout, protocol violation). */
  abort(): void;
}

export interface ExchangeOptions {
  readonly stepTimeoutMs: number;
  readonly onResponse?: (response: AgentResponse, index: number) => void;
  /** `user@host:port` for messages. */
  readonly endpoint: string;
  /** The agent command, for messages. */
  readonly command: string;
  /** Why the transport died, when it did (checked when the channel closes early). */
  readonly connectionLoss?: () => { readonly code: SnpsimErrorCode; readonly message: string } | undefined;
}

/** Encodes a batch as request lines with seq 1..N; throws SnpsimError (INPUT_INVALID). */
export function encodeBatch(requests: readonly AgentRequest[]): string {
  let text = '';
  for (let i = 0; i < requests.length; i++) text += `${encodeRequest(i + 1, requests[i] as AgentRequest)}\n`;
  return text;
}

const STDERR_TAIL = 600;

function printable(text: string): string {
  return text.replace(/[^\x20-\x7e]+/g, ' ').trim();
}

/** Runs one batch over `channel`. Resolves with partial results on failure; never rejects for I/O. */
export function exchange(
  channel: AgentChannel,
  requests: readonly AgentRequest[],
  encoded: string,
  options: ExchangeOptions,
): Promise<BatchResult> {
  return new Promise<BatchResult>((resolve, reject) => {
    const responses: AgentResponse[] = [];
    let hello: AgentHello | undefined;
    let pending = '';
    let stderr = '';
    let exitCode: number | null = null;
    let exitSignal: string | null = null;
    let timer: NodeJS.Timeout | undefined;
    let done = false;
    const total = requests.length;
    const where = `${options.endpoint} (\`${options.command}\`)`;

    const finish = (error?: SnpsimError, callbackError?: unknown) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (error !== undefined || callbackError !== undefined) channel.abort();
      if (callbackError !== undefined) return reject(callbackError);
      const result: BatchResult = {
        ...(hello !== undefined ? { hello } : {}),
        responses,
        ...(error !== undefined ? { error } : {}),
      };
      resolve(result);
    };
    const stderrNote = () => {
      const tail = printable(stderr.slice(-STDERR_TAIL));
      return tail === '' ? '' : `; agent stderr: ${tail}`;
    };
    const progress = () =>
      hello === undefined ? 'before its hello line' : `after ${responses.length} of ${total} responses`;
    const fail = (code: SnpsimErrorCode, message: string) =>
      finish(
        new SnpsimError(code, message, {
          endpoint: options.endpoint,
          received: responses.length,
          requested: total,
        }),
      );
    const arm = () => {
      clearTimeout(timer);
      const index = responses.length;
      const request = hello === undefined ? undefined : requests[index];
      const waitMs = request?.verb === 'wait-marker' ? request.timeoutMs : 0;
      const limit = options.stepTimeoutMs + waitMs;
      timer = setTimeout(() => {
        const what =
          hello === undefined
            ? `no hello line within ${limit} ms`
            : index < total
              ? `no response to step ${index + 1} of ${total} (${request?.verb}) within ${limit} ms`
              : `the agent did not exit within ${limit} ms of its last response`;
        fail(
          SnpsimErrorCode.STEP_TIMEOUT,
          `${where}: ${what}; ${responses.length} of ${total} responses received`,
        );
      }, limit);
    };
    const onLine = (line: string) => {
      if (hello === undefined) {
        const decoded = decodeHello(line);
        if (!decoded.ok) {
          const code =
            decoded.error.reason === 'unsupported-protocol' ? 'unsupported protocol' : 'bad hello line';
          return fail(
            SnpsimErrorCode.AGENT_PROTOCOL,
            `${where}: ${code}: ${decoded.error.message}; line: ${printable(line).slice(0, 200)}`,
          );
        }
        hello = decoded.value;
        return arm();
      }
      const index = responses.length;
      const request = requests[index];
      if (request === undefined)
        return fail(
          SnpsimErrorCode.AGENT_PROTOCOL,
          `${where}: extra output after the last response: ${printable(line).slice(0, 200)}`,
        );
      const decoded = decodeResponse(line, request.verb);
      if (!decoded.ok)
        return fail(
          SnpsimErrorCode.AGENT_PROTOCOL,
          `${where}: response to step ${index + 1} (${request.verb}) is not protocol v1: ${decoded.error.message}; ` +
            `line: ${printable(line).slice(0, 200)}`,
        );
      if (decoded.value.seq !== index + 1)
        return fail(
          SnpsimErrorCode.AGENT_PROTOCOL,
          `${where}: response seq ${decoded.value.seq} where seq ${index + 1} (${request.verb}) was expected`,
        );
      responses.push(decoded.value);
      try {
        options.onResponse?.(decoded.value, index);
      } catch (error) {
        return finish(undefined, error);
      }
      arm();
    };

    channel.onStdout((chunk) => {
      if (done) return;
      pending += chunk.toString('latin1');
      let newline = pending.indexOf('\n');
      while (newline >= 0 && !done) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (line.length + 1 > MAX_LINE_BYTES)
          return fail(
            SnpsimErrorCode.AGENT_PROTOCOL,
            `${where}: output line of ${line.length + 1} bytes exceeds ${MAX_LINE_BYTES}`,
          );
        onLine(line);
        newline = pending.indexOf('\n');
      }
      if (!done && pending.length + 1 > MAX_LINE_BYTES)
        fail(SnpsimErrorCode.AGENT_PROTOCOL, `${where}: more than ${MAX_LINE_BYTES} bytes without a newline`);
    });
    channel.onStderr((chunk) => {
      stderr = (stderr + chunk.toString('latin1')).slice(-4 * STDERR_TAIL);
    });
    channel.onExit((code, signal) => {
      exitCode = code;
      exitSignal = signal;
    });
    channel.onClose(() => {
      if (done) return;
      if (pending !== '')
        return fail(
          SnpsimErrorCode.AGENT_PROTOCOL,
          `${where}: output ended inside a line: ${printable(pending).slice(0, 200)}`,
        );
      const loss = options.connectionLoss?.();
      const complete = hello !== undefined && responses.length === total;
      if (loss !== undefined && !complete)
        return fail(loss.code, `${loss.message} ${progress()} of ${where}${stderrNote()}`);
      const status =
        exitSignal !== null
          ? `was killed by signal ${exitSignal}`
          : exitCode !== null
            ? `exited with status ${exitCode}`
            : 'channel closed without an exit status (guest dead?)';
      if (hello === undefined) {
        const hint =
          exitCode === 127
            ? ': command not found (install the agent with `snpsim guest install --target ...`)'
            : exitCode === 126
              ? ': not executable'
              : '';
        return fail(
          SnpsimErrorCode.AGENT_PROTOCOL,
          `${where}: the agent ${status} before its hello line${hint}${stderrNote()}`,
        );
      }
      if (!complete)
        return fail(SnpsimErrorCode.GUEST_DIED, `${where}: the agent ${status} ${progress()}${stderrNote()}`);
      if ((exitCode !== null && exitCode !== 0) || exitSignal !== null)
        return fail(
          SnpsimErrorCode.AGENT_PROTOCOL,
          `${where}: the agent ${status} after answering every request${stderrNote()}`,
        );
      finish();
    });
    arm();
    channel.sendAndEnd(encoded);
  });
}

/** Adapts an ssh2 exec channel (a duplex stream with `stderr` and `exit`). */
export interface Ssh2ExecStream {
  write(data: string): unknown;
  end(): unknown;
  close(): unknown;
  on(event: 'data', listener: (chunk: Buffer) => void): unknown;
  on(event: 'close', listener: () => void): unknown;
  on(event: 'exit', listener: (code: number | null, signal?: string) => void): unknown;
  readonly stderr: { on(event: 'data', listener: (chunk: Buffer) => void): unknown };
}

export function ssh2AgentChannel(stream: Ssh2ExecStream): AgentChannel {
  return {
    sendAndEnd(text) {
      if (text !== '') stream.write(text);
      stream.end();
    },
    onStdout: (listener) => void stream.on('data', listener),
    onStderr: (listener) => void stream.stderr.on('data', listener),
    onExit: (listener) => void stream.on('exit', (code, signal) => listener(code ?? null, signal ?? null)),
    onClose: (listener) => void stream.on('close', () => listener()),
    abort: () => void stream.close(),
  };
}
