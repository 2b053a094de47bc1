/**
 * The agent side of one agent run (PROTOCOL.md "Framing"), over any byte streams: write the hello
 * line, read request lines until EOF, answer each in order with one flushed line, exit 0. The same
 * validation the C agent does: a line that does not decode, or whose seq does not increase, is
 * answered `bad-request` with `reason=<token>`, and the run goes on.
 */
import {
  type AgentReply,
  decodeRequest,
  encodeBadRequest,
  encodeHello,
  encodeResponse,
  MAX_LINE_BYTES,
  type ProtocolError,
} from '../protocol/index.js';
import { type AgentBackend, SimGuestStopped } from './backend.js';

export interface AgentIo {
  /** stdin. */
  readonly input: AsyncIterable<Buffer | string>;
  /** Writes to stdout. */
  write(text: string): void;
  /** Writes to stderr. */
  writeError(text: string): void;
}

/** sysexits.h EX_SOFTWARE: the backend threw (a bug), the run stops. */
export const EXIT_INTERNAL = 70;
/** Not an exit status: the simulated guest stopped; the transport ends the run without one. */
export const GUEST_STOPPED = -1;

/** Serves one agent run; resolves with the exit status, or GUEST_STOPPED. */
export async function serveAgent(io: AgentIo, backend: AgentBackend): Promise<number> {
  io.write(`${encodeHello(backend.hello())}\n`);
  const session = backend.openSession();
  let lastSeq = -1;
  let pending = '';
  let overlong = false;

  const badRequest = (error: ProtocolError) => {
    if (error.seq !== undefined && error.seq > lastSeq) lastSeq = error.seq;
    io.write(`${encodeBadRequest(error)}\n`);
  };
  /** Answers one line; returns undefined to go on, or the status the run ends with. */
  const handle = async (line: string): Promise<number | undefined> => {
    const decoded = decodeRequest(line);
    if (!decoded.ok) {
      badRequest(decoded.error);
      return undefined;
    }
    const { seq, request } = decoded.value;
    if (seq <= lastSeq) {
      badRequest({ reason: 'seq-order', message: `seq ${seq} after ${lastSeq}`, seq });
      return undefined;
    }
    lastSeq = seq;
    let reply: AgentReply;
    let text: string;
    try {
      reply = await session.execute(request);
      if (reply.verb !== request.verb)
        throw new Error(`backend answered ${request.verb} with a ${reply.verb} reply`);
      text = encodeResponse(seq, reply);
    } catch (error) {
      if (error instanceof SimGuestStopped) return GUEST_STOPPED;
      io.writeError(
        `snpsim-agent: internal error on seq ${seq} (${request.verb}): ${(error as Error).message}\n`,
      );
      return EXIT_INTERNAL;
    }
    io.write(`${text}\n`);
    return undefined;
  };

  // Iterated by hand: leaving a for-await early would destroy the stream, and with it the channel
  // that must still carry the exit status.
  const input = io.input[Symbol.asyncIterator]();
  try {
    for (let next = await input.next(); next.done !== true; next = await input.next()) {
      const chunk = next.value;
      pending += typeof chunk === 'string' ? chunk : chunk.toString('latin1');
      let newline = pending.indexOf('\n');
      while (newline >= 0) {
        const line = pending.slice(0, newline);
        pending = pending.slice(newline + 1);
        if (overlong) {
          overlong = false;
          const head = decodeRequest(line.slice(0, 24));
          badRequest({
            reason: 'too-long',
            message: 'line exceeds the limit',
            ...(head.ok
              ? { seq: head.value.seq }
              : head.error.seq !== undefined
                ? { seq: head.error.seq }
                : {}),
          });
        } else {
          const end = await handle(line);
          if (end !== undefined) return end;
        }
        newline = pending.indexOf('\n');
      }
      if (pending.length + 1 > MAX_LINE_BYTES) {
        // Keep the start (for the seq), drop the rest up to the next newline.
        pending = pending.slice(0, 24);
        overlong = true;
      }
    }
    if (pending !== '') {
      const head = decodeRequest(pending.slice(0, 24));
      const seq = head.ok ? head.value.seq : head.error.seq;
      badRequest({
        reason: 'unterminated',
        message: 'input ended inside a line',
        ...(seq !== undefined ? { seq } : {}),
      });
    }
    return 0;
  } finally {
    await session.close();
  }
}
