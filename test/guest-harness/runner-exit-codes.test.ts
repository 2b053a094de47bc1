import assert from 'node:assert/strict';
import { access, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import {
  AgentScenarioTarget,
  createRunCommand,
  defaultRunEnvironment,
  ephemeralHostKey,
  generateEd25519KeyPair,
  type LoadedScenario,
  loadScenarios,
  ModelReference,
  main,
  modelBackend,
  parseAuthorizedKeys,
  type RunEnvironment,
  type RunReport,
  renderJunit,
  resolvePolicy,
  resolveProfile,
  runCommand,
  runDifferential,
  type ScenarioExecution,
  type ScenarioTarget,
  SimGuestServer,
  SnpsimErrorCode,
  SshAgentTarget,
} from '../../guest-harness/index.js';
import { capture, corpus, tempDir, writeJson } from './run-helpers.js';

let dir: string;
let cleanup: () => Promise<void>;
before(async () => {
  ({ dir, cleanup } = await tempDir('exit'));
});
after(async () => cleanup());

const THREE = corpus('discovery-hv-features', 'discovery-sev-info', 'lifecycle-offline-online');

/** A target that answers its first scenario from the model, then loses its guest for good. */
class BreakingTarget implements ScenarioTarget {
  readonly kind = 'ssh' as const;
  #runs = 0;
  constructor(
    readonly spec: string,
    readonly inner: ScenarioTarget,
  ) {}
  open() {
    return this.inner.open();
  }
  cannotRun() {
    return undefined;
  }
  async run(s: LoadedScenario): Promise<ScenarioExecution> {
    this.#runs++;
    if (this.#runs === 1) return this.inner.run(s);
    return {
      observations: [],
      error: { code: SnpsimErrorCode.SSH_TIMEOUT, message: 'no response to step 1 within 10000 ms' },
    };
  }
  async recover() {
    return 'reconnecting failed: connect ECONNREFUSED';
  }
  close() {
    return this.inner.close();
  }
}

function environment(): RunEnvironment {
  const base = defaultRunEnvironment();
  return {
    ...base,
    resolvePolicy: async (v) => (v === 'breaks' ? 'breaks' : base.resolvePolicy(v)),
    target(spec, options) {
      if (spec.kind === 'model' && spec.policy === 'breaks') {
        return new BreakingTarget(spec.text, base.target({ kind: 'model', text: 'model' }, options));
      }
      return base.target(spec, options);
    },
  };
}

async function viaMain(argv: string[]) {
  const c = capture();
  const code = await main(['run', ...argv], c.io, [createRunCommand(async () => environment())]);
  return { code, out: c.out(), err: c.err() };
}

test('exit 0: no differences', async () => {
  const r = await viaMain([...THREE, '--target', 'model', '--quiet']);
  assert.equal(r.code, 0, r.out + r.err);
  assert.match(r.out, /no differences \(exit 0\)/);
});

test('exit 1: differences', async () => {
  const r = await viaMain([
    ...corpus('malformed-sev-features-zero'),
    '--target',
    'model:linux-6.15',
    '--quiet',
  ]);
  assert.equal(r.code, 1);
  assert.match(r.out, /DIFF {2}malformed-sev-features-zero/);
});

test('--policy and --profile take JSON files: the reference model runs what the files say', async () => {
  const policy = await writeJson(join(dir, 'policy-6.15.json'), { extends: 'linux-6.15', knobs: {} });
  const profile = await writeJson(join(dir, 'profile-milan.json'), { extends: 'milan' });
  const same = await viaMain([
    ...THREE,
    '--target',
    'model',
    '--policy',
    policy,
    '--profile',
    profile,
    '--quiet',
  ]);
  assert.equal(same.code, 0, same.out + same.err);
  assert.match(same.out, /model: policy custom \(extends linux-6\.15\)/);
  // The reference runs linux-6.15 from the file: its CREATE with SEV_FEATURES 0 is refused (0x2)
  // where linux-6.11 (the scenario's default expectation, and the target here) accepts it.
  const other = await viaMain([
    ...corpus('malformed-sev-features-zero'),
    '--target',
    'model:linux-6.11',
    '--policy',
    policy,
    '--quiet',
    '--json',
    join(dir, 'policy-file.json'),
  ]);
  assert.equal(other.code, 1, other.out + other.err);
  const report = JSON.parse(await readFile(join(dir, 'policy-file.json'), 'utf8')) as RunReport;
  const result = report.targets[0]?.scenarios[0];
  assert.equal(report.policy, 'custom (extends linux-6.15)');
  assert.deepEqual(
    result?.differences.map((d) => [d.what, d.model, d.target]),
    [
      ['sw_exit_info1', '0x2', '0x0'],
      ['sw_exit_info2', '0x5', '0x0'],
      ['ran', '0', '1'],
    ],
  );
});

test('exit 2: a bad scenario file names file, JSON path and problem, and nothing runs', async () => {
  const bad = await writeJson(join(dir, 'bad.json'), {
    description: 'a bad scenario for exit codes',
    steps: [{ op: 'ap-creation', request: 'create' }],
  });
  const json = join(dir, 'never.json');
  const r = await viaMain([bad, ...THREE, '--target', 'model', '--json', json]);
  assert.equal(r.code, 2);
  assert.match(r.err, /SNPSIM_SCENARIO_INVALID: 1 problem in 1 scenario file; nothing was run:/);
  assert.ok(r.err.includes(`${bad}: $.steps[0].apic: missing required property 'apic'`), r.err);
  assert.equal(r.out, '');
  await assert.rejects(access(json), 'no report is written when nothing ran');
});

test('exit 2: usage and input errors (flags, targets, policies, profiles, expectations, fixtures)', async () => {
  const cases: [string[], RegExp][] = [
    [['--target', 'model', '--bogus'], /SNPSIM_USAGE: Unknown option '--bogus'/],
    [
      ['--target', 'telnet://x'],
      /SNPSIM_USAGE: --target telnet:\/\/x: unknown target; expected model\[:POLICY\[:PROFILE\]\]/,
    ],
    [
      ['--target', 'ssh://root@host:99999'],
      /target "ssh:\/\/root@host:99999": port "99999" is not 1\.\.65535/,
    ],
    [['--target', 'ssh://1user@host'], /user "1user" is not a plain user name/],
    [
      ['--target', 'model', '--policy', 'linux-6.12'],
      /SNPSIM_POLICY_INVALID: --policy linux-6\.12: neither a preset/,
    ],
    [['--target', 'model', '--profile', 'zen9'], /SNPSIM_PROFILE_INVALID/],
    [['--target', 'model', '--target', 'model'], /--target model is given twice/],
    [['--target', 'model', '--target', 'sim', '--record', join(dir, 'x.json')], /--record saves one target/],
    [['--target', 'model', '--platform', 'host kernel=6'], /--platform host kernel=6: expected key=value/],
    [
      ['--target', 'model', '--expectations', join(dir, 'missing.json')],
      /SNPSIM_INPUT_INVALID: .*cannot read the expectations file/,
    ],
    [
      ['--target', `fixture:${join(dir, 'missing.json')}`],
      /SNPSIM_FIXTURE_INVALID: .*cannot read the fixture/,
    ],
    [['--target', 'model', '--host-key', 'MD5:aa'], /--host-key "MD5:aa": expected SHA256: and 43 base64/],
  ];
  for (const [args, message] of cases) {
    const r = await viaMain([...THREE, ...args]);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.err}`);
    assert.match(r.err, message);
  }
  await writeFile(join(dir, 'bad-policy.json'), '{\n  "extends": "linux-6.11",\n  "knobs": {,}\n}\n');
  const syntax = await viaMain([...THREE, '--target', 'model', '--policy', join(dir, 'bad-policy.json')]);
  assert.equal(syntax.code, 2);
  assert.match(
    syntax.err,
    /SNPSIM_POLICY_INVALID: .*bad-policy\.json: \$: not valid JSON: .*\(line 3, column 13\)/,
  );
  await writeFile(
    join(dir, 'exp.json'),
    '{"version": 1, "divergences": [{"scenario": "x", "reason": "short"}]}',
  );
  const r = await viaMain([...THREE, '--target', 'model', '--expectations', join(dir, 'exp.json')]);
  assert.equal(r.code, 2);
  assert.match(r.err, /exp\.json: \$\.divergences\[0\]\.reason: /);
});

test('exit 3: a target failing mid-run; the partial reports are still written', async () => {
  const json = join(dir, 'partial.json');
  const junit = join(dir, 'partial.xml');
  const r = await viaMain([
    ...THREE,
    '--target',
    'model:breaks',
    '--json',
    json,
    '--junit',
    junit,
    '--quiet',
  ]);
  assert.equal(r.code, 3, r.out);
  assert.match(r.out, /ERROR discovery-sev-info: SNPSIM_SSH_TIMEOUT: no response to step 1/);
  assert.match(
    r.out,
    /ERROR lifecycle-offline-online: SNPSIM_SSH_TIMEOUT: not run: the target failed in scenario discovery-sev-info/,
  );
  assert.match(r.out, /run incomplete \(infrastructure failure\); partial run \(exit 3\)/);
  const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
  assert.equal(report.exitCode, 3);
  assert.equal(report.complete, false);
  assert.deepEqual(
    report.targets[0]!.scenarios.map((s) => s.status),
    ['pass', 'error', 'error'],
  );
  assert.match(await readFile(junit, 'utf8'), /<error type="SNPSIM_SSH_TIMEOUT"/);
});

test('exit 3: an unreachable target (connection refused) fails every scenario, reports written', async () => {
  const json = join(dir, 'refused.json');
  const key = join(dir, 'id_ed25519');
  await writeFile(key, generateEd25519KeyPair().private, { mode: 0o600 });
  const r = await viaMain([
    ...THREE,
    ...['--target', 'ssh://root@127.0.0.1:1', '--host-key', `SHA256:${'A'.repeat(43)}`, '--identity', key],
    ...['--json', json, '--quiet'],
  ]);
  assert.equal(r.code, 3);
  const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
  assert.equal(report.targets[0]!.error?.code, SnpsimErrorCode.SSH_CONNECTION_REFUSED);
  assert.ok(
    report.targets[0]!.scenarios.every(
      (s) => s.status === 'error' && s.reason === 'not run: the target could not be opened',
    ),
  );
  assert.equal(report.complete, false);
});

test('exit 3: an interrupted run stops after the current scenario and writes a partial report', async () => {
  const json = join(dir, 'interrupted.json');
  const controller = new AbortController();
  const c = capture();
  // Progress goes to stderr: abort when the first scenario is done.
  const io = {
    stdout: c.io.stdout,
    stderr: {
      write: (s: string) => (s.startsWith('progress') ? controller.abort() : undefined),
      isTTY: false,
    },
  };
  const code = await runCommand(
    [...THREE, '--target', 'model', '--json', json],
    io,
    environment(),
    controller.signal,
  );
  assert.equal(code, 3);
  const report = JSON.parse(await readFile(json, 'utf8')) as RunReport;
  assert.equal(report.complete, false);
  assert.ok(report.targets[0]!.scenarios.length < 3, 'scenarios after the interrupt are not run');
});

test('exit 3 over real SSH: the connection is cut in the middle of a scenario; the run goes on after reconnecting', async () => {
  const policy = resolvePolicy('linux-6.11');
  const profile = resolveProfile('genoa');
  const inner = modelBackend({ policy, profile });
  let server: SimGuestServer | undefined;
  let sessions = 0;
  // The second scenario's agent run loses its connection at its second request, as a guest whose
  // host died would.
  const backend = {
    hello: () => inner.hello(),
    openSession() {
      const session = inner.openSession();
      const mine = ++sessions;
      let requests = 0;
      return {
        execute(request: Parameters<typeof session.execute>[0]) {
          if (mine === 3 && ++requests === 2) server?.dropConnections();
          return session.execute(request);
        },
        close: () => session.close(),
      };
    },
  };
  const client = generateEd25519KeyPair();
  const hostKey = ephemeralHostKey();
  server = await SimGuestServer.start({
    backend,
    authorizedKeys: parseAuthorizedKeys(client.public, 'test').keys,
    hostKey,
  });
  const identity = join(dir, 'cut_ed25519');
  await writeFile(identity, client.private, { mode: 0o600 });
  try {
    const target = new SshAgentTarget(
      { user: 'snpsim', host: server.host, port: server.port },
      { hostKey: { pins: [hostKey.fingerprint] }, auth: { agentSocket: null, identityFiles: [identity] } },
    );
    const outcome = await runDifferential({
      scenarios: await loadScenarios(
        corpus('discovery-hv-features', 'lifecycle-offline-online', 'discovery-sev-info'),
      ),
      targets: [new AgentScenarioTarget('ssh://snpsim@sim', 'ssh', target, 5000)],
      reference: new ModelReference(),
      policy: 'linux-6.11',
      profile: 'genoa',
      snpsimVersion: 'test',
    });
    // Session 1 is open()'s hello; sessions 2, 3, 4 are the three scenarios.
    assert.equal(outcome.report.exitCode, 3);
    const [a, b, c] = outcome.report.targets[0]!.scenarios;
    assert.equal(a?.status, 'pass');
    assert.equal(b?.status, 'error');
    assert.equal(b?.error?.code, SnpsimErrorCode.GUEST_DIED);
    assert.match(
      b?.error?.message ?? '',
      /the guest VM stopped at step \d+ .* where the model's VM kept running/,
    );
    assert.equal(c?.status, 'pass', 'the next scenario runs on a new connection');
    const json = renderJunit(outcome.report);
    assert.match(json, /<error type="SNPSIM_GUEST_DIED"/);
  } finally {
    await server.close();
  }
});
