import assert from 'node:assert/strict';
import { test } from 'node:test';
import ssh2 from 'ssh2';
import { generateEd25519KeyPair } from '../../guest-harness/index.js';

test('generated ed25519 key pairs always parse and carry a 32-byte public key', () => {
  // ssh2's own generator yields a malformed (31-byte) key about once in 256 draws; 2000 draws would
  // hit that with probability > 99.9%, so a generator without the redraw fails this test.
  for (let i = 0; i < 2000; i++) {
    const pair = generateEd25519KeyPair({ comment: 'test' });
    const pub = ssh2.utils.parseKey(pair.public);
    const priv = ssh2.utils.parseKey(pair.private);
    assert.ok(
      !(pub instanceof Error) && !Array.isArray(pub),
      `public key ${i} does not parse: ${pair.public}`,
    );
    assert.ok(!(priv instanceof Error) && !Array.isArray(priv), `private key ${i} does not parse`);
    const blob = pub.getPublicSSH();
    assert.equal(blob.length, 4 + 'ssh-ed25519'.length + 4 + 32);
    assert.ok(priv.getPublicSSH().equals(blob), 'the halves belong together');
  }
});

test('an encrypted private key parses with its passphrase only', () => {
  const pair = generateEd25519KeyPair({ passphrase: 'pw', cipher: 'aes256-ctr', rounds: 1 });
  assert.ok(!(ssh2.utils.parseKey(pair.private, 'pw') instanceof Error));
  assert.ok(ssh2.utils.parseKey(pair.private, 'wrong') instanceof Error);
});
