import assert from 'node:assert/strict';
import { createDecipheriv } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  decodeGuestMessageHeader,
  decodeKeyRequest,
  decodeReportRequest,
  encodeKeyRequest,
  encodeMixData,
  encodeReportRequest,
  GUEST_MSG_HDR_SIZE,
  KEY_REQ_SIZE,
  MIX_DATA_SIZE,
  MsgType,
  nistKdf,
  openGuestMessage,
  REPORT_REQ_SIZE,
  sealGuestMessage,
} from '../../psp-firmware/index.js';

const key = new Uint8Array(32).map((_, i) => i + 1);

describe('guest message header and AES-256-GCM (Linux snp_guest_msg_hdr)', () => {
  it('lays the header out as Linux does: tag, seqno, algo 1, hdr v1 0x60, type, version, size, vmpck', () => {
    const m = sealGuestMessage({
      key,
      seqno: 0x0102n,
      msgType: MsgType.KEY_REQ,
      vmpck: 2,
      payload: new Uint8Array(32),
    });
    assert.equal(m.length, 0x60 + 32);
    const v = new DataView(m.buffer);
    assert.equal(v.getBigUint64(0x20, true), 0x0102n);
    assert.deepEqual(
      [m[0x30], m[0x31], v.getUint16(0x32, true), m[0x34], m[0x35], v.getUint16(0x36, true), m[0x3c]],
      [1, 1, 0x60, 3, 1, 32, 2],
    );
    assert.deepEqual(m.subarray(0x10, 0x20), new Uint8Array(16), 'AUTHTAG is 32 bytes, GCM fills 16');
    assert.deepEqual(m.subarray(0x3d, 0x60), new Uint8Array(0x23));
    const h = decodeGuestMessageHeader(m);
    assert.equal(h.msgSeqno, 0x0102n);
    assert.equal(h.msgVmpck, 2);
  });

  it('encrypts with IV = MSG_SEQNO little-endian || 4 zero bytes and AAD = header bytes 0x30..0x5F', () => {
    const payload = new Uint8Array(48).fill(0xab);
    const m = sealGuestMessage({ key, seqno: 7n, msgType: MsgType.REPORT_REQ, vmpck: 0, payload });
    const iv = Buffer.alloc(12);
    iv[0] = 7;
    const d = createDecipheriv('aes-256-gcm', key, iv);
    d.setAAD(m.subarray(0x30, 0x60));
    d.setAuthTag(m.subarray(0, 16));
    assert.deepEqual(new Uint8Array(Buffer.concat([d.update(m.subarray(0x60)), d.final()])), payload);
  });

  it('open(seal(x)) == x, and any changed byte of tag, AAD or ciphertext is refused (fast-check)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 16, maxLength: 256 }),
        fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
        fc.integer({ min: 0, max: 3 }),
        fc.nat(),
        (payload, seqno, vmpck, where) => {
          const m = sealGuestMessage({ key, seqno, msgType: MsgType.REPORT_REQ, vmpck, payload });
          assert.deepEqual(openGuestMessage(m, key), payload);
          const protectedBytes = [
            ...Array(16).keys(),
            ...Array.from({ length: m.length - 0x30 }, (_, i) => 0x30 + i),
          ];
          const at = protectedBytes[where % protectedBytes.length]!;
          if (at === 0x36 || at === 0x37) return; // MSG_SIZE changes the length read (still refused or short)
          const t = m.slice();
          t[at] = (t[at] ?? 0) ^ 0x80;
          assert.equal(openGuestMessage(t, key), null, `byte 0x${at.toString(16)}`);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('the reserved header bytes 0x28..0x2F are outside the AAD (the firmware does not authenticate them)', () => {
    const m = sealGuestMessage({
      key,
      seqno: 1n,
      msgType: MsgType.REPORT_REQ,
      vmpck: 0,
      payload: new Uint8Array(16),
    });
    m[0x28] = 0xff;
    assert.notEqual(openGuestMessage(m, key), null);
    assert.equal(openGuestMessage(m, new Uint8Array(32)), null, 'wrong VMPCK');
  });

  it('refuses bad inputs with RangeErrors naming them', () => {
    assert.throws(
      () =>
        sealGuestMessage({
          key: new Uint8Array(16),
          seqno: 1n,
          msgType: 5,
          vmpck: 0,
          payload: new Uint8Array(16),
        }),
      /VMPCK is 16 bytes/,
    );
    assert.throws(() => decodeGuestMessageHeader(new Uint8Array(10)), /header needs 0x60/);
    assert.equal(GUEST_MSG_HDR_SIZE, 0x60);
  });
});

describe('MSG_REPORT_REQ / MSG_KEY_REQ payloads [FW sev_rmp.h]', () => {
  it('MSG_REPORT_REQ: REPORT_DATA[64], VMPL @0x40, KEY_SEL bits 1:0 @0x44, 0x60 bytes', () => {
    const b = encodeReportRequest({ reportData: new Uint8Array(64).fill(9), vmpl: 2, keySel: 1 });
    assert.equal(b.length, REPORT_REQ_SIZE);
    assert.deepEqual([b[0x40], b[0x44]], [2, 1]);
    const r = decodeReportRequest(b);
    assert.deepEqual([r.vmpl, r.keySel, r.reservedBits, r.reservedZero], [2, 1, 0, true]);
    b[0x44] = 0x4;
    assert.equal(decodeReportRequest(b).reservedBits, 1);
  });

  it('MSG_KEY_REQ: ROOT_KEY_SELECT b0, KEY_SEL b2:1, GUEST_FIELD_SELECT @8, VMPL @0x10, SVN @0x14, TCB @0x18', () => {
    const b = encodeKeyRequest({
      rootKeySelect: 1,
      keySel: 2,
      guestFieldSelect: 0x21n,
      vmpl: 3,
      guestSvn: 4,
      tcbVersion: 5n,
    });
    assert.equal(b.length, KEY_REQ_SIZE);
    assert.equal(b[0], 0b101);
    assert.deepEqual(decodeKeyRequest(b), {
      rootKeySelect: 1,
      keySel: 2,
      reserved: 0,
      reserved2: 0,
      guestFieldSelect: 0x21n,
      vmpl: 3,
      guestSvn: 4,
      tcbVersion: 5n,
    });
  });

  it('mix data is the packed 0xA8-byte snp_mix_data_t; the KDF is SP 800-108 counter mode over HMAC-SHA256', () => {
    const mix = encodeMixData({
      rootKeySelect: 1,
      idblockKeySelect: 2,
      gfs: 0x3fn,
      vmpl: 1,
      guestSvn: 2,
      tcbVersion: 3n,
      guestPolicy: 4n,
      imageId: new Uint8Array(16).fill(5),
      familyId: new Uint8Array(16).fill(6),
      measurement: new Uint8Array(48).fill(7),
      hostData: new Uint8Array(32).fill(8),
      idblockKey: new Uint8Array(48).fill(9),
    });
    assert.equal(mix.length, MIX_DATA_SIZE);
    assert.deepEqual(
      [
        mix[0],
        mix[8],
        mix[0x10],
        mix[0x14],
        mix[0x18],
        mix[0x20],
        mix[0x28],
        mix[0x38],
        mix[0x48],
        mix[0x67],
        mix[0x68],
        mix[0x88],
        mix[0xa7],
      ],
      [5, 0x3f, 1, 2, 3, 4, 5, 6, 7, 7, 8, 9, 9],
    );
    const k32 = nistKdf(key, 'gmsg-keyreq', mix, 32);
    const k64 = nistKdf(key, 'gmsg-keyreq', mix, 64);
    assert.equal(k32.length, 32);
    assert.notDeepEqual(k64.subarray(0, 32), k32, 'L (output bits) is part of every block');
    assert.notDeepEqual(
      nistKdf(
        key,
        'gmsg-keyreq',
        mix.map((x, i) => (i === 0 ? x ^ 1 : x)),
        32,
      ),
      k32,
    );
  });
});
