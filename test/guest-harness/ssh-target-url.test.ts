import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import {
  checkRemotePath,
  formatSshTargetUrl,
  Limiter,
  parseSshTargetUrl,
  remoteCommand,
  SnpsimError,
  SnpsimErrorCode,
  shellQuote,
} from '../../guest-harness/index.js';

test('ssh:// target URLs: user, host (name, IPv4, [IPv6]) and port', () => {
  assert.deepEqual(parseSshTargetUrl('ssh://root@10.0.0.5'), { user: 'root', host: '10.0.0.5', port: 22 });
  assert.deepEqual(parseSshTargetUrl('ssh://root@guest-1.lab.example:2222'), {
    user: 'root',
    host: 'guest-1.lab.example',
    port: 2222,
  });
  assert.deepEqual(parseSshTargetUrl('ssh://ubuntu@[fd00::5]:22/'), {
    user: 'ubuntu',
    host: 'fd00::5',
    port: 22,
  });
  assert.equal(formatSshTargetUrl({ user: 'u', host: 'fd00::5', port: 22 }), 'ssh://u@[fd00::5]:22');
  assert.equal(formatSshTargetUrl(parseSshTargetUrl('ssh://root@h')), 'ssh://root@h:22');
});

test('bad target URLs are usage errors that name the problem', () => {
  const cases: [string, RegExp][] = [
    ['root@10.0.0.5', /must start with ssh:\/\//],
    ['ssh://10.0.0.5', /a user is required/],
    ['ssh://root:pw@10.0.0.5', /passwords in the URL are not supported/],
    ['ssh://-oProxyCommand=x@h', /is not a plain user name/],
    ['ssh://ro ot@h', /is not a plain user name/],
    ['ssh://root@', /a host is required/],
    ['ssh://root@h;rm', /is not a host name or IP address/],
    ['ssh://root@-h', /is not a host name or IP address/],
    ['ssh://root@h:0', /port "0" is not 1\.\.65535/],
    ['ssh://root@h:65536', /port "65536"/],
    ['ssh://root@h:22x', /port "22x"/],
    ['ssh://root@h/path', /no path, query/],
    ['ssh://root@h?x=1', /no path, query/],
    ['ssh://root@h%20', /no path, query/],
    ['ssh://root@[fd00::5', /unterminated/],
    ['ssh://root@[nothex]:22', /is not an IPv6 address/],
    ['ssh://root@[::1]x', /expected :port after ]/],
  ];
  for (const [url, message] of cases) {
    assert.throws(
      () => parseSshTargetUrl(url),
      (e: unknown) =>
        SnpsimError.is(e) &&
        e.code === SnpsimErrorCode.USAGE &&
        message.test(e.message) &&
        e.message.includes(JSON.stringify(url)),
      url,
    );
  }
});

test('remote commands: every argument checked and single-quoted; a POSIX shell sees the same words', () => {
  assert.equal(
    remoteCommand(['/usr/local/libexec/snpsim/snpsim-agent']),
    "'/usr/local/libexec/snpsim/snpsim-agent'",
  );
  assert.equal(
    remoteCommand(['/usr/bin/node', '/opt/a.js', '--backend', 'model']),
    "'/usr/bin/node' '/opt/a.js' '--backend' 'model'",
  );
  for (const bad of [
    ['rm -rf /'],
    ['a;b'],
    ['$(id)'],
    ['`id`'],
    ['a*'],
    ["it's"],
    ['-x'],
    ['/bin/a', 'b\nc'],
    [],
  ]) {
    assert.throws(
      () => remoteCommand(bad),
      (e: unknown) => SnpsimError.is(e) && e.code === SnpsimErrorCode.INPUT_INVALID,
      JSON.stringify(bad),
    );
  }
  fc.assert(
    fc.property(
      fc.array(fc.string({ minLength: 1, maxLength: 12 }), { minLength: 1, maxLength: 4 }),
      (words) => {
        const quoted = words.map(shellQuote).join(' ');
        const echoed = execFileSync('/bin/sh', ['-c', `printf '%s\\0' ${quoted}`], { encoding: 'utf8' });
        assert.deepEqual(echoed.split('\0').slice(0, -1), words);
      },
    ),
    { numRuns: 100 },
  );
  assert.equal(checkRemotePath('/usr/local/src/snpsim', 'dir'), '/usr/local/src/snpsim');
  for (const bad of ['relative/dir', '/a/../b', '/a/./b', '/a//b', '/a b', '/', '/a;b']) {
    assert.throws(() => checkRemotePath(bad, 'dir'), /must be an absolute path/, bad);
  }
});

test('Limiter: never more than `limit` holders, FIFO, releases on failure', async () => {
  const limiter = new Limiter(2);
  let active = 0;
  let peak = 0;
  const order: number[] = [];
  const task = (i: number) => async () => {
    active++;
    peak = Math.max(peak, active);
    await new Promise((r) => setImmediate(r));
    order.push(i);
    active--;
    if (i === 1) throw new Error('boom');
    return i;
  };
  const results = await Promise.allSettled([0, 1, 2, 3, 4].map((i) => limiter.run(task(i))));
  assert.equal(peak, 2);
  assert.deepEqual(order, [0, 1, 2, 3, 4]);
  assert.deepEqual(
    results.map((r) => r.status),
    ['fulfilled', 'rejected', 'fulfilled', 'fulfilled', 'fulfilled'],
  );
  assert.equal(limiter.active, 0);
  assert.throws(() => new Limiter(0), RangeError);
});

test('snpsim guest: usage errors exit 2 naming the flag; an unreachable guest exits 3', () => {
  const cli = fileURLToPath(new URL('../../../bin/snpsim.js', import.meta.url));
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [cli, 'guest', ...args], { encoding: 'utf8' });
  const cases: [string[], RegExp][] = [
    [['upgrade'], /expected install or doctor, got "upgrade"/],
    [['doctor'], /--target ssh:\/\/user@host\[:port\] is required/],
    [['doctor', '--target', 'root@h'], /must start with ssh:\/\//],
    [['install', '--target', 'ssh://root@h', '--json'], /--json is for doctor/],
    [['doctor', '--target', 'ssh://root@h', '--no-load'], /--no-load is for install/],
    [
      ['doctor', '--target', 'ssh://root@h', '--connect-timeout', '5s'],
      /--connect-timeout "5s": expected a positive whole number of milliseconds/,
    ],
    [
      ['doctor', '--target', 'ssh://root@h', '--host-key', 'SHA256:x', '--accept-new'],
      /--host-key "SHA256:x"/,
    ],
    [
      ['doctor', '--target', 'ssh://root@h', '--host-key', `SHA256:${'A'.repeat(43)}`, '--accept-new'],
      /cannot be combined with --known-hosts or --accept-new/,
    ],
    [
      ['doctor', '--target', 'ssh://root@h', '--agent-command', 'agent; reboot'],
      /agent command "agent;" is not allowed/,
    ],
    [['doctor', '--bogus'], /Unknown option '--bogus'/],
  ];
  for (const [args, message] of cases) {
    const r = run(...args);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
  }
  const refused = run(
    'install',
    '--target',
    'ssh://root@127.0.0.1:1',
    '--host-key',
    `SHA256:${'A'.repeat(43)}`,
    '--no-agent',
    '--identity',
    '/dev/null',
  );
  assert.equal(refused.status, 3, refused.stderr);
});
