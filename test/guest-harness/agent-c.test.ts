/**
 * The C agent (guest-harness/agent): builds it and its protocol unit-test program with
 * `cc -Wall -Wextra -Werror`, runs the unit tests, then runs the agent itself against a fake sysfs,
 * a fake cpuinfo and, where a module is needed, a fake module served on a Unix socket that speaks
 * kABI v1 (guest-harness/kmod/snpsim_kabi.h). The real module cannot be loaded here (no SNP).
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const AGENT_SRC = fileURLToPath(new URL('../../../guest-harness/agent/', import.meta.url));
const work = mkdtempSync(join(tmpdir(), 'snpsim-agent-'));
const out = join(work, 'bin');
const agent = join(out, 'snpsim-agent');
let buildProblem: string | undefined;

after(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(
  cmd: string,
  args: readonly string[],
  env: NodeJS.ProcessEnv = {},
  input?: string | Buffer,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, LC_ALL: 'C', ...env }, timeout: 20_000 });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => stdout.push(c));
    child.stderr.on('data', (c: Buffer) => stderr.push(c));
    child.on('error', reject);
    child.on('close', (code) =>
      resolve({
        code,
        stdout: Buffer.concat(stdout).toString('latin1'),
        stderr: Buffer.concat(stderr).toString(),
      }),
    );
    // A program that exits without reading its input (sh, make) makes this write fail with EPIPE.
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

before(async () => {
  const cc = await run('sh', ['-c', 'command -v cc && command -v make']);
  if (cc.code !== 0) {
    buildProblem = 'no C compiler or make (cc, make) on PATH';
    return;
  }
  mkdirSync(out);
  const r = await run('make', ['-C', AGENT_SRC, `OUT=${out}`, 'all']);
  assert.equal(r.code, 0, `agent build failed:\n${r.stdout}${r.stderr}`);
  assert.doesNotMatch(r.stdout + r.stderr, /warning/i);
  assert.match(r.stdout, /-Wall -Wextra -Werror/);
});

/** Skips (with the reason) when the C toolchain is missing. */
function needsBuild(t: { skip: (reason: string) => void }): boolean {
  if (buildProblem === undefined) return true;
  t.skip(buildProblem);
  return false;
}

// ---------------------------------------------------------------------------------------------
// A fake platform: sysfs CPU directory and cpuinfo

const sysfs = join(work, 'sys-cpu');
const cpuinfo = join(work, 'cpuinfo');

function fakePlatform(): void {
  rmSync(sysfs, { recursive: true, force: true });
  mkdirSync(sysfs, { recursive: true });
  writeFileSync(join(sysfs, 'online'), '0-3\n');
  writeFileSync(join(sysfs, 'possible'), '0-3,6-7\n');
  for (const cpu of [1, 2, 3]) {
    mkdirSync(join(sysfs, `cpu${cpu}`));
    writeFileSync(join(sysfs, `cpu${cpu}`, 'online'), '1\n');
  }
  const block = (cpu: number) =>
    `processor\t: ${cpu}\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 17\nmodel name\t: AMD EPYC 9654\n` +
    `stepping\t: 1\nmicrocode\t: 0xa0011d5\napicid\t\t: ${cpu * 2 + 1}\n\n`;
  writeFileSync(cpuinfo, [0, 1, 2, 3].map(block).join(''));
}

function env(dev: string): NodeJS.ProcessEnv {
  return { SNPSIM_AGENT_DEV: dev, SNPSIM_AGENT_SYSFS: sysfs, SNPSIM_AGENT_CPUINFO: cpuinfo };
}

function lines(r: Run): string[] {
  assert.equal(r.code, 0, `agent exited ${r.code}: ${r.stderr}`);
  assert.ok(r.stdout.endsWith('\n'), 'every line ends with a newline');
  return r.stdout.slice(0, -1).split('\n');
}

function pairs(line: string): Map<string, string> {
  const map = new Map<string, string>();
  for (const token of line.split(' ')) {
    const eq = token.indexOf('=');
    if (eq > 0) map.set(token.slice(0, eq), token.slice(eq + 1));
  }
  return map;
}

// ---------------------------------------------------------------------------------------------
// A fake module: kABI v1 over a Unix stream socket (72-byte requests and responses)

const KREQ = 72;
const KRESP = 72;
const OP = {
  INFO: 1,
  HV_FEATURES: 2,
  SEV_INFO: 3,
  VMSA_ALLOC: 4,
  VMSA_INIT: 5,
  VMSA_SET: 6,
  VMSA_POKE: 7,
  RMPADJUST: 8,
  PVALIDATE: 9,
  AP_CREATION: 10,
  CPU_APIC: 11,
  INIT_SIPI: 12,
  PV_KICK: 13,
  WAIT_MARKER: 14,
  VMSA_FREE: 15,
} as const;
const ST = { OK: 0, BAD_HANDLE: 2, BUSY: 3, FAILED: 5 } as const;
const REASON = { NONE: 0, NMI: 3, AP_MAY_RUN: 5 } as const;

interface KReq {
  abi: number;
  op: number;
  arg: bigint[];
}

interface KResp {
  abi?: number;
  status?: number;
  reason?: number;
  err?: number;
  val?: bigint[];
}

function decodeKreq(b: Buffer): KReq {
  const arg: bigint[] = [];
  for (let i = 0; i < 8; i++) arg.push(b.readBigUInt64LE(8 + 8 * i));
  return { abi: b.readUInt32LE(0), op: b.readUInt32LE(4), arg };
}

function encodeKresp(op: number, r: KResp): Buffer {
  const b = Buffer.alloc(KRESP);
  b.writeUInt32LE(r.abi ?? 1, 0);
  b.writeUInt32LE(op, 4);
  b.writeUInt32LE(r.status ?? ST.OK, 8);
  b.writeUInt32LE(r.reason ?? REASON.NONE, 12);
  b.writeInt32LE(r.err ?? 0, 16);
  (r.val ?? []).forEach((v, i) => {
    b.writeBigUInt64LE(BigInt.asUintN(64, v), 24 + 8 * i);
  });
  return b;
}

const INFO_OK: KResp = { val: [1n, 0x000100n, 0x30007n, 0n, 0x3n] };

/** Serves `answer` on a fresh socket path; records every request. */
async function fakeModule(
  answer: (req: KReq) => KResp,
): Promise<{ path: string; seen: KReq[]; server: Server }> {
  const path = join(work, `ctl-${Math.random().toString(16).slice(2)}.sock`);
  const seen: KReq[] = [];
  const server = createServer((socket: Socket) => {
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= KREQ) {
        const req = decodeKreq(pending.subarray(0, KREQ));
        pending = pending.subarray(KREQ);
        seen.push(req);
        socket.write(encodeKresp(req.op, answer(req)));
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { path, seen, server };
}

// ---------------------------------------------------------------------------------------------

test('the protocol unit-test program passes', async (t) => {
  if (!needsBuild(t)) return;
  const r = await run(join(out, 'proto_test'), []);
  assert.equal(r.code, 0, r.stdout);
  assert.doesNotMatch(r.stdout, /^not ok/m);
  const count = Number(/^# checks (\d+), failures 0$/m.exec(r.stdout)?.[1]);
  assert.ok(count >= 120, `only ${count} checks ran`);
  t.diagnostic(`${count} C checks`);
});

test('without a module: hello says module=none, module verbs answer no-module, sysfs verbs work', async (t) => {
  if (!needsBuild(t)) return;
  fakePlatform();
  const input = [
    '1 vmsa-alloc h=0 placement=split memory=private',
    '2 hv-features',
    '3 cpu-offline cpu=2',
    '4 cpu-online cpu=2',
    '5 cpu-offline cpu=9',
    '6 host-set-mp-state vcpu=1 state=1',
    '7 hello',
    '',
  ].join('\n');
  const r = lines(await run(agent, [], env(join(work, 'absent', 'ctl')), input));
  const hello = r[0] ?? '';
  assert.match(
    hello,
    /^snpsim-agent protocol=1 agent=0\.1\.0 backend=module kernel=[A-Za-z0-9][A-Za-z0-9_.:+~-]* module=none cpus=4 possible_cpus=6 family=25 model=17 stepping=1 microcode=0xa0011d5$/,
  );
  assert.deepEqual(r.slice(1), [
    '1 err code=no-module',
    '2 err code=no-module',
    '3 ok apic=5',
    '4 ok apic=5',
    '5 err code=failed errno=2',
    '6 err code=unsupported',
    `7 ok ${hello.slice('snpsim-agent '.length)}`,
  ]);
  // cpu-online wrote last.
  assert.equal(readFileSync(join(sysfs, 'cpu2', 'online'), 'utf8'), '1');
});

test('cpu-offline writes 0 to cpuN/online', async (t) => {
  if (!needsBuild(t)) return;
  fakePlatform();
  const r = lines(await run(agent, [], env(join(work, 'absent')), '1 cpu-offline cpu=3\n'));
  assert.deepEqual(r.slice(1), ['1 ok apic=7']);
  assert.equal(readFileSync(join(sysfs, 'cpu3', 'online'), 'utf8'), '0');
});

test('malformed lines are answered bad-request with the reason, and the batch goes on', async (t) => {
  if (!needsBuild(t)) return;
  fakePlatform();
  const cases: [string | Buffer, string][] = [
    [`1 hello ${'a'.repeat(2000)}`, '1 err code=bad-request reason=too-long'],
    [Buffer.from('2 hello\x01'), '2 err code=bad-request reason=bad-byte'],
    [Buffer.from('3 hel\x00lo'), '3 err code=bad-request reason=bad-byte'],
    ['4 hello\r', '4 err code=bad-request reason=bad-byte'],
    [Buffer.from([0x35, 0x20, 0xc3, 0xa9]), '5 err code=bad-request reason=bad-byte'],
    ['x hello', '0 err code=bad-request reason=bad-seq'],
    ['6  hello', '6 err code=bad-request reason=bad-spacing'],
    ['7 frobnicate', '7 err code=bad-request reason=unknown-verb'],
    ['8 vmsa-free h', '8 err code=bad-request reason=bad-pair'],
    ['9 vmsa-free h=0 colour=red', '9 err code=bad-request reason=unknown-key'],
    ['10 vmsa-alloc h=0 placement=split', '10 err code=bad-request reason=missing-key key=memory'],
    ['11 vmsa-free h=64', '11 err code=bad-request reason=out-of-range key=h'],
    ['12 wait-marker h=0 timeout_ms=10001', '12 err code=bad-request reason=out-of-range key=timeout_ms'],
    ['13 vmsa-set h=0 field=rip value=0x01', '13 err code=bad-request reason=bad-value key=value'],
    ['14 vmsa-free h=0 h=1', '14 err code=bad-request reason=duplicate-key key=h'],
    ['14 hello', '14 err code=bad-request reason=seq-order'],
    ['13 hello', '13 err code=bad-request reason=seq-order'],
    [
      '15 ap-creation request=1 apic=1 vmpl=0 h=0 gpa=0x1000',
      '15 err code=bad-request reason=conflict key=h',
    ],
    ['16 vmsa-poke h=0 offset=0xffc width=8 value=0x0', '16 err code=bad-request reason=conflict key=offset'],
    ['', '0 err code=bad-request reason=empty-line'],
    ['17 host-set-mp-state vcpu=1 state=1', '17 err code=unsupported'],
  ];
  const input = Buffer.concat([
    ...cases.map(([line]) => Buffer.concat([Buffer.from(line), Buffer.from('\n')])),
    Buffer.from('18 hello'),
  ]);
  const r = lines(await run(agent, [], env(join(work, 'absent')), input));
  assert.deepEqual(r.slice(1), [
    ...cases.map(([, answer]) => answer),
    '18 err code=bad-request reason=unterminated',
  ]);
  for (const line of r) assert.ok(Buffer.byteLength(line) + 1 <= 1024);
});

test('with a module: requests become kABI v1 operations and answers become response lines', async (t) => {
  if (!needsBuild(t)) return;
  fakePlatform();
  const mod = await fakeModule((req) => {
    switch (req.op) {
      case OP.INFO:
        return INFO_OK;
      case OP.HV_FEATURES:
        return { val: [0x3081n, 0x3n] };
      case OP.SEV_INFO:
        return { val: [0x0002_0001_3300_1001n, 2n, 1n, 51n] };
      case OP.VMSA_ALLOC:
        return { val: [0x10a3c1000n] };
      case OP.VMSA_INIT:
        return { val: [0x1n] };
      case OP.AP_CREATION:
        return { val: [2n, 5n] };
      case OP.CPU_APIC:
        return { val: [(req.arg[0] ?? 0n) * 16n] };
      case OP.PV_KICK:
        return { val: [-1000n] };
      case OP.RMPADJUST:
        return { val: [2n] };
      case OP.PVALIDATE:
        return { val: [0n, 1n] };
      case OP.WAIT_MARKER:
        return { status: ST.FAILED, err: 11, reason: REASON.NMI };
      case OP.VMSA_FREE:
        return req.arg[0] === 9n ? { status: ST.BAD_HANDLE } : { status: ST.BUSY, reason: REASON.AP_MAY_RUN };
      default:
        return {};
    }
  });
  t.after(() => mod.server.close());
  const input = [
    '1 hello',
    '2 hv-features',
    '3 sev-info',
    '4 vmsa-alloc h=0 placement=2m-aligned memory=shared',
    '5 vmsa-init h=0 template=ovmf stub=1',
    '6 vmsa-set h=0 field=cs_base value=0x9f000',
    '7 vmsa-poke h=0 offset=0x3b0 width=8 value=0x21',
    '8 rmpadjust h=0 rdx=0x10001 size=0',
    '9 pvalidate h=0 validate=1 size=0',
    '10 ap-creation request=1 apic=3 vmpl=0 h=0',
    '11 ap-creation request=2 apic=3 vmpl=1 gpa=0x1000 valid=exit_code,info1',
    '12 ap-creation request=0 apic=3 vmpl=0 h=0 exit_code=0x8000fffd info1=0x7 info2=0x8 rax=0x9 valid=none',
    '13 init-sipi apic=5 vector=0x9f',
    '14 pv-kick apic=5',
    '15 wait-marker h=0 timeout_ms=500',
    '16 vmsa-free h=9',
    '17 vmsa-free h=0',
    '18 cpu-offline cpu=2',
    '',
  ].join('\n');
  const r = lines(await run(agent, [], env(mod.path), input));
  const hello = pairs(r[0] ?? '');
  assert.equal(hello.get('module'), '0.1.0');
  assert.equal(hello.get('sev_status'), '0x30007');
  assert.equal(hello.get('vmpl'), '0');
  assert.ok((r[1] ?? '').startsWith('1 ok protocol=1 agent=0.1.0 backend=module kernel='));
  assert.deepEqual(r.slice(2), [
    '2 ok msr=0x3081 features=0x3',
    '3 ok msr=0x2000133001001 max=2 min=1 cbit=51',
    '4 ok gpa=0x10a3c1000',
    '5 ok sev_features=0x1',
    '6 ok',
    '7 ok',
    '8 ok eax=2',
    '9 ok eax=0 cf=1',
    '10 ok sw_exit_info1=0x2 sw_exit_info2=0x5',
    '11 ok sw_exit_info1=0x2 sw_exit_info2=0x5',
    '12 ok sw_exit_info1=0x2 sw_exit_info2=0x5',
    '13 ok',
    '14 ok ret=-1000',
    '15 err code=failed errno=11 reason=nmi-in-window',
    '16 err code=bad-handle',
    '17 err code=busy reason=ap-may-run',
    '18 ok apic=32',
  ]);
  assert.equal(readFileSync(join(sysfs, 'cpu2', 'online'), 'utf8'), '0');

  // What the module was asked, argument by argument (kABI v1, snpsim_kabi.h).
  assert.ok(mod.seen.every((req) => req.abi === 1));
  const ops = mod.seen.map((req) => [req.op, ...req.arg.filter((_, i) => i < 7)]);
  assert.deepEqual(ops, [
    [OP.INFO, 0n, 0n, 0n, 0n, 0n, 0n, 0n],
    [OP.HV_FEATURES, 0n, 0n, 0n, 0n, 0n, 0n, 0n],
    [OP.SEV_INFO, 0n, 0n, 0n, 0n, 0n, 0n, 0n],
    // h, placement 2m-aligned = 1, memory shared = 1
    [OP.VMSA_ALLOC, 0n, 1n, 1n, 0n, 0n, 0n, 0n],
    // h, template ovmf = 1, stub
    [OP.VMSA_INIT, 0n, 1n, 1n, 0n, 0n, 0n, 0n],
    // h, field cs_base = 21, value
    [OP.VMSA_SET, 0n, 21n, 0x9f000n, 0n, 0n, 0n, 0n],
    [OP.VMSA_POKE, 0n, 0x3b0n, 8n, 0x21n, 0n, 0n, 0n],
    [OP.RMPADJUST, 0n, 0x10001n, 0n, 0n, 0n, 0n, 0n],
    [OP.PVALIDATE, 0n, 1n, 0n, 0n, 0n, 0n, 0n],
    // exit code, info1 = apic << 32 | vmpl << 16 | request, info2/RAX from h (flags 3), all valid
    [OP.AP_CREATION, 0x80000013n, 0x3_0000_0001n, 0n, 0n, 0xfn, 3n, 0n],
    // DESTROY at VMPL1 with gpa=: valid exit_code|info1 = 3, no flags
    [OP.AP_CREATION, 0x80000013n, 0x3_0001_0002n, 0x1000n, 0n, 3n, 0n, 0n],
    // raw overrides win and valid=none clears every bit
    [OP.AP_CREATION, 0x8000fffdn, 7n, 8n, 9n, 0n, 0n, 0n],
    [OP.INIT_SIPI, 5n, 0x9fn, 0n, 0n, 0n, 0n, 0n],
    [OP.PV_KICK, 5n, 0n, 0n, 0n, 0n, 0n, 0n],
    [OP.WAIT_MARKER, 0n, 500n, 0n, 0n, 0n, 0n, 0n],
    [OP.VMSA_FREE, 9n, 0n, 0n, 0n, 0n, 0n, 0n],
    [OP.VMSA_FREE, 0n, 0n, 0n, 0n, 0n, 0n, 0n],
    [OP.CPU_APIC, 2n, 0n, 0n, 0n, 0n, 0n, 0n],
  ]);
});

test('a module of another kABI version is reported but not used', async (t) => {
  if (!needsBuild(t)) return;
  fakePlatform();
  const mod = await fakeModule((req) =>
    req.op === OP.INFO ? { ...INFO_OK, abi: 2, val: [2n, 0x000200n] } : {},
  );
  t.after(() => mod.server.close());
  const r = lines(await run(agent, [], env(mod.path), '1 hv-features\n'));
  const hello = pairs(r[0] ?? '');
  assert.equal(hello.get('module'), '0.2.0');
  assert.equal(hello.has('sev_status'), false);
  assert.deepEqual(r.slice(1), ['1 err code=no-module reason=abi']);
  assert.deepEqual(
    mod.seen.map((req) => req.op),
    [OP.INFO],
  );
});

test('a module interface that does not answer is treated as no module', async (t) => {
  if (!needsBuild(t)) return;
  fakePlatform();
  const plain = join(work, 'plain-file');
  writeFileSync(plain, '');
  const r = lines(await run(agent, [], env(plain), '1 sev-info\n'));
  assert.equal(pairs(r[0] ?? '').get('module'), 'none');
  // EPROTO: something is there, but it does not speak kABI v1.
  assert.deepEqual(r.slice(1), ['1 err code=no-module errno=71']);
});

test('SNPSIM_AGENT_NO_ENV builds an agent that ignores the overrides', async (t) => {
  if (!needsBuild(t)) return;
  const hardened = join(work, 'hardened');
  mkdirSync(hardened, { recursive: true });
  const b = await run('make', [
    '-C',
    AGENT_SRC,
    `OUT=${hardened}`,
    'SNPSIM_AGENT_NO_ENV=1',
    `${hardened}/snpsim-agent`,
  ]);
  assert.equal(b.code, 0, b.stdout + b.stderr);
  assert.match(b.stdout, /-DSNPSIM_AGENT_NO_ENV/);
  fakePlatform();
  const mod = await fakeModule(() => INFO_OK);
  t.after(() => mod.server.close());
  const r = lines(await run(join(hardened, 'snpsim-agent'), [], env(mod.path), ''));
  assert.equal(mod.seen.length, 0, 'the overridden module path was not used');
  // The real paths are used instead: on a machine without the module that is module=none.
  if (!existsSync('/sys/kernel/debug/snpsim/ctl')) assert.equal(pairs(r[0] ?? '').get('module'), 'none');
});
