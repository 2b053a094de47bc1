/**
 * `snpsim fuzz`: the invariant campaign passes on the defaults; every planted bug (mutant) is found,
 * shrunk and replayed; the invariant checks themselves; progress; the command's output.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  checkTransition,
  createCampaignProgress,
  ExitCode,
  FuzzWorld,
  type InvariantName,
  InvariantViolation,
  MUTANTS,
  type MutantName,
  main,
  type PageView,
  parsePolicySpec,
  parseProfileSpec,
  runFuzz,
} from '../../guest-harness/index.js';
import { type RmpEntry, ZERO_RMP_ENTRY } from '../../psp-firmware/index.js';
import { buffers } from './experiment-support.js';

const policy = parsePolicySpec('linux-6.11')[0]!;
const profile = parseProfileSpec('genoa')[0]!;

test('the default configuration keeps every invariant', () => {
  const r = runFuzz({ policy, profile, seed: 7, runs: 60 });
  assert.equal(r.violation, undefined);
  assert.equal(r.runs, 60);
  assert.equal(r.interrupted, false);
  assert.ok(r.steps > 60, `${r.steps} steps`);
});

/** Each planted bug, a seed under which a short campaign meets it, and the invariants that catch it. */
const PLANTED: Readonly<Record<MutantName, readonly InvariantName[]>> = {
  'host-write-assigned': ['assigned-host-writable', 'host-write-guest-memory'],
  'rmpupdate-keeps-validated': ['leaves-validated'],
  'rmpupdate-sets-validated': ['leaves-validated', 'validated-by-pvalidate'],
  'rmpupdate-ignores-immutable': ['immutable-unchanged'],
  'vmrun-ignores-vmsa-bit': ['vmrun-non-vmsa'],
  'no-vc-on-unvalidated': ['unvalidated-read'],
  'dbg-ignores-policy': ['dbg-non-debug-guest'],
};

test('every mutant is caught by its invariant, shrunk, and replayed by seed and path', () => {
  assert.deepEqual(Object.keys(PLANTED).sort(), Object.keys(MUTANTS).sort());
  for (const [mutant, expected] of Object.entries(PLANTED) as [MutantName, readonly InvariantName[]][]) {
    const r = runFuzz({ policy, profile, seed: 1, runs: 300, mutant });
    const v = r.violation;
    assert.ok(v !== undefined, `${mutant} was not caught`);
    assert.ok(expected.includes(v.invariant), `${mutant}: ${v.invariant}: ${v.detail}`);
    assert.ok(v.operations.length >= 1 && v.operations.length <= 6, `${mutant}: ${v.operations.join(' ; ')}`);
    const replay = runFuzz({ policy, profile, seed: 1, runs: 300, mutant, path: v.path });
    assert.equal(replay.violation?.invariant, v.invariant, mutant);
    assert.deepEqual(replay.violation?.operations, v.operations, mutant);
  }
});

test('a time budget ends the campaign before its run count', () => {
  const r = runFuzz({ policy, profile, seed: 3, runs: 1_000_000, seconds: 1 });
  assert.equal(r.violation, undefined);
  assert.equal(r.interrupted, true);
  assert.ok(r.runs > 0 && r.runs < 1_000_000);
});

test('the integrity check sees memory changed behind the guest, and not a legitimate round trip', () => {
  const world = FuzzWorld.boot({ policy, profile });
  world.apply({ op: 'guest-read', d: 0 });
  // A legitimate round trip: the host takes the page, scribbles on it, gives it back; the guest's
  // read gets #VC (no data) until it validates the page again and accepts its new contents.
  for (const state of ['hypervisor', 'guest'] as const) {
    world.apply({ op: 'host-rmpupdate', target: { kind: 'data', i: 0 }, state });
    if (state === 'hypervisor')
      world.apply({ op: 'host-write', target: { kind: 'data', i: 0 }, mapping2M: false });
  }
  world.apply({ op: 'guest-read', d: 0 });
  world.apply({ op: 'guest-pvalidate', d: 0, validate: true });
  world.apply({ op: 'guest-read', d: 0 });
  // A write that bypasses every check (a DMA, a bug): the guest's next read sees it.
  const spa = world.guest.machine.spaOf(world.data[1]!);
  world.platform.memory.write(spa, new Uint8Array([0xde, 0xad]));
  assert.throws(
    () => world.apply({ op: 'guest-read', d: 1 }),
    (e: unknown) => e instanceof InvariantViolation && e.invariant === 'guest-memory-integrity',
  );
});

const entry = (fields: Partial<RmpEntry>): RmpEntry => ({ ...ZERO_RMP_ENTRY, ...fields });
const view = (e: RmpEntry, gpa = e.gpa): PageView => ({ spa: 0x5000, entry: e, gpa });
const guestPage = entry({ assigned: true, asid: 1, gpa: 0x1000, validated: true });
const none = { validated: new Set<number>(), vmsaSet: new Set<number>() };

test('transition rules: leaving a guest, Validated and VMSA set only by the owner’s instructions', () => {
  const check = (a: RmpEntry, b: RmpEntry, seen = none) =>
    checkTransition(view(a), view(b), 1, seen)?.invariant;
  // Reassigned or remapped while still Validated: a replay of guest memory becomes possible.
  assert.equal(check(guestPage, entry({ validated: true })), 'leaves-validated');
  assert.equal(check(guestPage, { ...guestPage, gpa: 0x2000 }), 'leaves-validated');
  assert.equal(check(guestPage, { ...guestPage, asid: 2 }), 'leaves-validated');
  assert.equal(
    check(entry({ ...guestPage, validated: false, vmsa: true }), entry({})),
    undefined,
    'leaving with both bits clear is fine',
  );
  assert.equal(check(entry({ ...guestPage, vmsa: true }), entry({ vmsa: true })), 'leaves-validated');
  assert.equal(check(guestPage, entry({})), undefined, 'leaving unvalidated is fine');
  assert.equal(check(guestPage, { ...guestPage, validated: false }), undefined, 'a rescind is not a leave');
  // Validated 0 -> 1 needs a PVALIDATE of that page (pfn 5) by the owner.
  const unvalidated = { ...guestPage, validated: false };
  assert.equal(check(unvalidated, guestPage), 'validated-by-pvalidate');
  assert.equal(check(unvalidated, guestPage, { validated: new Set([5]), vmsaSet: new Set() }), undefined);
  assert.equal(
    check(entry({}), entry({ validated: true }), { validated: new Set([5]), vmsaSet: new Set() }),
    'validated-by-pvalidate',
  );
  // VMSA 0 -> 1 needs an RMPADJUST of that page.
  assert.equal(check(guestPage, { ...guestPage, vmsa: true }), 'vmsa-by-rmpadjust');
  assert.equal(
    check(guestPage, { ...guestPage, vmsa: true }, { validated: new Set(), vmsaSet: new Set([5]) }),
    undefined,
  );
  // A 2 MB page keeps its owner when smashed: each 4 KiB page keeps its own GPA.
  const big = entry({ assigned: true, asid: 1, gpa: 0x200000, pageSize: 1, validated: true });
  const tail = entry({ assigned: true, asid: 1, gpa: 0x205000, validated: true });
  assert.equal(checkTransition(view(big, 0x205000), view(tail), 1, none), undefined);
});

test('campaign progress: about ten lines in a log whatever the budget, in place on a terminal', () => {
  const log: string[] = [];
  const p = createCampaignProgress({ write: (s: string) => log.push(s) }, { label: 'fuzz', runs: 5000 });
  for (let i = 0; i < 5000; i++) p.run(3, false);
  for (let i = 0; i < 50; i++) p.run(3, true);
  p.done();
  assert.equal(log.length, 11, log.join(''));
  assert.match(log[9] ?? '', /^fuzz: 5000\/5000 runs, 15000 steps, \d+ steps\/s\n$/);
  assert.match(log[10] ?? '', /^fuzz: shrinking a counterexample/);

  let now = 0;
  const timed: string[] = [];
  const t = createCampaignProgress(
    { write: (s: string) => timed.push(s) },
    { label: 'fuzz', runs: 1e9, seconds: 10, now: () => now },
  );
  for (let i = 0; i < 100; i++) {
    now += 100; // 10 s in all: one line per simulated second
    t.run(1, false);
  }
  assert.equal(timed.length, 10);

  const tty: string[] = [];
  let clock = 0;
  const q = createCampaignProgress(
    { write: (s: string) => tty.push(s), isTTY: true },
    { label: 'search', runs: 10, now: () => clock },
  );
  for (let i = 0; i < 10; i++) {
    clock += 50; // redrawn at most every 100 ms
    q.run(1, false);
  }
  q.done();
  assert.equal(tty.length, 6);
  assert.ok(tty.every((s) => s.startsWith('\r\x1b[K')));
});

test('snpsim fuzz: passes on the defaults (exit 0), prints a shrunk counterexample and replay command (exit 1)', async () => {
  const ok = buffers();
  assert.equal(await main(['fuzz', '--seed', '7', '--runs', '20', '--quiet'], ok.io), ExitCode.OK);
  assert.match(
    ok.out(),
    /^snpsim fuzz: policy linux-6\.11, profile genoa, seed 7, up to 20 runs \/ 60 s, \d+ invariants$/m,
  );
  assert.match(
    ok.out(),
    /^passed: 20 runs, \d+ steps in [\d.]+ s \(\d+ steps\/s\); every invariant held; seed 7$/m,
  );

  const bad = buffers();
  const code = await main(
    ['fuzz', '--mutant', 'rmpupdate-ignores-immutable', '--seed=1', '--runs=100', '--quiet'],
    bad.io,
  );
  assert.equal(code, ExitCode.DIFFERENCES);
  assert.match(
    bad.out(),
    /^VIOLATION of immutable-unchanged: RMPUPDATE never changes an immutable RMP entry$/m,
  );
  assert.match(bad.out(), /shrunk \d+ times to \d+ operations?:\n {2}1\. /);
  const replay = /replay: snpsim fuzz (.*)\n/.exec(bad.out())?.[1]?.split(' ');
  assert.ok(replay?.includes('--path'));
  // The replay line gives the seed once, and drops the run budget whichever way it was written.
  assert.deepEqual(
    replay?.filter((a) => a.startsWith('--seed') || a.startsWith('--runs')),
    ['--seed'],
    replay?.join(' '),
  );
  const again = buffers();
  assert.equal(await main(['fuzz', ...replay!], again.io), ExitCode.DIFFERENCES);
  assert.match(again.out(), /VIOLATION of immutable-unchanged/);
});

test('snpsim fuzz: usage errors exit 2', async () => {
  for (const [args, message] of [
    [['--mutant', 'nope'], /--mutant nope: unknown; one of host-write-assigned/],
    [['--path', '1:2'], /--path replays a run of a given --seed/],
    [['--policy', 'linux-6.11+kickWait=*'], /one configuration each/],
    [['--seconds', '0'], /--seconds "0": expected a whole number in 1\.\./],
    [['extra'], /Unexpected argument 'extra'/],
    [
      ['--seed', '1', '--path', '5:3:2@AB:C'],
      /--path 5:3:2@AB:C does not replay a counterexample of this seed/,
    ],
    [['--seed', '1', '--path', 'x'], /--path x: expected the token a run printed/],
  ] as const) {
    const b = buffers();
    assert.equal(await main(['fuzz', ...args], b.io), ExitCode.USAGE, args.join(' '));
    assert.match(b.err(), message);
  }
  // Errors of the options fuzz shares with search point at fuzz's own help.
  for (const args of [
    ['--runs', '0'],
    ['--seed', 'x'],
    ['--max-commands', '1001'],
    ['--path', '1:2'],
  ]) {
    const b = buffers();
    assert.equal(await main(['fuzz', ...args], b.io), ExitCode.USAGE, args.join(' '));
    assert.match(b.err(), /\(see snpsim fuzz --help\)\n$/, args.join(' '));
  }
});
