/**
 * One set of SSH options for every command that reaches an ssh:// target: `run`, `search` and
 * `guest` accept the same flags and turn them into the same SshTargetOptions; bad values exit 2
 * naming the flag; over real SSH (the simulated guest on a loopback port) the flags take effect.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  DEFAULT_AGENT_PATH,
  defaultRunEnvironment,
  ExitCode,
  ephemeralHostKey,
  generateEd25519KeyPair,
  main,
  modelBackend,
  parseAuthorizedKeys,
  parseGuestArgs,
  parseRunArgs,
  parseSearchArgs,
  type RunEnvironment,
  resolvePolicy,
  resolveProfile,
  runCommand,
  SimGuestServer,
  type SshCliOptions,
} from '../../guest-harness/index.js';
import { capture, corpus, tempDir } from './run-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await tempDir('ssh-options'));
});
after(async () => cleanup());

const TARGET_URL = 'ssh://root@guest.example:2222';
const PIN_A = `SHA256:${'A'.repeat(43)}`;
const PIN_B = `SHA256:${'b9+/'.repeat(10)}xyz`;

/** The SSH options each command parsed from the same flags. */
function parsedBy(flags: readonly string[]): Record<'run' | 'search' | 'guest', SshCliOptions> {
  return {
    run: parseRunArgs(['--target', TARGET_URL, ...flags]).ssh,
    search: parseSearchArgs(['--a', 'linux-6.11', '--target', TARGET_URL, ...flags]).ssh,
    guest: parseGuestArgs(['doctor', '--target', TARGET_URL, ...flags]).ssh,
  };
}

const NONE: SshCliOptions = { target: { hostKey: {}, auth: {} } };

test("each of guest's SSH flags is accepted by run and search and reaches the same SSH target options", () => {
  const cases: [string[], SshCliOptions][] = [
    [[], NONE],
    [
      ['--identity', 'k1', '--identity', 'k2'],
      { target: { hostKey: {}, auth: { identityFiles: ['k1', 'k2'] } } },
    ],
    [['--no-agent'], { target: { hostKey: {}, auth: { agentSocket: null } } }],
    [['--passphrase-file', 'pass'], { target: { hostKey: {}, auth: { passphraseFile: 'pass' } } }],
    [
      ['--known-hosts', 'kh1', '--known-hosts', 'kh2'],
      { target: { hostKey: { knownHostsFiles: ['kh1', 'kh2'] }, auth: {} } },
    ],
    [['--host-key', PIN_A, '--host-key', PIN_B], { target: { hostKey: { pins: [PIN_A, PIN_B] }, auth: {} } }],
    // The padded form some tools print is the same digest.
    [['--host-key', `${PIN_A}=`], { target: { hostKey: { pins: [PIN_A] }, auth: {} } }],
    [['--accept-new'], { target: { hostKey: { mode: 'accept-new' }, auth: {} } }],
    [['--hash-known-hosts'], { target: { hostKey: { hashKnownHosts: true }, auth: {} } }],
    [['--connect-timeout', '5000'], { target: { hostKey: {}, auth: {}, readyTimeoutMs: 5000 } }],
    [
      ['--step-timeout', '250'],
      { stepTimeoutMs: 250, target: { hostKey: {}, auth: {}, helloTimeoutMs: 250 } },
    ],
    [['--keepalive', '0'], { target: { hostKey: {}, auth: {}, keepaliveIntervalMs: 0 } }],
    [['--keepalive', '2500'], { target: { hostKey: {}, auth: {}, keepaliveIntervalMs: 2500 } }],
    [
      ['--agent-command', '/opt/snpsim/agent --sim'],
      { target: { hostKey: {}, auth: {}, agentCommand: ['/opt/snpsim/agent', '--sim'] } },
    ],
    [['--agent-command=/opt/agent'], { target: { hostKey: {}, auth: {}, agentCommand: ['/opt/agent'] } }],
  ];
  for (const [flags, expected] of cases) {
    const parsed = parsedBy(flags);
    for (const [command, ssh] of Object.entries(parsed))
      assert.deepEqual(ssh, expected, `${command} ${flags.join(' ')}`);
  }
});

/** A command line that is valid for every value, and the options it must give. */
const fileArb = fc.stringMatching(/^[a-z0-9_./][a-z0-9_./-]{0,11}$/);
const pinArb = fc.stringMatching(/^[A-Za-z0-9+/]{43}$/).map((s) => `SHA256:${s}`);
const msArb = fc.integer({ min: 1, max: 999_999_999 });
const wordArb = fc.stringMatching(/^[A-Za-z0-9._/+=:@,][A-Za-z0-9._/+=:@,-]{0,9}$/);
const argWordArb = fc.stringMatching(/^[A-Za-z0-9._/+=:@,-]{1,10}$/);
const flagsArb = fc.record(
  {
    identity: fc.array(fileArb, { minLength: 1, maxLength: 3 }),
    noAgent: fc.constant(true),
    passphraseFile: fileArb,
    hostKeys: fc.oneof(
      fc.record({ pins: fc.array(pinArb, { minLength: 1, maxLength: 3 }) }),
      fc.record(
        { knownHosts: fc.array(fileArb, { minLength: 1, maxLength: 3 }), acceptNew: fc.constant(true) },
        { requiredKeys: [] },
      ),
    ),
    hash: fc.constant(true),
    connect: msArb,
    step: msArb,
    keepalive: fc.integer({ min: 0, max: 999_999_999 }),
    agent: fc.tuple(wordArb, fc.array(argWordArb, { maxLength: 2 })).map(([p, a]) => [p, ...a]),
  },
  { requiredKeys: [] },
);

test('property: any valid mix of SSH flags, in any order, gives run, search and guest the same options', () => {
  fc.assert(
    fc.property(
      flagsArb.chain((f) => {
        const groups: string[][] = [];
        for (const file of f.identity ?? []) groups.push(['--identity', file]);
        if (f.noAgent) groups.push(['--no-agent']);
        if (f.passphraseFile !== undefined) groups.push(['--passphrase-file', f.passphraseFile]);
        const hk = f.hostKeys;
        if (hk !== undefined && 'pins' in hk) for (const pin of hk.pins) groups.push(['--host-key', pin]);
        if (hk !== undefined && 'acceptNew' in hk) groups.push(['--accept-new']);
        for (const file of hk !== undefined && 'knownHosts' in hk ? (hk.knownHosts ?? []) : [])
          groups.push(['--known-hosts', file]);
        if (f.hash) groups.push(['--hash-known-hosts']);
        if (f.connect !== undefined) groups.push(['--connect-timeout', String(f.connect)]);
        if (f.step !== undefined) groups.push([`--step-timeout=${f.step}`]);
        if (f.keepalive !== undefined) groups.push(['--keepalive', String(f.keepalive)]);
        if (f.agent !== undefined) groups.push([`--agent-command=${f.agent.join(' ')}`]);
        // Repeated flags keep their order; the groups of different flags are shuffled.
        return fc
          .shuffledSubarray(groups, { minLength: groups.length, maxLength: groups.length })
          .map((shuffled) => ({ f, argv: shuffled.flat(), order: shuffled }));
      }),
      ({ f, argv, order }) => {
        const inOrder = (flag: string) => order.filter((g) => g[0] === flag).map((g) => g[1]!);
        const hk = f.hostKeys;
        const expected: SshCliOptions = {
          ...(f.step !== undefined ? { stepTimeoutMs: f.step } : {}),
          target: {
            hostKey: {
              ...(hk !== undefined && 'pins' in hk ? { pins: inOrder('--host-key') } : {}),
              ...(hk !== undefined && 'knownHosts' in hk && hk.knownHosts !== undefined
                ? { knownHostsFiles: inOrder('--known-hosts') }
                : {}),
              ...(hk !== undefined && 'acceptNew' in hk ? { mode: 'accept-new' as const } : {}),
              ...(f.hash ? { hashKnownHosts: true } : {}),
            },
            auth: {
              ...(f.noAgent ? { agentSocket: null } : {}),
              ...(f.identity !== undefined ? { identityFiles: inOrder('--identity') } : {}),
              ...(f.passphraseFile !== undefined ? { passphraseFile: f.passphraseFile } : {}),
            },
            ...(f.connect !== undefined ? { readyTimeoutMs: f.connect } : {}),
            ...(f.keepalive !== undefined ? { keepaliveIntervalMs: f.keepalive } : {}),
            ...(f.agent !== undefined ? { agentCommand: f.agent } : {}),
            ...(f.step !== undefined ? { helloTimeoutMs: f.step } : {}),
          },
        };
        const parsed = parsedBy(argv);
        assert.deepEqual(parsed.run, expected);
        assert.deepEqual(parsed.search, expected);
        assert.deepEqual(parsed.guest, expected);
      },
    ),
    { seed: 7, numRuns: 300 },
  );
});

test('snpsim run hands the parsed SSH options to the environment that builds the targets', async () => {
  const base = defaultRunEnvironment();
  const seen: SshCliOptions[] = [];
  const env: RunEnvironment = {
    ...base,
    target(spec, options) {
      seen.push(options.ssh);
      return base.target(spec, options);
    },
  };
  const c = capture();
  const flags = [
    '--identity',
    'k',
    '--no-agent',
    '--known-hosts',
    'kh',
    '--keepalive',
    '0',
    '--step-timeout',
    '9000',
  ];
  const code = await runCommand(
    [...corpus('discovery-hv-features'), '--target', 'model', '--quiet', ...flags],
    c.io,
    env,
  );
  assert.equal(code, ExitCode.OK, c.err());
  assert.deepEqual(seen, [parseRunArgs(['--target', TARGET_URL, ...flags]).ssh]);
  assert.equal(seen[0]?.stepTimeoutMs, 9000);
});

test('a bad SSH flag value exits 2 with a message naming the flag, in run, search and guest alike', async () => {
  const cases: [string[], RegExp][] = [
    [['--connect-timeout', '5s'], /--connect-timeout "5s": expected a positive whole number of milliseconds/],
    [['--connect-timeout', '0'], /--connect-timeout "0": expected a positive whole number/],
    [['--step-timeout', '0'], /--step-timeout "0": expected a positive whole number/],
    [['--step-timeout', '1000000000'], /--step-timeout "1000000000": expected/],
    [['--step-timeout', '010'], /--step-timeout "010": expected/],
    [['--keepalive=-1'], /--keepalive "-1": expected a whole number >= 0 of milliseconds/],
    [['--keepalive', '1.5'], /--keepalive "1\.5": expected a whole number >= 0/],
    [['--keepalive', '-1'], /Option '--keepalive' argument is ambiguous/],
    [['--host-key', 'MD5:aa'], /--host-key "MD5:aa": expected SHA256: and 43 base64 characters/],
    [['--host-key', PIN_A, '--host-key', 'SHA256:short'], /--host-key "SHA256:short": expected SHA256:/],
    [
      ['--host-key', PIN_A, '--known-hosts', 'kh'],
      /--host-key pins the key: it cannot be combined with --known-hosts/,
    ],
    [
      ['--host-key', PIN_A, '--accept-new'],
      /--host-key pins the key: it cannot be combined with .*--accept-new/,
    ],
    [['--agent-command', ' '], /--agent-command is empty/],
    [
      ['--agent-command', 'agent; reboot'],
      /--agent-command "agent; reboot": agent command "agent;" is not allowed/,
    ],
    [['--agent-command=-x'], /--agent-command "-x": agent command "-x" is not allowed/],
    [['--agent-command', '/opt/a $HOME'], /--agent-command "\/opt\/a \$HOME": agent command "\$HOME"/],
    [['--identity', ''], /--identity: empty file name/],
    [['--known-hosts', ''], /--known-hosts: empty file name/],
    [['--passphrase-file', ''], /--passphrase-file: empty file name/],
    [['--identity'], /Option '--identity <value>' argument missing/],
    [['--no-agent=yes'], /Option '--no-agent' does not take an argument/],
    [['--hash-known-hosts=1'], /Option '--hash-known-hosts' does not take an argument/],
    [['--accept-new=no'], /Option '--accept-new' does not take an argument/],
  ];
  const commands: [string, string[]][] = [
    ['run', ['run', ...corpus('discovery-hv-features'), '--target', 'model']],
    ['search', ['search', '--a', 'linux-6.11', '--target', 'model']],
    ['guest', ['guest', 'doctor', '--target', 'ssh://root@127.0.0.1:1']],
  ];
  for (const [name, prefix] of commands)
    for (const [flags, message] of cases) {
      const c = capture();
      const code = await main([...prefix, ...flags], c.io);
      assert.equal(code, ExitCode.USAGE, `${name} ${flags.join(' ')}: ${c.err()}`);
      assert.match(c.err(), new RegExp(`^snpsim ${name}: SNPSIM_USAGE: `), `${name} ${flags.join(' ')}`);
      assert.match(c.err(), message, `${name} ${flags.join(' ')}`);
      assert.equal(c.out(), '', `${name} ${flags.join(' ')}: nothing ran`);
    }
});

test('every usage text lists the same SSH options', async () => {
  const flags = [
    '--host-key SHA256:',
    '--known-hosts FILE',
    '--accept-new',
    '--hash-known-hosts',
    '--identity FILE',
    '--no-agent',
    '--passphrase-file FILE',
    '--connect-timeout MS',
    '--step-timeout MS',
    '--keepalive MS',
    '--agent-command "PATH [ARGS]"',
  ];
  const blocks: string[] = [];
  for (const command of ['run', 'search', 'guest']) {
    const c = capture();
    assert.equal(await main([command, '--help'], c.io), ExitCode.OK);
    const block = c.out().slice(c.out().indexOf('ssh options (for ssh:// targets):'));
    for (const flag of flags) assert.ok(block.includes(`  ${flag}`), `${command} --help lists ${flag}`);
    // Only the --step-timeout default differs between commands.
    blocks.push(
      block
        .split('\n\n')[0]!
        .trimEnd()
        .replace(/^ +\(default .*\)$/m, "(default: the command's)"),
    );
  }
  assert.equal(blocks[1], blocks[0]);
  assert.equal(blocks[2], blocks[0]);
});

test('over real SSH: run and search reach the simulated guest with the same flags, and the flags take effect', async () => {
  const passphrase = 'correct horse';
  const client = generateEd25519KeyPair({ passphrase, cipher: 'aes256-ctr', rounds: 1 });
  const identity = join(dir, 'id_ed25519');
  await writeFile(identity, client.private, { mode: 0o600 });
  const stranger = join(dir, 'id_stranger');
  await writeFile(stranger, generateEd25519KeyPair().private, { mode: 0o600 });
  const passFile = join(dir, 'pass');
  await writeFile(passFile, `${passphrase}\n`);
  const knownHosts = join(dir, 'known_hosts');
  const hostKey = ephemeralHostKey();
  const agentCommand = ['/opt/snpsim/agent', '--sim'];
  const server = await SimGuestServer.start({
    backend: modelBackend({ policy: resolvePolicy('linux-6.11'), profile: resolveProfile('genoa') }),
    authorizedKeys: parseAuthorizedKeys(client.public, 'test').keys,
    hostKey,
    agentCommand,
  });
  const saved = { passphrase: process.env.SNPSIM_SSH_PASSPHRASE, sock: process.env.SSH_AUTH_SOCK };
  delete process.env.SNPSIM_SSH_PASSPHRASE;
  // An ssh-agent socket that auth offers unless --no-agent is given (nothing listens there).
  process.env.SSH_AUTH_SOCK = join(dir, 'no-such-agent.sock');
  try {
    const url = `ssh://snpsim@127.0.0.1:${server.port}`;
    const auth = ['--identity', identity, '--passphrase-file', passFile, '--no-agent'];
    const common = [...auth, '--agent-command', agentCommand.join(' '), '--connect-timeout', '5000'];
    const scenario = corpus('discovery-sev-info');

    // run: an unknown host is accepted and remembered, hashed.
    const first = capture();
    const runArgs = [...scenario, '--target', url, ...common, '--keepalive', '0', '--step-timeout', '20000'];
    const learn = ['--known-hosts', knownHosts, '--accept-new', '--hash-known-hosts'];
    assert.equal(await main(['run', ...runArgs, ...learn, '--quiet'], first.io), ExitCode.OK, first.out());
    const lines = (await readFile(knownHosts, 'utf8')).trim().split('\n');
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);

    // search: the strict known_hosts check now passes (the hashed entry matches).
    const searched = capture();
    const searchArgs = ['--a', 'linux-6.11', '--target', url, ...common, '--keepalive', '5000'];
    const small = ['--runs', '3', '--max-commands', '3', '--seed', '1', '--quiet'];
    assert.equal(
      await main(['search', ...searchArgs, '--known-hosts', knownHosts, ...small], searched.io),
      ExitCode.OK,
      searched.err(),
    );
    assert.match(searched.err(), /no divergence in 3 sequences \(seed 1\)/);

    // Repeated --host-key pins: one of them matches.
    const pinned = capture();
    const pins = ['--host-key', PIN_A, '--host-key', hostKey.fingerprint];
    assert.equal(await main(['run', ...runArgs, ...pins, '--quiet'], pinned.io), ExitCode.OK, pinned.out());
    const searchedPinned = capture();
    assert.equal(await main(['search', ...searchArgs, ...pins, ...small], searchedPinned.io), ExitCode.OK);

    // The flags are not merely accepted: without each one the same command fails.
    const without = async (command: 'run' | 'search', drop: string, add: string[] = []) => {
      const args = command === 'run' ? runArgs : [...searchArgs, ...small];
      const i = args.indexOf(drop);
      const kept = [...args.slice(0, i), ...args.slice(i + (drop.startsWith('--no-') ? 1 : 2))];
      const c = capture();
      const code = await main([command, ...kept, ...pins, ...add, '--quiet'], c.io);
      return { code, text: c.out() + c.err() };
    };
    for (const command of ['run', 'search'] as const) {
      const noPass = await without(command, '--passphrase-file');
      assert.equal(noPass.code, ExitCode.INFRASTRUCTURE, noPass.text);
      assert.match(noPass.text, /SNPSIM_SSH_AUTH/);
      assert.match(noPass.text, /encrypted, and no passphrase given/);
      const defaultAgent = await without(command, '--agent-command');
      assert.equal(defaultAgent.code, ExitCode.INFRASTRUCTURE, defaultAgent.text);
      assert.ok(defaultAgent.text.includes(DEFAULT_AGENT_PATH), defaultAgent.text);
      // --no-agent: an auth failure lists what was offered; the agent only without the flag.
      for (const noAgent of [[], ['--no-agent']]) {
        const c = capture();
        const args =
          command === 'run'
            ? [...scenario, '--target', url, '--identity', stranger]
            : ['--a', 'linux-6.11', '--target', url, '--identity', stranger, ...small];
        const code = await main([command, ...args, ...pins, ...noAgent, '--quiet'], c.io);
        const text = c.out() + c.err();
        assert.equal(code, ExitCode.INFRASTRUCTURE, text);
        assert.match(text, /SNPSIM_SSH_AUTH/);
        assert.equal(text.includes(`ssh-agent at ${process.env.SSH_AUTH_SOCK}`), noAgent.length === 0, text);
      }
    }
  } finally {
    if (saved.passphrase === undefined) delete process.env.SNPSIM_SSH_PASSPHRASE;
    else process.env.SNPSIM_SSH_PASSPHRASE = saved.passphrase;
    if (saved.sock === undefined) delete process.env.SSH_AUTH_SOCK;
    else process.env.SSH_AUTH_SOCK = saved.sock;
    await server.close();
  }
});

test('snpsim sim-guest serves an --agent-command "PATH ARGS" and prints a connect line that works as printed', async () => {
  const bad = capture();
  assert.equal(
    await main(['sim-guest', '--port', '0', '--agent-command', 'agent; reboot'], bad.io),
    ExitCode.USAGE,
  );
  assert.match(bad.err(), /--agent-command "agent; reboot": agent command "agent;" is not allowed/);

  const client = generateEd25519KeyPair();
  const identity = join(dir, 'id_sim_guest');
  await writeFile(identity, client.private, { mode: 0o600 });
  await writeFile(`${identity}.pub`, `${client.public}\n`);
  const cli = fileURLToPath(new URL('../../../bin/snpsim.js', import.meta.url));
  const child = spawn(
    process.execPath,
    [
      cli,
      'sim-guest',
      '--port',
      '0',
      '--authorized-keys',
      `${identity}.pub`,
      '--agent-command',
      '/opt/a  --sim',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  try {
    let out = '';
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString();
        if (out.includes('stop with Ctrl-C')) resolve();
      });
      child.once('exit', () => reject(new Error(`sim-guest exited early: ${out}`)));
    });
    assert.match(out, /agent +'\/opt\/a' '--sim'\n/);
    const line = /^ {2}snpsim run scenarios\/ (.*)$/m.exec(out)?.[1] ?? '';
    assert.match(line, / --agent-command '\/opt\/a --sim'$/, out);
    // The printed flags, as a shell would split them, reach the served command.
    const printed = [...line.matchAll(/'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2]!);
    const c = capture();
    const code = await main(
      [
        'run',
        ...corpus('discovery-hv-features'),
        ...printed,
        '--identity',
        identity,
        '--no-agent',
        '--quiet',
      ],
      c.io,
    );
    assert.equal(code, ExitCode.OK, c.out() + c.err());
  } finally {
    child.kill('SIGTERM');
    assert.equal(await exited, 0);
  }
});
