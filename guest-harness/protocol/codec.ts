/**
 * Strict encoder/decoder of the agent protocol's line format (guest-harness/agent/PROTOCOL.md).
 * Decoders never throw: they return `{ ok: false, error }` with a reason token and a message that
 * names the key and the expected form. Encoders validate typed values and throw SnpsimError
 * (INPUT_INVALID) on a value that cannot be put on the wire, so a bad line is never sent.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { checkField, type FieldSpec, type FieldValue, formatField, parseField } from './fields.js';
import type {
  AgentErrorCode,
  AgentHello,
  AgentReply,
  AgentRequest,
  AgentResponse,
  AgentVerb,
  Decoded,
  ProtocolError,
  ProtocolErrorReason,
} from './types.js';
import { AGENT_ERROR_CODES, PROTOCOL_VERSION } from './types.js';
import { firstBadByte, isAnyValue, KEY_RE, MAX_LINE_BYTES, parseDec, U32_MAX } from './values.js';
import { ERRNO_MAX, HELLO_FIELDS, isAgentVerb, MODULE_BACKEND_REQUIRED, VERBS } from './verbs.js';

/** The first token of a hello line. */
export const HELLO_MAGIC = 'snpsim-agent';
/** Seq range: PROTOCOL.md leaves it open; snpsim uses a u32 (what a C agent holds in `unsigned int`). */
export const SEQ_MAX = U32_MAX;

type Fields = Record<string, FieldValue>;

function fail<T>(reason: ProtocolErrorReason, message: string, seq?: number): Decoded<T> {
  return { ok: false, error: seq === undefined ? { reason, message } : { reason, message, seq } };
}

function show(text: string): string {
  return JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}...` : text);
}

/** The seq a malformed line starts with, when it can be read, so that the answer can echo it. */
function leadingSeq(line: string): number | undefined {
  const end = line.indexOf(' ');
  return parseSeq(end < 0 ? line : line.slice(0, end));
}

/** Splits a line into tokens after the framing checks (bytes, length, single spaces). */
function tokens(line: string): Decoded<string[]> {
  const bad = firstBadByte(line);
  if (bad >= 0) {
    const code = line.charCodeAt(bad).toString(16).padStart(2, '0');
    const where = `byte 0x${code} at column ${bad + 1} is outside printable ASCII`;
    const space = line.indexOf(' ');
    return fail('bad-byte', where, space >= 0 && space < bad ? leadingSeq(line) : undefined);
  }
  if (line.length + 1 > MAX_LINE_BYTES)
    return fail(
      'too-long',
      `line of ${line.length + 1} bytes exceeds ${MAX_LINE_BYTES} (newline included)`,
      leadingSeq(line),
    );
  if (line.length === 0) return fail('empty-line', 'empty line');
  const parts = line.split(' ');
  if (parts.includes(''))
    return fail('bad-spacing', 'tokens must be separated by exactly one space', leadingSeq(line));
  return { ok: true, value: parts };
}

function parseSeq(text: string): number | undefined {
  return parseDec(text, SEQ_MAX);
}

/**
 * Parses `key=value` pairs against a field table. Unknown keys are an error when `extra` is
 * undefined (requests), and are collected into `extra` otherwise (responses: forward compatibility).
 */
function parsePairs(
  pairs: readonly string[],
  table: readonly FieldSpec[],
  seq: number | undefined,
  what: string,
  extra: Record<string, string> | undefined,
): Decoded<Fields> {
  const out: Fields = {};
  const seen = new Set<string>();
  for (const pair of pairs) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    if (!KEY_RE.test(key)) return fail('bad-pair', `${what}: ${show(pair)} is not key=value`, seq);
    const text = pair.slice(eq + 1);
    if (seen.has(key)) return fail('duplicate-key', `${what}: key ${key} appears twice`, seq);
    seen.add(key);
    const field = table.find((x) => x.key === key);
    if (field === undefined) {
      if (extra === undefined) return fail('unknown-key', `${what}: unknown key ${key}`, seq);
      if (!isAnyValue(text))
        return fail('bad-value', `${what}: ${key}=${show(text)} is not a protocol value`, seq);
      extra[key] = text;
      continue;
    }
    const parsed = parseField(field.type, text);
    if (!parsed.ok)
      return fail(parsed.reason, `${what}: ${key}=${show(text)}: expected ${parsed.expected}`, seq);
    out[field.prop] = parsed.value;
  }
  for (const field of table) {
    if (!field.optional && !seen.has(field.key))
      return fail('missing-key', `${what}: missing ${field.key}=`, seq);
  }
  return { ok: true, value: out };
}

/** Writes ` key=value` for each field of the table present in `source`, after checking it. */
function formatPairs(
  source: Readonly<Record<string, unknown>>,
  table: readonly FieldSpec[],
  what: string,
): string {
  let line = '';
  for (const field of table) {
    const value = source[field.prop];
    if (value === undefined) {
      if (!field.optional) throw invalid(`${what}: ${field.prop} (${field.key}=) is required`);
      continue;
    }
    const problem = checkField(field.type, value);
    if (problem !== undefined) throw invalid(`${what}: ${field.prop} = ${String(value)} is not ${problem}`);
    line += ` ${field.key}=${formatField(field.type, value as FieldValue)}`;
  }
  return line;
}

function formatExtra(
  extra: Readonly<Record<string, string>> | undefined,
  taken: readonly FieldSpec[],
): string {
  if (extra === undefined) return '';
  let line = '';
  for (const [key, value] of Object.entries(extra)) {
    if (!KEY_RE.test(key) || taken.some((x) => x.key === key) || key === 'code' || key === 'errno')
      throw invalid(`extra key ${JSON.stringify(key)} is not a free protocol key`);
    if (!isAnyValue(value)) throw invalid(`extra ${key}=${JSON.stringify(value)} is not a protocol value`);
    line += ` ${key}=${value}`;
  }
  return line;
}

function invalid(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.INPUT_INVALID, `agent protocol: ${message}`);
}

function checkSeq(seq: number): void {
  if (!Number.isSafeInteger(seq) || seq < 0 || seq > SEQ_MAX)
    throw invalid(`seq ${seq} is not in 0..${SEQ_MAX}`);
}

// ---------------------------------------------------------------------------------------------
// Requests

/** The request line for `seq` (without the newline). */
export function encodeRequest(seq: number, request: AgentRequest): string {
  checkSeq(seq);
  const verb: string = request.verb;
  if (!isAgentVerb(verb)) throw invalid(`unknown verb ${JSON.stringify(verb)}`);
  const spec = VERBS[verb];
  const source = request as unknown as Readonly<Record<string, unknown>>;
  for (const key of Object.keys(source)) {
    if (key !== 'verb' && source[key] !== undefined && !spec.request.some((x) => x.prop === key))
      throw invalid(`${verb}: unknown property ${key}`);
  }
  const pairs = formatPairs(source, spec.request, verb);
  const problem = spec.check?.(source);
  if (problem !== undefined) throw invalid(`${verb}: ${problem}`);
  return `${seq} ${verb}${pairs}`;
}

export interface DecodedRequest {
  readonly seq: number;
  readonly request: AgentRequest;
}

/** Decodes a request line (what an agent does with each stdin line). */
export function decodeRequest(line: string): Decoded<DecodedRequest> {
  const split = tokens(line);
  if (!split.ok) return split;
  const [seqText = '', verb = '', ...pairs] = split.value;
  const seq = parseSeq(seqText);
  if (seq === undefined)
    return fail('bad-seq', `seq ${show(seqText)} is not a decimal integer 0..${SEQ_MAX}`);
  if (verb === '') return fail('unknown-verb', 'missing verb', seq);
  if (!isAgentVerb(verb)) return fail('unknown-verb', `unknown verb ${show(verb)}`, seq);
  const spec = VERBS[verb];
  const fields = parsePairs(pairs, spec.request, seq, verb, undefined);
  if (!fields.ok) return fields;
  const problem = spec.check?.(fields.value);
  if (problem !== undefined) return fail('conflict', `${verb}: ${problem}`, seq);
  return { ok: true, value: { seq, request: { verb, ...fields.value } as unknown as AgentRequest } };
}

// ---------------------------------------------------------------------------------------------
// Hello

function helloFromFields(fields: Fields, extra: Record<string, string>, seq?: number): Decoded<AgentHello> {
  const protocol = fields.protocol as number;
  if (protocol !== PROTOCOL_VERSION)
    return fail(
      'unsupported-protocol',
      `agent speaks protocol ${protocol}; this client speaks protocol ${PROTOCOL_VERSION}`,
      seq,
    );
  if (fields.backend === 'module') {
    for (const key of MODULE_BACKEND_REQUIRED) {
      const field = HELLO_FIELDS.find((x) => x.key === key);
      if (field !== undefined && fields[field.prop] === undefined)
        return fail('missing-key', `hello: backend=module requires ${key}=`, seq);
    }
  }
  const hostSteps = fields.hostSteps === 1;
  return { ok: true, value: { ...fields, hostSteps, extra } as unknown as AgentHello };
}

/** Parses the hello line an agent writes first. */
export function decodeHello(line: string): Decoded<AgentHello> {
  const split = tokens(line);
  if (!split.ok) return split;
  const [magic = '', ...pairs] = split.value;
  if (magic !== HELLO_MAGIC)
    return fail('bad-hello', `hello must start with ${HELLO_MAGIC}, got ${show(magic)}`);
  if (!pairs[0]?.startsWith('protocol='))
    return fail('bad-hello', 'hello: protocol= must be the first key, so a client can check it first');
  const extra: Record<string, string> = {};
  const fields = parsePairs(pairs, HELLO_FIELDS, undefined, 'hello', extra);
  if (!fields.ok) return fields;
  return helloFromFields(fields.value, extra);
}

function helloSource(hello: AgentHello): Record<string, unknown> {
  return { ...hello, hostSteps: hello.hostSteps ? 1 : undefined };
}

/** The hello line for these details (without the newline). */
export function encodeHello(hello: AgentHello): string {
  if (hello.protocol !== PROTOCOL_VERSION) throw invalid(`hello: protocol must be ${PROTOCOL_VERSION}`);
  return `${HELLO_MAGIC}${formatPairs(helloSource(hello), HELLO_FIELDS, 'hello')}${formatExtra(hello.extra, HELLO_FIELDS)}`;
}

// ---------------------------------------------------------------------------------------------
// Responses

/** The response line answering `seq` (without the newline). */
export function encodeResponse(seq: number, reply: AgentReply): string {
  checkSeq(seq);
  const verb: string = reply.verb;
  if (!isAgentVerb(verb)) throw invalid(`unknown verb ${JSON.stringify(verb)}`);
  if (reply.status === 'err') {
    if (!AGENT_ERROR_CODES.includes(reply.code))
      throw invalid(`unknown error code ${JSON.stringify(reply.code)}`);
    let line = `${seq} err code=${reply.code}`;
    if (reply.errno !== undefined) {
      if (!Number.isSafeInteger(reply.errno) || reply.errno < 1 || reply.errno > ERRNO_MAX)
        throw invalid(`errno ${reply.errno} is not in 1..${ERRNO_MAX}`);
      line += ` errno=${reply.errno}`;
    }
    return line + formatExtra(reply.extra, []);
  }
  const spec = VERBS[verb];
  const source: Readonly<Record<string, unknown>> =
    reply.verb === 'hello' ? helloSource(reply.hello) : (reply as unknown as Record<string, unknown>);
  if (reply.verb === 'hello' && reply.hello.protocol !== PROTOCOL_VERSION)
    throw invalid(`hello: protocol must be ${PROTOCOL_VERSION}`);
  const helloExtra = reply.verb === 'hello' ? formatExtra(reply.hello.extra, spec.response) : '';
  return `${seq} ok${formatPairs(source, spec.response, `${verb} response`)}${helloExtra}${formatExtra(reply.extra, spec.response)}`;
}

/**
 * Decodes a response line to a request of `verb`. The seq is returned as read; matching it to the
 * request is the caller's job (it knows which seq it expects).
 */
export function decodeResponse(line: string, verb: AgentVerb): Decoded<AgentResponse> {
  const split = tokens(line);
  if (!split.ok) return split;
  const [seqText = '', status = '', ...pairs] = split.value;
  const seq = parseSeq(seqText);
  if (seq === undefined)
    return fail('bad-seq', `seq ${show(seqText)} is not a decimal integer 0..${SEQ_MAX}`);
  if (status === 'err') return decodeErr(seq, verb, pairs);
  if (status !== 'ok') return fail('bad-status', `status ${show(status)} is neither ok nor err`, seq);
  const spec = VERBS[verb];
  const extra: Record<string, string> = {};
  const fields = parsePairs(pairs, spec.response, seq, `${verb} response`, extra);
  if (!fields.ok) return fields;
  if (verb === 'hello') {
    const hello = helloFromFields(fields.value, extra, seq);
    if (!hello.ok) return hello;
    return { ok: true, value: { seq, status: 'ok', verb, hello: hello.value } };
  }
  const value = { seq, status: 'ok', verb, ...fields.value } as Record<string, unknown>;
  if (Object.keys(extra).length > 0) value.extra = extra;
  return { ok: true, value: value as unknown as AgentResponse };
}

function decodeErr(seq: number, verb: AgentVerb, pairs: readonly string[]): Decoded<AgentResponse> {
  const [first = ''] = pairs;
  if (!first.startsWith('code='))
    return fail('missing-key', 'err response: code= must be the first key', seq);
  const code = first.slice(5);
  if (!(AGENT_ERROR_CODES as readonly string[]).includes(code))
    return fail('unknown-code', `err response: unknown code=${show(code)}`, seq);
  let errno: number | undefined;
  const extra: Record<string, string> = {};
  const seen = new Set<string>(['code']);
  for (const pair of pairs.slice(1)) {
    const eq = pair.indexOf('=');
    const key = eq > 0 ? pair.slice(0, eq) : '';
    if (!KEY_RE.test(key)) return fail('bad-pair', `err response: ${show(pair)} is not key=value`, seq);
    if (seen.has(key)) return fail('duplicate-key', `err response: key ${key} appears twice`, seq);
    seen.add(key);
    const text = pair.slice(eq + 1);
    if (key === 'errno') {
      errno = parseDec(text, ERRNO_MAX);
      if (errno === undefined || errno === 0)
        return fail('bad-value', `err response: errno=${show(text)}: expected 1..${ERRNO_MAX}`, seq);
      continue;
    }
    if (!isAnyValue(text))
      return fail('bad-value', `err response: ${key}=${show(text)} is not a protocol value`, seq);
    extra[key] = text;
  }
  const value: Record<string, unknown> = { seq, status: 'err', verb, code: code as AgentErrorCode };
  if (errno !== undefined) value.errno = errno;
  if (Object.keys(extra).length > 0) value.extra = extra;
  return { ok: true, value: value as unknown as AgentResponse };
}

/**
 * The `bad-request` line an agent writes for a line it could not decode: `reason=` carries the
 * decoder's reason token (an extra key, ignored by clients that do not know it). A line whose seq
 * could not be read is answered with seq 0, the only seq an agent can write without one.
 */
export function encodeBadRequest(error: ProtocolError): string {
  return `${error.seq ?? 0} err code=bad-request reason=${error.reason}`;
}
