import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  type AttestationReport,
  ChipIdentity,
  decodeReport,
  decodeSevPublicKey,
  deriveChipId,
  deriveVcek,
  deriveVcekSeed,
  encodeReport,
  encodeSevPublicKey,
  REPORT_SIGNED_SIZE,
  REPORT_SIZE,
  ReportOffset,
  SigningKey,
  signSev,
  verifyReport,
  verifySev,
} from '../../psp-firmware/index.js';

const bytes = (n: number) => fc.uint8Array({ minLength: n, maxLength: n });
const u8 = fc.integer({ min: 0, max: 0xff });
const u32 = fc.integer({ min: 0, max: 0xffffffff });
const u64 = fc.bigInt({ min: 0n, max: (1n << 64n) - 1n });

const reportArb: fc.Arbitrary<AttestationReport> = fc.record({
  version: u32,
  guestSvn: u32,
  policy: u64,
  familyId: bytes(16),
  imageId: bytes(16),
  vmpl: u32,
  signatureAlgo: u32,
  currentTcb: u64,
  platformInfo: u64,
  authorKeyEn: fc.boolean(),
  maskChipKey: fc.boolean(),
  signingKey: fc.integer({ min: 0, max: 7 }),
  reportData: bytes(64),
  measurement: bytes(48),
  hostData: bytes(32),
  idKeyDigest: bytes(48),
  authorKeyDigest: bytes(48),
  reportId: bytes(32),
  reportIdMa: bytes(32),
  reportedTcb: u64,
  cpuidFamId: u8,
  cpuidModId: u8,
  cpuidStep: u8,
  chipId: bytes(64),
  committedTcb: u64,
  currentBuild: u8,
  currentMinor: u8,
  currentMajor: u8,
  committedBuild: u8,
  committedMinor: u8,
  committedMajor: u8,
  launchTcb: u64,
  launchMitVector: u64,
  currentMitVector: u64,
  signature: bytes(0x200),
});

function sample(): AttestationReport {
  return fc.sample(reportArb, { numRuns: 1, seed: 42 })[0]!;
}

describe('ATTESTATION_REPORT layout (firmware-rmp.md §F)', () => {
  it('has the exact offsets of §F and is 0x4A0 bytes, signed over 0x000-0x29F', () => {
    assert.equal(REPORT_SIZE, 0x4a0);
    assert.equal(REPORT_SIGNED_SIZE, 0x2a0);
    assert.deepEqual(
      [
        ReportOffset.POLICY,
        ReportOffset.VMPL,
        ReportOffset.CURRENT_TCB,
        ReportOffset.PLATFORM_INFO,
        ReportOffset.REPORT_DATA,
        ReportOffset.MEASUREMENT,
        ReportOffset.HOST_DATA,
        ReportOffset.ID_KEY_DIGEST,
        ReportOffset.AUTHOR_KEY_DIGEST,
        ReportOffset.REPORT_ID,
        ReportOffset.REPORT_ID_MA,
        ReportOffset.REPORTED_TCB,
        ReportOffset.CHIP_ID,
        ReportOffset.COMMITTED_TCB,
        ReportOffset.LAUNCH_TCB,
        ReportOffset.SIGNATURE,
      ],
      [0x8, 0x30, 0x38, 0x40, 0x50, 0x90, 0xc0, 0xe0, 0x110, 0x140, 0x160, 0x180, 0x1a0, 0x1e0, 0x1f0, 0x2a0],
    );
  });

  it('decode(encode(r)) == r for every report (fast-check)', () => {
    fc.assert(
      fc.property(reportArb, (r) => {
        assert.deepEqual(decodeReport(encodeReport(r)), { ...r }); // fc.record objects have a null prototype
      }),
      { numRuns: 200 },
    );
  });

  it('puts each field at its offset, little-endian, with the key-info bits packed (b0 AUTHOR_KEY_EN, b1 MASK_CHIP_KEY, b4:2 SIGNING_KEY)', () => {
    const r = {
      ...sample(),
      policy: 0x0102030405060708n,
      authorKeyEn: true,
      maskChipKey: false,
      signingKey: 7,
    };
    const b = encodeReport(r);
    assert.deepEqual([...b.subarray(0x08, 0x10)], [8, 7, 6, 5, 4, 3, 2, 1]);
    assert.equal(b[0x48], 0b11101);
    assert.deepEqual(b.subarray(0x90, 0xc0), r.measurement);
    assert.deepEqual(b.subarray(0x1a0, 0x1e0), r.chipId);
    assert.equal(b[0x1e8], r.currentBuild);
    assert.equal(b[0x1ee], r.committedMajor);
    assert.deepEqual([...b.subarray(0x18b, 0x1a0)], new Array(0x15).fill(0), 'reserved stays zero');
  });

  it('refuses fields of the wrong size and short buffers with a RangeError naming them', () => {
    assert.throws(
      () => encodeReport({ ...sample(), measurement: new Uint8Array(32) }),
      /MEASUREMENT is 32 bytes, expected 48/,
    );
    assert.throws(() => decodeReport(new Uint8Array(100)), /100 bytes, expected 0x4a0/);
  });
});

describe('simulated VCEK and signatures', () => {
  const seed = new Uint8Array(16).fill(3);

  it('derives CHIP_ID and the VCEK deterministically from the seed and the TCB', () => {
    assert.deepEqual(deriveChipId(seed), deriveChipId(seed));
    assert.equal(deriveChipId(seed).length, 64);
    assert.notDeepEqual(deriveChipId(seed), deriveChipId(new Uint8Array(16).fill(4)));
    const a = deriveVcek(seed, 1n).publicKey.export({ format: 'jwk' });
    assert.deepEqual(deriveVcek(seed, 1n).publicKey.export({ format: 'jwk' }), a);
    assert.notDeepEqual(
      deriveVcek(seed, 2n).publicKey.export({ format: 'jwk' }),
      a,
      'another TCB, another VCEK',
    );
    assert.equal(deriveVcek(seed, 1n).publicKey.asymmetricKeyDetails?.namedCurve, 'secp384r1');
    assert.equal(deriveVcekSeed(seed, 1n).length, 48);
    const id = new ChipIdentity('0303030303030303');
    assert.equal(id.vcek(5n), id.vcek(5n), 'cached');
  });

  it('signs R and S little-endian in 72-byte fields that verify with node:crypto after reversal', () => {
    const { privateKey, publicKey } = deriveVcek(seed, 9n);
    const data = new Uint8Array(REPORT_SIGNED_SIZE).fill(1);
    const sig = signSev(data, privateKey);
    assert.equal(sig.length, 0x200);
    assert.deepEqual(sig.subarray(48, 72), new Uint8Array(24), 'R above 48 bytes is zero');
    assert.deepEqual(sig.subarray(144), new Uint8Array(0x200 - 144), 'reserved stays zero');
    assert.ok(verifySev(data, sig, publicKey));
    const flipped = sig.slice();
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    assert.equal(verifySev(data, flipped, publicKey), false);
    const high = sig.slice();
    high[60] = 1;
    assert.equal(verifySev(data, high, publicKey), false, 'R must fit 48 bytes');
  });

  it('encodes a P-384 public key as curve 2, QX/QY little-endian; rejects other curves and off-curve points', () => {
    const { publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
    const enc = encodeSevPublicKey(publicKey);
    assert.equal(enc.length, 0x404);
    assert.deepEqual([...enc.subarray(0, 4)], [2, 0, 0, 0]);
    const jwk = publicKey.export({ format: 'jwk' });
    assert.deepEqual(Buffer.from(enc.subarray(4, 52)).reverse(), Buffer.from(jwk.x!, 'base64url'));
    assert.deepEqual(decodeSevPublicKey(enc)?.export({ format: 'jwk' }), jwk);
    const bad = enc.slice();
    bad[4] = (bad[4] ?? 0) ^ 1;
    assert.equal(decodeSevPublicKey(bad), null);
    const curve = enc.slice();
    curve[0] = 1;
    assert.equal(decodeSevPublicKey(curve), null);
    const p256 = generateKeyPairSync('ec', { namedCurve: 'P-256' }).publicKey;
    assert.throws(() => encodeSevPublicKey(p256), /not an EC P-384 key/);
  });
});

describe('verifyReport', () => {
  const seed = new Uint8Array(16).fill(5);
  const vcek = deriveVcek(seed, 7n);

  function signed(r: Partial<AttestationReport> = {}): Uint8Array {
    const b = encodeReport({ ...sample(), signatureAlgo: 1, signingKey: SigningKey.VCEK, ...r });
    b.set(signSev(b.subarray(0, REPORT_SIGNED_SIZE), vcek.privateKey), ReportOffset.SIGNATURE);
    return b;
  }

  it('accepts the key as a KeyObject, a private KeyObject, PEM SPKI or DER SPKI', () => {
    const b = signed();
    assert.deepEqual(verifyReport(b, vcek.publicKey), { ok: true });
    assert.deepEqual(verifyReport(b, vcek.privateKey), { ok: true });
    const pem = vcek.publicKey.export({ format: 'pem', type: 'spki' }).toString();
    assert.deepEqual(verifyReport(b, pem), { ok: true });
    const der = new Uint8Array(vcek.publicKey.export({ format: 'der', type: 'spki' }));
    assert.deepEqual(verifyReport(b, der), { ok: true });
    assert.deepEqual(verifyReport(b, createPublicKey(pem)), { ok: true });
  });

  it('names why a report does not verify', () => {
    const b = signed();
    const t = b.slice();
    t[ReportOffset.REPORT_DATA] = (t[ReportOffset.REPORT_DATA] ?? 0) ^ 1;
    assert.equal(verifyReport(t, vcek.publicKey).ok, false);
    assert.deepEqual((verifyReport(t, vcek.publicKey) as { reason: string }).reason, 'signature');
    assert.equal((verifyReport(b.subarray(0, 100), vcek.publicKey) as { reason: string }).reason, 'length');
    assert.equal(
      (verifyReport(signed({ signatureAlgo: 2 }), vcek.publicKey) as { reason: string }).reason,
      'algorithm',
    );
    assert.equal(
      (verifyReport(signed({ signingKey: 7 }), vcek.publicKey) as { reason: string }).reason,
      'unsigned',
    );
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey;
    const k = verifyReport(b, rsa) as { reason: string; message: string };
    assert.equal(k.reason, 'key');
    assert.match(k.message, /expected an EC P-384/);
    const other = deriveVcek(seed, 8n).publicKey;
    assert.equal((verifyReport(b, other) as { reason: string }).reason, 'signature');
  });
});
