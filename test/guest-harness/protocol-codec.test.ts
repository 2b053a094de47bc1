import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  AGENT_ERROR_CODES,
  AGENT_VERBS,
  type AgentHello,
  type AgentReply,
  type AgentRequest,
  type AgentVerb,
  decodeHello,
  decodeRequest,
  decodeResponse,
  encodeBadRequest,
  encodeHello,
  encodeRequest,
  encodeResponse,
  GHCB_VALID_FIELDS,
  type GhcbValidField,
  SnpsimError,
  SnpsimErrorCode,
  VMSA_FIELDS,
} from '../../guest-harness/index.js';

const U32 = 0xffff_ffff;
const h = fc.integer({ min: 0, max: 63 });
const u32 = fc.integer({ min: 0, max: U32 });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });
const bit = fc.constantFrom(0 as const, 1 as const);
const token = fc.stringMatching(/^[a-z0-9][a-z0-9_.:-]{0,12}$/);

/** Drops undefined properties, as a decoded object never has them. */
function defined<T extends object>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

const validList = fc
  .subarray([...GHCB_VALID_FIELDS])
  .chain((items) => fc.shuffledSubarray(items, { minLength: items.length }));

const apCreation: fc.Arbitrary<AgentRequest> = fc
  .record({
    request: fc.integer({ min: 0, max: 0xffff }),
    apic: u32,
    vmpl: fc.integer({ min: 0, max: 15 }),
    target: fc.oneof(
      h.map((x) => ({ h: x })),
      u64.map((x) => ({ gpa: x })),
    ),
    exitCode: fc.option(u64, { nil: undefined }),
    info1: fc.option(u64, { nil: undefined }),
    info2: fc.option(u64, { nil: undefined }),
    rax: fc.option(u64, { nil: undefined }),
    valid: fc.option(validList as fc.Arbitrary<GhcbValidField[]>, { nil: undefined }),
  })
  .map(({ target, ...rest }) => defined({ verb: 'ap-creation' as const, ...rest, ...target }));

const poke: fc.Arbitrary<AgentRequest> = fc
  .constantFrom(1 as const, 2 as const, 4 as const, 8 as const)
  .chain((width) =>
    fc.record({
      verb: fc.constant('vmsa-poke' as const),
      h,
      width: fc.constant(width),
      offset: fc.integer({ min: 0, max: 0x1000 - width }),
      value: fc.bigInt({ min: 0n, max: (1n << BigInt(8 * width)) - 1n }),
    }),
  );

/** Every verb, every key, full ranges (structuredClone: plain objects, as decoders build them). */
const anyRequest: fc.Arbitrary<AgentRequest> = fc
  .oneof(
    fc.constant({ verb: 'hello' as const }),
    fc.constant({ verb: 'hv-features' as const }),
    fc.constant({ verb: 'sev-info' as const }),
    fc.record({
      verb: fc.constant('vmsa-alloc' as const),
      h,
      placement: fc.constantFrom('split' as const, '2m-aligned' as const),
      memory: fc.constantFrom('private' as const, 'shared' as const, 'unvalidated' as const),
    }),
    fc.record({
      verb: fc.constant('vmsa-init' as const),
      h,
      template: fc.constantFrom('linux' as const, 'ovmf' as const, 'zero' as const),
      stub: bit,
    }),
    fc.record({
      verb: fc.constant('vmsa-set' as const),
      h,
      field: fc.constantFrom(...VMSA_FIELDS),
      value: u64,
    }),
    poke,
    fc.record({ verb: fc.constant('rmpadjust' as const), h, rdx: u64, size: bit }),
    fc.record({ verb: fc.constant('pvalidate' as const), h, validate: bit, size: bit }),
    apCreation,
    fc.record({ verb: fc.constant('cpu-offline' as const), cpu: u32 }),
    fc.record({ verb: fc.constant('cpu-online' as const), cpu: u32 }),
    fc.record({
      verb: fc.constant('init-sipi' as const),
      apic: u32,
      vector: fc.integer({ min: 0, max: 0xff }),
    }),
    fc.record({ verb: fc.constant('pv-kick' as const), apic: u32 }),
    fc.record({
      verb: fc.constant('wait-marker' as const),
      h,
      timeoutMs: fc.integer({ min: 0, max: 10_000 }),
    }),
    fc.record({ verb: fc.constant('vmsa-free' as const), h }),
    fc.record({ verb: fc.constant('host-set-mp-state' as const), vcpu: u32, state: u32 }),
  )
  .map((r) => structuredClone(r));

const helloArb: fc.Arbitrary<AgentHello> = fc
  .record({
    backend: fc.constantFrom('module' as const, 'sim' as const),
    agent: token,
    kernel: fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_.:+~-]{0,20}$/),
    module: token,
    sevStatus: fc.option(u64, { nil: undefined }),
    vmpl: fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    cpus: u32,
    possibleCpus: u32,
    family: fc.integer({ min: 0, max: 0x10e }),
    model: fc.integer({ min: 0, max: 0xff }),
    stepping: fc.integer({ min: 0, max: 0xf }),
    microcode: fc.bigInt({ min: 0n, max: 0xffff_ffffn }),
    policy: fc.option(token, { nil: undefined }),
    profile: fc.option(token, { nil: undefined }),
    hostSteps: fc.boolean(),
    extra: fc.dictionary(fc.stringMatching(/^x[a-z0-9_]{0,6}$/), token, { maxKeys: 3 }),
  })
  .map((x) => structuredClone(defined({ protocol: 1, ...x })));

function okReply(verb: AgentVerb): fc.Arbitrary<AgentReply> {
  const s = <T extends object>(fields: fc.Arbitrary<T>) =>
    fields.map((f) => ({ status: 'ok' as const, verb, ...f }));
  switch (verb) {
    case 'hello':
      return helloArb.map((hello) => ({ status: 'ok', verb: 'hello', hello }));
    case 'hv-features':
      return s(fc.record({ msr: u64, features: fc.bigInt({ min: 0n, max: (1n << 52n) - 1n }) })) as never;
    case 'sev-info':
      return s(
        fc.record({
          msr: u64,
          max: fc.integer({ min: 0, max: 0xffff }),
          min: fc.integer({ min: 0, max: 0xffff }),
          cbit: fc.integer({ min: 0, max: 0xff }),
        }),
      ) as never;
    case 'vmsa-alloc':
      return s(fc.record({ gpa: u64 })) as never;
    case 'vmsa-init':
      return s(fc.record({ sevFeatures: u64 })) as never;
    case 'rmpadjust':
      return s(fc.record({ eax: u32 })) as never;
    case 'pvalidate':
      return s(fc.record({ eax: u32, cf: bit })) as never;
    case 'ap-creation':
      return s(fc.record({ swExitInfo1: u64, swExitInfo2: u64 })) as never;
    case 'cpu-offline':
    case 'cpu-online':
      return s(fc.record({ apic: u32 })) as never;
    case 'pv-kick':
      return s(fc.record({ ret: fc.integer({ min: -(2 ** 53 - 1), max: 2 ** 53 - 1 }) })) as never;
    case 'wait-marker':
      return s(fc.record({ ran: bit })) as never;
    case 'vmsa-free':
      return s(fc.record({ eax: u32, freed: bit })) as never;
    case 'host-set-mp-state':
      return s(fc.record({ ret: fc.integer({ min: -4095, max: 0 }) })) as never;
    default:
      return fc.constant({ status: 'ok', verb } as AgentReply);
  }
}

const errReply = (verb: AgentVerb): fc.Arbitrary<AgentReply> =>
  fc
    .record({
      code: fc.constantFrom(...AGENT_ERROR_CODES),
      errno: fc.option(fc.integer({ min: 1, max: 4095 }), { nil: undefined }),
      extra: fc.option(
        fc.dictionary(fc.stringMatching(/^r[a-z0-9_]{0,6}$/), token, { minKeys: 1, maxKeys: 2 }),
        {
          nil: undefined,
        },
      ),
    })
    .map((x) => defined({ status: 'err' as const, verb, ...x }));

/** Built once per verb: arbitraries are costly to build, cheap to draw from. */
const anyReply = fc
  .oneof(...AGENT_VERBS.map((verb) => fc.oneof(okReply(verb), errReply(verb))))
  .map((reply) => structuredClone(reply) as AgentReply);

const seqArb = fc.integer({ min: 0, max: U32 });

test('every verb round-trips: decodeRequest(encodeRequest(seq, r)) is (seq, r)', () => {
  fc.assert(
    fc.property(seqArb, anyRequest, (seq, request) => {
      const line = encodeRequest(seq, request);
      const decoded = decodeRequest(line);
      assert.ok(decoded.ok, `${line}: ${decoded.ok ? '' : decoded.error.message}`);
      assert.deepEqual(decoded.value, { seq, request });
    }),
    { numRuns: 2000 },
  );
});

test('every verb is covered by the request arbitrary', () => {
  const seen = new Set<string>();
  fc.assert(
    fc.property(anyRequest, (r) => {
      seen.add(r.verb);
    }),
    { numRuns: 3000, seed: 1 },
  );
  assert.deepEqual([...seen].sort(), [...AGENT_VERBS].sort());
});

test('every response round-trips for its verb (ok and err, unknown keys kept as extra)', () => {
  fc.assert(
    fc.property(seqArb, anyReply, (seq, reply) => {
      const line = encodeResponse(seq, reply);
      const decoded = decodeResponse(line, reply.verb);
      assert.ok(decoded.ok, `${line}: ${decoded.ok ? '' : decoded.error.message}`);
      assert.deepEqual(decoded.value, { seq, ...reply });
    }),
    { numRuns: 2000 },
  );
});

test('hello lines round-trip with their platform details', () => {
  fc.assert(
    fc.property(helloArb, (hello) => {
      const decoded = decodeHello(encodeHello(hello));
      assert.ok(decoded.ok);
      assert.deepEqual(decoded.value, hello);
    }),
    { numRuns: 1000 },
  );
});

test('decoders never throw on arbitrary strings, and return a typed error with a reason', () => {
  const anyText = fc.oneof(
    fc.string({ maxLength: 80 }),
    fc.string({ unit: 'binary', maxLength: 80 }),
    fc.string({ unit: fc.constantFrom(...' =0123456789abcdefx-_,.:\n\r\t'.split('')), maxLength: 60 }),
    fc.string({ maxLength: 1100, minLength: 1000 }),
  );
  fc.assert(
    fc.property(anyText, fc.constantFrom(...AGENT_VERBS), (text, verb) => {
      for (const result of [decodeRequest(text), decodeResponse(text, verb), decodeHello(text)]) {
        assert.equal(typeof result.ok, 'boolean');
        if (!result.ok) {
          assert.match(result.error.reason, /^[a-z][a-z-]+$/);
          assert.ok(result.error.message.length > 0);
        }
      }
    }),
    { numRuns: 3000 },
  );
});

test('a mutated valid line either decodes to something that re-encodes and decodes the same, or is rejected', () => {
  fc.assert(
    fc.property(anyRequest, fc.nat(), fc.integer({ min: 0x20, max: 0x7e }), (request, at, code) => {
      const line = encodeRequest(7, request);
      const i = at % line.length;
      const mutated = line.slice(0, i) + String.fromCharCode(code) + line.slice(i + 1);
      const decoded = decodeRequest(mutated);
      if (!decoded.ok) return;
      const again = decodeRequest(encodeRequest(decoded.value.seq, decoded.value.request));
      assert.ok(again.ok);
      assert.deepEqual(again.value, decoded.value);
    }),
    { numRuns: 3000 },
  );
});

test('malformed request lines are rejected with a precise reason', () => {
  const cases: [string, string, RegExp, number | undefined][] = [
    ['', 'empty-line', /empty line/, undefined],
    ['1 hello\r', 'bad-byte', /0x0d at column 8/, 1],
    ['1 hello é', 'bad-byte', /0xe9/, 1],
    ['1\thello', 'bad-byte', /0x09/, undefined],
    [`1 vmsa-set h=0 field=rip value=0x${'1'.repeat(1100)}`, 'too-long', /exceeds 1024/, 1],
    ['1  hello', 'bad-spacing', /exactly one space/, 1],
    ['1 hello ', 'bad-spacing', /exactly one space/, 1],
    [' 1 hello', 'bad-spacing', /exactly one space/, undefined],
    ['x hello', 'bad-seq', /seq "x"/, undefined],
    ['01 hello', 'bad-seq', /seq "01"/, undefined],
    ['-1 hello', 'bad-seq', /seq "-1"/, undefined],
    ['4294967296 hello', 'bad-seq', /0\.\.4294967295/, undefined],
    ['1', 'unknown-verb', /missing verb/, 1],
    ['1 HELLO', 'unknown-verb', /unknown verb "HELLO"/, 1],
    ['1 reboot', 'unknown-verb', /unknown verb "reboot"/, 1],
    ['1 hello x=1', 'unknown-key', /hello: unknown key x/, 1],
    ['2 vmsa-free h=1 h=2', 'duplicate-key', /key h appears twice/, 2],
    ['2 vmsa-free h', 'bad-pair', /"h" is not key=value/, 2],
    ['2 vmsa-free =1', 'bad-pair', /not key=value/, 2],
    ['2 vmsa-free H=1', 'bad-pair', /not key=value/, 2],
    ['3 vmsa-alloc h=1 placement=split', 'missing-key', /missing memory=/, 3],
    [
      '3 vmsa-alloc h=64 placement=split memory=private',
      'out-of-range',
      /h="64": expected a decimal integer 0\.\.63/,
      3,
    ],
    ['3 vmsa-alloc h=0x1 placement=split memory=private', 'bad-value', /h="0x1"/, 3],
    ['3 vmsa-alloc h=01 placement=split memory=private', 'bad-value', /h="01"/, 3],
    ['3 vmsa-alloc h=1 placement=4k memory=private', 'bad-value', /one of split\|2m-aligned/, 3],
    ['4 vmsa-init h=1 template=linux stub=2', 'out-of-range', /stub="2": expected one of 0\|1/, 4],
    ['5 rmpadjust h=1 rdx=0x10001 size=0 extra=1', 'unknown-key', /unknown key extra/, 5],
    ['5 rmpadjust h=1 rdx=0X10001 size=0', 'bad-value', /lower-case hex/, 5],
    ['5 rmpadjust h=1 rdx=0x010001 size=0', 'bad-value', /without leading zeros/, 5],
    ['5 rmpadjust h=1 rdx=0x1A size=0', 'bad-value', /lower-case hex/, 5],
    ['5 rmpadjust h=1 rdx=10001 size=0', 'bad-value', /rdx="10001"/, 5],
    ['5 rmpadjust h=1 rdx=0x10000000000000000 size=0', 'out-of-range', /0xffffffffffffffff/, 5],
    ['6 vmsa-poke h=0 offset=0x1000 width=1 value=0x0', 'out-of-range', /offset="0x1000"/, 6],
    ['6 vmsa-poke h=0 offset=0xffc width=8 value=0x0', 'conflict', /runs past the 4 KiB VMSA page/, 6],
    ['6 vmsa-poke h=0 offset=0x10 width=3 value=0x0', 'out-of-range', /one of 1\|2\|4\|8/, 6],
    ['6 vmsa-poke h=0 offset=0x10 width=1 value=0x100', 'conflict', /does not fit in 1 byte/, 6],
    ['7 vmsa-set h=0 field=rbx value=0x0', 'bad-value', /field="rbx"/, 7],
    ['8 ap-creation request=1 apic=1 vmpl=0', 'conflict', /exactly one of h= and gpa=/, 8],
    ['8 ap-creation request=1 apic=1 vmpl=0 h=1 gpa=0x1000', 'conflict', /exactly one of h= and gpa=/, 8],
    ['8 ap-creation request=65536 apic=1 vmpl=0 h=1', 'out-of-range', /request="65536"/, 8],
    ['8 ap-creation request=1 apic=1 vmpl=16 h=1', 'out-of-range', /vmpl="16"/, 8],
    ['8 ap-creation request=1 apic=4294967296 vmpl=0 h=1', 'out-of-range', /apic=/, 8],
    ['8 ap-creation request=1 apic=1 vmpl=0 h=1 valid=rax,rax', 'bad-value', /valid="rax,rax"/, 8],
    ['8 ap-creation request=1 apic=1 vmpl=0 h=1 valid=rbx', 'bad-value', /valid="rbx"/, 8],
    ['8 ap-creation request=1 apic=1 vmpl=0 h=1 valid=', 'bad-value', /valid=""/, 8],
    [
      '9 wait-marker h=0 timeout_ms=10001',
      'out-of-range',
      /timeout_ms="10001": expected a decimal integer 0\.\.10000/,
      9,
    ],
    ['9 init-sipi apic=1 vector=0x100', 'out-of-range', /vector="0x100"/, 9],
    ['9 pv-kick apic=-1', 'bad-value', /apic="-1"/, 9],
  ];
  for (const [line, reason, message, seq] of cases) {
    const decoded = decodeRequest(line);
    assert.equal(decoded.ok, false, `accepted: ${JSON.stringify(line)}`);
    if (decoded.ok) continue;
    assert.equal(decoded.error.reason, reason, `${JSON.stringify(line)}: ${decoded.error.message}`);
    assert.match(decoded.error.message, message, JSON.stringify(line));
    assert.equal(decoded.error.seq, seq, `${JSON.stringify(line)} seq`);
  }
});

test('the value forms the protocol names are accepted exactly', () => {
  const ok = (line: string) => {
    const d = decodeRequest(line);
    assert.ok(d.ok, `${line}: ${d.ok ? '' : d.error.message}`);
    return d.value.request;
  };
  assert.deepEqual(ok('1 ap-creation request=1 apic=3 vmpl=0 h=0 valid=none'), {
    verb: 'ap-creation',
    request: 1,
    apic: 3,
    vmpl: 0,
    h: 0,
    valid: [],
  });
  assert.deepEqual(ok('2 ap-creation gpa=0x0 vmpl=0 apic=0 request=2'), {
    verb: 'ap-creation',
    request: 2,
    apic: 0,
    vmpl: 0,
    gpa: 0n,
  });
  assert.deepEqual(ok('3 rmpadjust h=63 rdx=0xffffffffffffffff size=1'), {
    verb: 'rmpadjust',
    h: 63,
    rdx: 0xffff_ffff_ffff_ffffn,
    size: 1,
  });
  assert.equal(
    encodeRequest(4, { verb: 'ap-creation', request: 0, apic: 1, vmpl: 0, h: 2, valid: [] }).endsWith(
      'valid=none',
    ),
    true,
  );
});

test('responses: PROTOCOL.md examples decode; unknown keys are ignored; bad ones are precise', () => {
  const r = decodeResponse('5 ok sw_exit_info1=0x2 sw_exit_info2=0x5', 'ap-creation');
  assert.ok(r.ok);
  assert.deepEqual(r.value, { seq: 5, status: 'ok', verb: 'ap-creation', swExitInfo1: 2n, swExitInfo2: 5n });
  const e = decodeResponse('6 err code=failed errno=22 reason=x', 'cpu-offline');
  assert.ok(e.ok);
  assert.deepEqual(e.value, {
    seq: 6,
    status: 'err',
    verb: 'cpu-offline',
    code: 'failed',
    errno: 22,
    extra: { reason: 'x' },
  });
  const k = decodeResponse('7 ok ret=-22', 'pv-kick');
  assert.ok(k.ok && k.value.status === 'ok' && k.value.verb === 'pv-kick' && k.value.ret === -22);
  const fwd = decodeResponse('8 ok eax=0 newkey=0x1f later=a,b', 'rmpadjust');
  assert.ok(fwd.ok);
  assert.deepEqual(fwd.value, {
    seq: 8,
    status: 'ok',
    verb: 'rmpadjust',
    eax: 0,
    extra: { newkey: '0x1f', later: 'a,b' },
  });
  const bad: [string, AgentVerb, string, RegExp][] = [
    ['5 ok sw_exit_info1=0x2', 'ap-creation', 'missing-key', /missing sw_exit_info2=/],
    ['5 maybe', 'hello', 'bad-status', /neither ok nor err/],
    ['5 err errno=22', 'hello', 'missing-key', /code= must be the first key/],
    ['5 err code=oops', 'hello', 'unknown-code', /unknown code="oops"/],
    ['5 err code=failed errno=0', 'hello', 'bad-value', /errno="0"/],
    ['5 err code=failed errno=4096', 'hello', 'bad-value', /errno="4096"/],
    ['5 ok ret=1', 'host-set-mp-state', 'out-of-range', /ret="1"/],
    ['5 ok ret=-4096', 'host-set-mp-state', 'out-of-range', /ret="-4096"/],
    ['5 ok ran=2', 'wait-marker', 'out-of-range', /ran="2"/],
    ['5 ok msr=0x3081 features=0x10000000000000', 'hv-features', 'out-of-range', /features=/],
    ['5 ok eax=0 x=A', 'rmpadjust', 'bad-value', /x="A" is not a protocol value/],
  ];
  for (const [line, verb, reason, message] of bad) {
    const d = decodeResponse(line, verb);
    assert.equal(d.ok, false, line);
    if (d.ok) continue;
    assert.equal(d.error.reason, reason, `${line}: ${d.error.message}`);
    assert.match(d.error.message, message);
  }
});

test('hello: the PROTOCOL.md example parses into platform details; bad hellos are precise', () => {
  const line =
    'snpsim-agent protocol=1 agent=0.1.0 backend=module kernel=6.12.11 module=0.1.0 sev_status=0x30007 vmpl=0 ' +
    'cpus=3 possible_cpus=4 family=25 model=17 stepping=1 microcode=0xa0011d5';
  const d = decodeHello(line);
  assert.ok(d.ok);
  assert.deepEqual(d.value, {
    protocol: 1,
    agent: '0.1.0',
    backend: 'module',
    kernel: '6.12.11',
    module: '0.1.0',
    sevStatus: 0x30007n,
    vmpl: 0,
    cpus: 3,
    possibleCpus: 4,
    family: 25,
    model: 17,
    stepping: 1,
    microcode: 0xa0011d5n,
    hostSteps: false,
    extra: {},
  });
  const debian = decodeHello(line.replace('kernel=6.12.11', 'kernel=6.12.111+deb12-amd64'));
  assert.ok(debian.ok && debian.value.kernel === '6.12.111+deb12-amd64');
  const sim = decodeHello(
    'snpsim-agent protocol=1 agent=0.1.0 backend=sim kernel=none module=none policy=linux-6.11 profile=genoa host_steps=1 future=1',
  );
  assert.ok(sim.ok);
  assert.equal(sim.value.hostSteps, true);
  assert.equal(sim.value.policy, 'linux-6.11');
  assert.deepEqual(sim.value.extra, { future: '1' });
  const bad: [string, string, RegExp][] = [
    [
      'snpsim-agent protocol=2 agent=0.2.0 backend=sim kernel=none module=none',
      'unsupported-protocol',
      /speaks protocol 2; this client speaks protocol 1/,
    ],
    ['other-agent protocol=1', 'bad-hello', /must start with snpsim-agent/],
    [
      'snpsim-agent agent=0.1.0 protocol=1 backend=sim kernel=none module=none',
      'bad-hello',
      /protocol= must be the first key/,
    ],
    [
      'snpsim-agent protocol=1 agent=0.1.0 backend=module kernel=6.1.0 module=none',
      'missing-key',
      /backend=module requires cpus=/,
    ],
    ['snpsim-agent protocol=1 agent=0.1.0 backend=vm kernel=none module=none', 'bad-value', /backend="vm"/],
    ['snpsim-agent protocol=1 agent=0.1.0 backend=sim module=none', 'missing-key', /missing kernel=/],
    [
      'snpsim-agent protocol=1 agent=0.1.0 backend=sim kernel=none module=none vmpl=4',
      'out-of-range',
      /vmpl="4"/,
    ],
  ];
  for (const [text, reason, message] of bad) {
    const r = decodeHello(text);
    assert.equal(r.ok, false, text);
    if (r.ok) continue;
    assert.equal(r.error.reason, reason, `${text}: ${r.error.message}`);
    assert.match(r.error.message, message);
  }
});

test('encoders refuse values that cannot go on the wire, naming the key', () => {
  const refused = (f: () => unknown, message: RegExp) =>
    assert.throws(
      f,
      (e: unknown) =>
        SnpsimError.is(e) && e.code === SnpsimErrorCode.INPUT_INVALID && message.test(e.message),
    );
  refused(
    () => encodeRequest(1, { verb: 'vmsa-free', h: 64 }),
    /vmsa-free: h = 64 is not a decimal integer 0\.\.63/,
  );
  refused(() => encodeRequest(1, { verb: 'rmpadjust', h: 0, rdx: -1n, size: 0 }), /rdx = -1/);
  refused(
    () => encodeRequest(1, { verb: 'ap-creation', request: 1, apic: 1, vmpl: 0 }),
    /exactly one of h= and gpa=/,
  );
  refused(() => encodeRequest(-1, { verb: 'hello' }), /seq -1/);
  refused(() => encodeRequest(1, { verb: 'nope' } as unknown as AgentRequest), /unknown verb "nope"/);
  refused(
    () => encodeRequest(1, { verb: 'hello', x: 1 } as unknown as AgentRequest),
    /hello: unknown property x/,
  );
  refused(
    () => encodeResponse(1, { status: 'err', verb: 'hello', code: 'failed', errno: 0 }),
    /errno 0 is not in 1\.\.4095/,
  );
  refused(
    () => encodeResponse(1, { status: 'err', verb: 'hello', code: 'busy', extra: { code: 'x' } }),
    /extra key "code"/,
  );
});

test('bad-request answers echo the seq when it could be read, else 0, with the reason token', () => {
  const d = decodeRequest('12 hello x=1');
  assert.ok(!d.ok);
  assert.equal(encodeBadRequest(d.error), '12 err code=bad-request reason=unknown-key');
  const s = decodeRequest('zz hello');
  assert.ok(!s.ok);
  assert.equal(encodeBadRequest(s.error), '0 err code=bad-request reason=bad-seq');
  const back = decodeResponse('12 err code=bad-request reason=unknown-key', 'hello');
  assert.ok(back.ok && back.value.status === 'err' && back.value.code === 'bad-request');
});
