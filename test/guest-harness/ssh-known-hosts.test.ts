import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import ssh2 from 'ssh2';
import {
  checkHostKey,
  formatKnownHostsLine,
  generateEd25519KeyPair,
  globMatch,
  hashHostName,
  knownHostsName,
  parseFingerprint,
  parseKnownHosts,
  SnpsimErrorCode,
  sshFingerprint,
  verifyHostKey,
} from '../../guest-harness/index.js';

const dir = mkdtempSync(join(tmpdir(), 'snpsim-kh-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function keyPair(type: 'ed25519' | 'ecdsa' = 'ed25519') {
  const pair =
    type === 'ecdsa' ? ssh2.utils.generateKeyPairSync('ecdsa', { bits: 256 }) : generateEd25519KeyPair();
  const [keyType = '', b64 = ''] = pair.public.split(' ');
  return { keyType, b64, blob: Buffer.from(b64, 'base64'), line: `${keyType} ${b64}` };
}

const hasKeygen = spawnSync('ssh-keygen', ['-?'], { stdio: 'ignore' }).error === undefined;

const a = keyPair();
const b = keyPair();
const c = keyPair('ecdsa');

test('lookup names: host for port 22, [host]:port otherwise, lower-cased', () => {
  assert.equal(knownHostsName('Guest.Example', 22), 'guest.example');
  assert.equal(knownHostsName('10.0.0.5', 2222), '[10.0.0.5]:2222');
  assert.equal(knownHostsName('::1', 22), '::1');
  assert.equal(knownHostsName('::1', 2200), '[::1]:2200');
});

test('glob matching follows OpenSSH: * and ?, anchored', () => {
  assert.ok(globMatch('guest1.lab', 'guest?.lab'));
  assert.ok(globMatch('a.b.lab', '*.lab'));
  assert.ok(globMatch('[10.0.0.5]:2222', '[10.0.0.*]:2222'));
  assert.ok(!globMatch('guest10.lab', 'guest?.lab'));
  assert.ok(!globMatch('xlab', '*.lab'));
  assert.ok(globMatch('', '*'));
  fc.assert(
    fc.property(fc.string({ unit: fc.constantFrom('a', 'b', '.'), maxLength: 12 }), (text) => {
      assert.ok(globMatch(text, '*'));
      assert.ok(globMatch(text, text));
      assert.equal(globMatch(text, '?'.repeat(text.length)), true);
      assert.equal(globMatch(text, '?'.repeat(text.length + 1)), false);
    }),
  );
});

test('plain, bracketed-port, wildcard and negated entries match as OpenSSH does', () => {
  const kh = parseKnownHosts(
    [
      '# comment line',
      '',
      `guest1,10.0.0.5 ${a.line} first`,
      `[10.0.0.5]:2222 ${b.line}`,
      `*.lab,!bad.lab ${c.line}`,
    ].join('\n'),
    'kh',
  );
  assert.deepEqual(kh.problems, []);
  assert.equal(kh.entries.length, 3);
  assert.equal(checkHostKey(kh, knownHostsName('GUEST1', 22), a.blob).status, 'ok');
  assert.equal(checkHostKey(kh, knownHostsName('10.0.0.5', 22), a.blob).status, 'ok');
  // Port 2222 is a different name: the port-22 entry does not vouch for it.
  const ported = checkHostKey(kh, knownHostsName('10.0.0.5', 2222), b.blob);
  assert.equal(ported.status, 'ok');
  assert.equal(ported.status === 'ok' && ported.entry.line, 4);
  assert.equal(checkHostKey(kh, knownHostsName('10.0.0.5', 2222), a.blob).status, 'changed');
  assert.equal(checkHostKey(kh, knownHostsName('x.lab', 22), c.blob).status, 'ok');
  assert.equal(checkHostKey(kh, knownHostsName('bad.lab', 22), c.blob).status, 'unknown');
  assert.equal(checkHostKey(kh, knownHostsName('other', 22), a.blob).status, 'unknown');
});

test('a different key for a known host is CHANGED (any type), and the known entries are listed', () => {
  const kh = parseKnownHosts(`guest ${a.line}\nguest ${c.line}\n`, 'kh');
  const r = checkHostKey(kh, 'guest', b.blob);
  assert.equal(r.status, 'changed');
  assert.deepEqual(r.status === 'changed' ? r.known.map((e) => e.line) : [], [1, 2]);
  // One matching entry among several is enough.
  assert.equal(checkHostKey(kh, 'guest', c.blob).status, 'ok');
});

test('@revoked wins over a matching entry; @cert-authority does not vouch for a plain key', () => {
  const kh = parseKnownHosts(
    `guest ${a.line}\n@revoked guest ${a.line}\n@cert-authority *.lab ${b.line}\n`,
    'kh',
  );
  assert.equal(checkHostKey(kh, 'guest', a.blob).status, 'revoked');
  const ca = checkHostKey(kh, 'x.lab', b.blob);
  assert.equal(ca.status, 'unknown');
  assert.deepEqual(ca.status === 'unknown' ? ca.certAuthorities.map((e) => e.line) : [], [3]);
  // A revocation for another host does not apply (OpenSSH loads entries by host).
  assert.equal(
    checkHostKey(parseKnownHosts(`@revoked other ${a.line}\nguest ${a.line}`, 'kh'), 'guest', a.blob).status,
    'ok',
  );
});

test('unusable lines are reported with file:line and skipped, never thrown', () => {
  const kh = parseKnownHosts(
    [
      `@bogus guest ${a.line}`,
      'guest ssh-ed25519',
      `guest ssh-foo ${a.b64}`,
      'guest ssh-ed25519 !!!notbase64',
      `guest ecdsa-sha2-nistp256 ${a.b64}`,
      `|1|c2FsdA==|aGFzaA== ${a.line}`,
      `|2|x|y ${a.line}`,
      `,guest ${a.line}`,
      `ok ${a.line}`,
    ].join('\n'),
    'f',
  );
  assert.equal(kh.entries.length, 1);
  const expected: [number, string][] = [
    [1, 'unknown marker "@bogus"'],
    [2, 'expected [marker] hostpatterns keytype base64-key'],
    [3, 'unsupported key type "ssh-foo"'],
    [4, 'key is not valid base64'],
    [5, 'key blob says "ssh-ed25519" but the line says ecdsa-sha2-nistp256'],
    [6, 'hashed host field is not |1|base64(20-byte salt)'],
    [7, 'unknown host hash format "|2|x"'],
    [8, 'empty host pattern in ",guest"'],
  ];
  assert.equal(kh.problems.length, expected.length);
  kh.problems.forEach((p, i) => {
    assert.equal(p.file, 'f');
    assert.equal(p.line, expected[i]?.[0]);
    assert.ok(p.message.startsWith(expected[i]?.[1] ?? '?'), p.message);
  });
});

test('hashed |1| entries: ours match ssh-keygen -F, and ssh-keygen -H output matches ours', {
  skip: !hasKeygen && 'ssh-keygen is not installed',
}, () => {
  // Ours -> ssh-keygen.
  const file = join(dir, 'hashed_ours');
  writeFileSync(file, `${formatKnownHostsLine('[10.1.2.3]:2222', a.blob, true)}\n`);
  const found = execFileSync('ssh-keygen', ['-F', '[10.1.2.3]:2222', '-f', file], { encoding: 'utf8' });
  assert.match(found, /Host \[10\.1\.2\.3\]:2222 found: line 1/);
  assert.equal(spawnSync('ssh-keygen', ['-F', '[10.1.2.3]:2223', '-f', file]).status, 1);
  // ssh-keygen -> ours.
  const plain = join(dir, 'plain');
  writeFileSync(plain, `guest.lab ${b.line}\n[10.9.9.9]:2200 ${a.line}\n`);
  execFileSync('ssh-keygen', ['-H', '-f', plain], { stdio: 'ignore' });
  const text = readFileSync(plain, 'utf8');
  assert.match(text, /^\|1\|/m);
  assert.doesNotMatch(text, /guest\.lab/);
  const kh = parseKnownHosts(text, plain);
  assert.deepEqual(kh.problems, []);
  assert.equal(checkHostKey(kh, 'guest.lab', b.blob).status, 'ok');
  assert.equal(checkHostKey(kh, '[10.9.9.9]:2200', a.blob).status, 'ok');
  assert.equal(checkHostKey(kh, '[10.9.9.9]:2200', b.blob).status, 'changed');
  assert.equal(checkHostKey(kh, 'guest.lab2', b.blob).status, 'unknown');
});

test('hashHostName is HMAC-SHA1(salt, name) in the |1|salt|hash form', () => {
  const salt = Buffer.alloc(20, 7);
  const line = hashHostName('guest', salt);
  const [, , s, h] = line.split('|');
  assert.equal(s, salt.toString('base64'));
  assert.equal(h?.length, 28);
  assert.notEqual(hashHostName('guest', Buffer.alloc(20, 8)), line);
  assert.throws(() => hashHostName('guest', Buffer.alloc(19)), RangeError);
});

test('fingerprints are SHA256: unpadded base64, as ssh-keygen -l prints them', {
  skip: !hasKeygen && 'ssh-keygen is not installed',
}, () => {
  const pub = join(dir, 'key.pub');
  writeFileSync(pub, `${a.line} test\n`);
  const printed = execFileSync('ssh-keygen', ['-l', '-f', pub], { encoding: 'utf8' });
  assert.match(printed, new RegExp(` ${sshFingerprint(a.blob).replace(/[+/]/g, '\\$&')} `));
  assert.equal(
    sshFingerprint(a.blob),
    `SHA256:${createHash('sha256').update(a.blob).digest('base64').replace(/=+$/, '')}`,
  );
  assert.equal(parseFingerprint(` ${sshFingerprint(a.blob)} `), sshFingerprint(a.blob));
  assert.equal(parseFingerprint('SHA256:short'), undefined);
  assert.equal(parseFingerprint(`MD5:${sshFingerprint(a.blob).slice(7)}`), undefined);
});

test('verifyHostKey: pins, known_hosts, unknown and changed keys give errors with the fingerprint and how to pin', async () => {
  const file = join(dir, 'kh_verify');
  writeFileSync(file, `[127.0.0.1]:2022 ${a.line}\n`);
  const fpA = sshFingerprint(a.blob);
  const fpB = sshFingerprint(b.blob);
  const ok = await verifyHostKey({ knownHostsFiles: [file] }, '127.0.0.1', 2022, a.blob);
  assert.ok(ok.ok && ok.accepted.how === `known_hosts ${file}:1` && ok.accepted.fingerprint === fpA);
  const changed = await verifyHostKey({ knownHostsFiles: [file] }, '127.0.0.1', 2022, b.blob);
  assert.ok(!changed.ok);
  assert.equal(changed.error.code, SnpsimErrorCode.SSH_HOSTKEY_MISMATCH);
  assert.match(changed.error.message, new RegExp(`offered ssh-ed25519 ${fpB.replace(/[+/]/g, '\\$&')}`));
  assert.match(changed.error.message, /ssh-keygen -R '\[127\.0\.0\.1\]:2022'/);
  assert.ok(changed.error.message.includes(`--host-key ${fpB}`));
  const unknown = await verifyHostKey(
    { knownHostsFiles: [file, join(dir, 'absent')] },
    '127.0.0.1',
    2023,
    a.blob,
  );
  assert.ok(!unknown.ok);
  assert.equal(unknown.error.code, SnpsimErrorCode.SSH_HOSTKEY_UNKNOWN);
  assert.ok(unknown.error.message.includes(fpA));
  assert.ok(unknown.error.message.includes('ssh-keyscan -p 2023 127.0.0.1 >> ~/.ssh/known_hosts'));
  assert.ok(unknown.error.message.includes(`${join(dir, 'absent')} (absent)`));
  const pinned = await verifyHostKey({ pins: [fpB, fpA], knownHostsFiles: [file] }, 'h', 22, a.blob);
  assert.ok(pinned.ok && pinned.accepted.how === 'pinned');
  const wrongPin = await verifyHostKey({ pins: [fpB] }, 'h', 22, a.blob);
  assert.ok(!wrongPin.ok && wrongPin.error.code === SnpsimErrorCode.SSH_HOSTKEY_MISMATCH);
  assert.ok(!wrongPin.ok && wrongPin.error.message.includes(`offered ssh-ed25519 ${fpA}, pinned ${fpB}`));
  writeFileSync(join(dir, 'kh_revoked'), `@revoked * ${a.line}\n`);
  const revoked = await verifyHostKey(
    { knownHostsFiles: [join(dir, 'kh_revoked')], mode: 'accept-new' },
    'h',
    22,
    a.blob,
  );
  assert.ok(!revoked.ok && revoked.error.code === SnpsimErrorCode.SSH_HOSTKEY_REVOKED);
});

test('accept-new appends one line that ssh-keygen -F finds, and still refuses a changed key', {
  skip: !hasKeygen && 'ssh-keygen is not installed',
}, async () => {
  const file = join(dir, 'sub', 'known_hosts');
  const policy = { knownHostsFiles: [file], mode: 'accept-new' as const };
  const results = await Promise.all([
    verifyHostKey(policy, '127.0.0.1', 2201, a.blob),
    verifyHostKey(policy, '127.0.0.1', 2201, a.blob),
  ]);
  assert.ok(results.every((r) => r.ok));
  assert.deepEqual(results.map((r) => r.ok && r.accepted.how).sort(), [
    `added to ${file}`,
    `known_hosts ${file}:1`,
  ]);
  assert.equal(readFileSync(file, 'utf8').split('\n').filter(Boolean).length, 1);
  const found = execFileSync('ssh-keygen', ['-F', '[127.0.0.1]:2201', '-f', file], { encoding: 'utf8' });
  assert.ok(found.includes(a.b64));
  const changed = await verifyHostKey(policy, '127.0.0.1', 2201, b.blob);
  assert.ok(!changed.ok && changed.error.code === SnpsimErrorCode.SSH_HOSTKEY_MISMATCH);
  // Hashed appends are found too.
  const hashed = await verifyHostKey({ ...policy, hashKnownHosts: true }, 'guest.lab', 22, b.blob);
  assert.ok(hashed.ok);
  assert.ok(
    execFileSync('ssh-keygen', ['-F', 'guest.lab', '-f', file], { encoding: 'utf8' }).includes(b.b64),
  );
  assert.doesNotMatch(readFileSync(file, 'utf8'), /guest\.lab/);
});
