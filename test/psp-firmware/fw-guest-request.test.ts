import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { describe, it } from 'node:test';
import {
  decodeGuestMessageHeader,
  decodeKeyResponse,
  decodeReport,
  decodeReportResponse,
  encodeKeyRequest,
  encodeReportRequest,
  encodeTcb,
  encodeThreeAddr,
  GENOA_FIRMWARE,
  GuestFieldSelect,
  KeySel,
  MsgType,
  openGuestMessage,
  parsePlatformProfile,
  REPORT_RSP_SIZE,
  SevStatus,
  SigningKey,
  SnpCommandId,
  sealGuestMessage,
  verifyReport,
} from '../../psp-firmware/index.js';
import {
  bareSystem,
  expectStatus,
  GCTX,
  initSystem,
  makePreGuest,
  markFirmware,
  POLICY,
  runningGuest,
  type Sys,
  startGuest,
} from './fw-fixture.js';

const REQ = 0x30_0000;
const RSP = 0x31_0000;

interface Exchange {
  status: number;
  payload: Uint8Array | null;
  header: ReturnType<typeof decodeGuestMessageHeader> | null;
}

/** The guest side: seal a request under VMPCKn, run SNP_GUEST_REQUEST, open the response. */
function exchange(
  s: Sys,
  opts: { vmpck?: number; seqno: bigint; type: number; payload: Uint8Array; version?: number; gctx?: number },
): Exchange {
  const vmpck = opts.vmpck ?? 0;
  const key = s.fw.guestContext(opts.gctx ?? GCTX)!.vmpck[vmpck as 0]!;
  const msg = sealGuestMessage({
    key,
    seqno: opts.seqno,
    msgType: opts.type,
    msgVersion: opts.version ?? 1,
    vmpck,
    payload: opts.payload,
  });
  s.platform.memory.write(REQ, msg);
  const status = s.fw.guestRequest(opts.gctx ?? GCTX, REQ, RSP);
  if (status !== SevStatus.SUCCESS) return { status, payload: null, header: null };
  const raw = s.platform.memory.read(RSP, 0x1000);
  const header = decodeGuestMessageHeader(raw);
  return { status, payload: openGuestMessage(raw, key), header };
}

function guest(policy = POLICY): Sys {
  const s = initSystem();
  runningGuest(s, { policy });
  markFirmware(s.platform, RSP);
  return s;
}

function report(s: Sys, seqno: bigint, req: Parameters<typeof encodeReportRequest>[0], vmpck = 0) {
  const x = exchange(s, { seqno, type: MsgType.REPORT_REQ, payload: encodeReportRequest(req), vmpck });
  expectStatus(s.fw, x.status, SevStatus.SUCCESS);
  assert.ok(x.payload);
  return decodeReportResponse(x.payload);
}

describe('SNP_GUEST_REQUEST MSG_REPORT_REQ', () => {
  it('answers an authenticated MSG_REPORT_RSP with a report signed by the VCEK of REPORTED_TCB', () => {
    const s = guest();
    const data = new Uint8Array(64).map((_, i) => i);
    const x = exchange(s, {
      seqno: 1n,
      type: MsgType.REPORT_REQ,
      payload: encodeReportRequest({ reportData: data }),
    });
    expectStatus(s.fw, x.status, SevStatus.SUCCESS);
    assert.equal(x.header?.msgType, MsgType.REPORT_RSP);
    assert.equal(x.header?.msgSeqno, 2n);
    assert.equal(x.header?.msgSize, REPORT_RSP_SIZE);
    assert.equal(x.header?.hdrSize, 0x60);
    const r = decodeReportResponse(x.payload!);
    assert.equal(r.status, 0);
    assert.equal(r.reportSize, 0x4a0);
    const rep = decodeReport(r.report);
    const g = s.fw.guestContext(GCTX)!;
    const tcb = encodeTcb(GENOA_FIRMWARE.committedTcb, 'milan-genoa');
    assert.equal(rep.version, 2);
    assert.equal(rep.policy, POLICY);
    assert.equal(rep.vmpl, 0);
    assert.equal(rep.signatureAlgo, 1);
    assert.deepEqual(rep.reportData, data);
    assert.deepEqual(rep.measurement, g.measurement);
    assert.deepEqual(rep.reportId, g.reportId);
    assert.deepEqual(rep.reportIdMa, new Uint8Array(32).fill(0xff));
    assert.deepEqual(rep.chipId, s.fw.identity.chipId);
    assert.equal(rep.reportedTcb, tcb);
    assert.equal(rep.committedTcb, tcb);
    assert.equal(rep.launchTcb, tcb);
    assert.deepEqual([rep.currentMajor, rep.currentMinor, rep.currentBuild], [1, 55, 25]);
    assert.equal(rep.platformInfo, 1n, 'SMT_EN');
    assert.equal(rep.signingKey, SigningKey.VCEK);
    assert.deepEqual(verifyReport(r.report, s.fw.identity.vcek(tcb).publicKey), { ok: true });
  });

  it('after SNP_CONFIG lowers REPORTED_TCB the report verifies only under that TCB’s VCEK', () => {
    const s = guest();
    const lower = encodeTcb({ ...GENOA_FIRMWARE.committedTcb, snp: 2 }, 'milan-genoa');
    s.fw.config({ reportedTcb: lower });
    const r = report(s, 1n, {});
    assert.equal(decodeReport(r.report).reportedTcb, lower);
    assert.equal(verifyReport(r.report, s.fw.identity.vcek(lower).publicKey).ok, true);
    const old = encodeTcb(GENOA_FIRMWARE.committedTcb, 'milan-genoa');
    assert.equal(verifyReport(r.report, s.fw.identity.vcek(old).publicKey).ok, false);
  });

  it('MaskChipKey: SIGNING_KEY 7 and no signature; MaskChipId: CHIP_ID zero', () => {
    const s = guest();
    s.fw.config({ maskChipKey: true, maskChipId: true });
    const r = report(s, 1n, {});
    const rep = decodeReport(r.report);
    assert.equal(rep.signingKey, SigningKey.NONE);
    assert.equal(rep.maskChipKey, true);
    assert.deepEqual(rep.signature, new Uint8Array(0x200));
    assert.deepEqual(rep.chipId, new Uint8Array(64));
    assert.equal(verifyReport(r.report, s.fw.identity.vcek(rep.reportedTcb).publicKey).ok, false);
  });

  it('message-level statuses: reserved -> INVALID_PARAM, key_sel 3 -> INVALID_KEY, VMPL below VMPCK -> INVALID_PARAM', () => {
    const s = guest();
    const reserved = encodeReportRequest({});
    reserved[0x50] = 1;
    let x = exchange(s, { seqno: 1n, type: MsgType.REPORT_REQ, payload: reserved });
    assert.equal(decodeReportResponse(x.payload!).status, SevStatus.INVALID_PARAM);
    assert.equal(report(s, 3n, { keySel: KeySel.RESERVED }).status, SevStatus.INVALID_KEY);
    assert.equal(
      report(s, 5n, { keySel: KeySel.VLEK_ONLY }).status,
      SevStatus.INVALID_KEY,
      'no VLEK installed',
    );
    x = exchange(s, {
      vmpck: 2,
      seqno: 1n,
      type: MsgType.REPORT_REQ,
      payload: encodeReportRequest({ vmpl: 1 }),
    });
    assert.equal(decodeReportResponse(x.payload!).status, SevStatus.INVALID_PARAM);
    const ok = report(s, 3n, { vmpl: 3 }, 2);
    assert.equal(ok.status, 0);
    assert.equal(decodeReport(ok.report).vmpl, 3);
  });

  it('VCEK disabled at LAUNCH_FINISH: VCEK_ONLY and VLEK_VCEK both INVALID_KEY', () => {
    const s = initSystem();
    startGuest(s, { asid: 1 });
    makePreGuest(s.platform, 0x20_0000, 0, 1);
    s.fw.launchUpdate({ gctxPaddr: GCTX, address: 0x20_0000, pageType: 3 });
    s.fw.launchFinish({ gctxPaddr: GCTX, vcekDisabled: true });
    markFirmware(s.platform, RSP);
    assert.equal(report(s, 1n, { keySel: KeySel.VCEK_ONLY }).status, SevStatus.INVALID_KEY);
    assert.equal(report(s, 3n, { keySel: KeySel.VLEK_VCEK }).status, SevStatus.INVALID_KEY);
  });
});

describe('SNP_GUEST_REQUEST message protection', () => {
  it('sequence numbers: request = count + 1, the response takes the next, counters per VMPCK', () => {
    const s = guest();
    report(s, 1n, {});
    expectStatus(
      s.fw,
      exchange(s, { seqno: 1n, type: MsgType.REPORT_REQ, payload: encodeReportRequest({}) }).status,
      SevStatus.AEAD_OFLOW,
      'replay',
    );
    expectStatus(
      s.fw,
      exchange(s, { seqno: 5n, type: MsgType.REPORT_REQ, payload: encodeReportRequest({}) }).status,
      SevStatus.AEAD_OFLOW,
      'skip',
    );
    const x = exchange(s, { seqno: 3n, type: MsgType.REPORT_REQ, payload: encodeReportRequest({}) });
    assert.equal(x.header?.msgSeqno, 4n);
    assert.equal(
      exchange(s, {
        vmpck: 1,
        seqno: 1n,
        type: MsgType.REPORT_REQ,
        payload: encodeReportRequest({ vmpl: 1 }),
      }).status,
      0,
    );
    assert.deepEqual(s.fw.guestContext(GCTX)!.msgCount, [4n, 2n, 0n, 0n]);
  });

  it('a message that does not authenticate -> BAD_MEASUREMENT (wrong key, tampered AAD or payload)', () => {
    const s = guest();
    const msg = sealGuestMessage({
      key: new Uint8Array(32).fill(1),
      seqno: 1n,
      msgType: MsgType.REPORT_REQ,
      vmpck: 0,
      payload: encodeReportRequest({}),
    });
    s.platform.memory.write(REQ, msg);
    expectStatus(s.fw, s.fw.guestRequest(GCTX, REQ, RSP), SevStatus.BAD_MEASUREMENT);
    const good = sealGuestMessage({
      key: s.fw.guestContext(GCTX)!.vmpck[0],
      seqno: 1n,
      msgType: MsgType.REPORT_REQ,
      vmpck: 0,
      payload: encodeReportRequest({}),
    });
    for (const at of [0x3f, 0x70]) {
      const t = good.slice();
      t[at] = (t[at] ?? 0) ^ 1;
      s.platform.memory.write(REQ, t);
      expectStatus(
        s.fw,
        s.fw.guestRequest(GCTX, REQ, RSP),
        SevStatus.BAD_MEASUREMENT,
        `byte 0x${at.toString(16)}`,
      );
    }
    assert.deepEqual(
      s.fw.guestContext(GCTX)!.msgCount,
      [0n, 0n, 0n, 0n],
      'failures do not advance the counter',
    );
  });

  it('header checks -> INVALID_PARAM: version, size, algo, MSG_SIZE, VMPCK index, MSG_VERSION, type', () => {
    const s = guest();
    const key = s.fw.guestContext(GCTX)!.vmpck[0];
    const base = sealGuestMessage({
      key,
      seqno: 1n,
      msgType: MsgType.REPORT_REQ,
      vmpck: 0,
      payload: encodeReportRequest({}),
    });
    const mutations: [string, (m: Uint8Array) => void][] = [
      ['HDR_VERSION 2', (m) => (m[0x31] = 2)],
      ['HDR_SIZE 0x70', (m) => (m[0x32] = 0x70)],
      ['ALGO 2', (m) => (m[0x30] = 2)],
      ['MSG_SIZE 0', (m) => m.fill(0, 0x36, 0x38)],
      ['MSG_SIZE not a multiple of 16', (m) => (m[0x36] = 0x58)],
      ['MSG_VMPCK 4', (m) => (m[0x3c] = 4)],
    ];
    for (const [what, mut] of mutations) {
      const m = base.slice();
      mut(m);
      s.platform.memory.write(REQ, m);
      expectStatus(s.fw, s.fw.guestRequest(GCTX, REQ, RSP), SevStatus.INVALID_PARAM, what);
    }
    const v0 = exchange(s, {
      seqno: 1n,
      type: MsgType.REPORT_REQ,
      payload: encodeReportRequest({}),
      version: 0,
    });
    expectStatus(s.fw, v0.status, SevStatus.INVALID_PARAM, 'MSG_VERSION 0');
    const v2 = exchange(s, {
      seqno: 1n,
      type: MsgType.REPORT_REQ,
      payload: encodeReportRequest({}),
      version: 2,
    });
    expectStatus(s.fw, v2.status, SevStatus.INVALID_PARAM, 'MSG_VERSION 2');
    const t = exchange(s, { seqno: 1n, type: 0x20, payload: new Uint8Array(16) });
    expectStatus(s.fw, t.status, SevStatus.INVALID_PARAM, 'unknown MSG_TYPE');
    const e = exchange(s, { seqno: 1n, type: MsgType.EXPORT_REQ, payload: new Uint8Array(16) });
    expectStatus(s.fw, e.status, SevStatus.UNSUPPORTED, 'migration messages are not modelled');
  });

  it('page rules: header or payload crossing the page, response that would cross its page -> INVALID_PARAM', () => {
    const s = guest();
    const key = s.fw.guestContext(GCTX)!.vmpck[0];
    const msg = sealGuestMessage({
      key,
      seqno: 1n,
      msgType: MsgType.REPORT_REQ,
      vmpck: 0,
      payload: encodeReportRequest({}),
    });
    s.platform.memory.write(REQ + 0xfa8, msg);
    expectStatus(s.fw, s.fw.guestRequest(GCTX, REQ + 0xfa8, RSP), SevStatus.INVALID_PARAM, 'header crosses');
    s.platform.memory.write(REQ + 0xf80, msg);
    expectStatus(s.fw, s.fw.guestRequest(GCTX, REQ + 0xf80, RSP), SevStatus.INVALID_PARAM, 'payload crosses');
    s.platform.memory.write(REQ, msg);
    expectStatus(
      s.fw,
      s.fw.guestRequest(GCTX, REQ, RSP + 0xc00),
      SevStatus.INVALID_PARAM,
      'response would cross',
    );
    assert.equal(s.fw.guestContext(GCTX)!.msgCount[0], 0n);
  });

  it('mailbox statuses: INVALID_PARAM, INVALID_PLATFORM_STATE, INVALID_GUEST, INVALID_PAGE_STATE, INVALID_PAGE_SIZE, INVALID_GUEST_STATE, INVALID_ADDRESS', () => {
    const s = initSystem();
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_GUEST_REQUEST, encodeThreeAddr(GCTX + 1, REQ, RSP)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.guestRequest(GCTX, REQ, RSP), SevStatus.INVALID_GUEST);
    startGuest(s, { asid: 1 });
    expectStatus(
      s.fw,
      s.fw.guestRequest(GCTX, REQ, RSP),
      SevStatus.INVALID_PAGE_STATE,
      'response Hypervisor',
    );
    markFirmware(s.platform, RSP);
    makePreGuest(s.platform, 0x40_0000, 0, 1, 1);
    expectStatus(
      s.fw,
      s.fw.guestRequest(GCTX, 0x40_0000, RSP),
      SevStatus.INVALID_PAGE_SIZE,
      '2 MB request page',
    );
    expectStatus(s.fw, s.fw.guestRequest(GCTX, REQ, RSP), SevStatus.INVALID_GUEST_STATE, 'guest in LAUNCH');
    s.fw.launchFinish({ gctxPaddr: GCTX });
    expectStatus(
      s.fw,
      s.fw.guestRequest(GCTX, 1 << 30, RSP),
      SevStatus.INVALID_ADDRESS,
      'request outside memory',
    );
    expectStatus(
      bareSystem().fw,
      bareSystem().fw.guestRequest(GCTX, REQ, RSP),
      SevStatus.INVALID_PLATFORM_STATE,
    );
  });
});

describe('SNP_GUEST_REQUEST MSG_KEY_REQ', () => {
  /** mix_data per [FW snp_mix_data_t], built independently of the model. */
  function expectedKey(
    root: Uint8Array,
    f: {
      rks: number;
      ids: number;
      gfs: bigint;
      vmpl: number;
      svn: number;
      tcb: bigint;
      policy: bigint;
      imageId: Uint8Array;
      familyId: Uint8Array;
      meas: Uint8Array;
      host: Uint8Array;
      idKey: Uint8Array;
    },
  ) {
    const mix = Buffer.alloc(0xa8);
    mix.writeUInt32LE(f.rks | (f.ids << 1), 0);
    mix.writeBigUInt64LE(f.gfs, 8);
    mix.writeUInt32LE(f.vmpl, 0x10);
    mix.writeUInt32LE(f.svn, 0x14);
    mix.writeBigUInt64LE(f.tcb, 0x18);
    mix.writeBigUInt64LE(f.policy, 0x20);
    mix.set(f.imageId, 0x28);
    mix.set(f.familyId, 0x38);
    mix.set(f.meas.subarray(0, 32), 0x48);
    mix.set(f.host, 0x68);
    mix.set(f.idKey.subarray(0, 32), 0x88);
    const i = Buffer.from([1, 0, 0, 0]);
    const l = Buffer.from([0, 1, 0, 0]); // 256 bits
    return new Uint8Array(
      createHmac('sha256', root)
        .update(i)
        .update('gmsg-keyreq')
        .update(Buffer.of(0))
        .update(mix)
        .update(l)
        .digest(),
    );
  }

  function key(s: Sys, seqno: bigint, req: Parameters<typeof encodeKeyRequest>[0], vmpck = 0) {
    const x = exchange(s, { seqno, type: MsgType.KEY_REQ, payload: encodeKeyRequest(req), vmpck });
    expectStatus(s.fw, x.status, SevStatus.SUCCESS);
    assert.equal(x.header?.msgType, MsgType.KEY_RSP);
    return decodeKeyResponse(x.payload!);
  }

  it('derives the NIST SP 800-108 (HMAC-SHA256) key over the VCEK root and the mix data', () => {
    const s = guest();
    const g = s.fw.guestContext(GCTX)!;
    const tcb = encodeTcb(GENOA_FIRMWARE.committedTcb, 'milan-genoa');
    const gfs = GuestFieldSelect.GUEST_POLICY | GuestFieldSelect.MEASUREMENT;
    const r = key(s, 1n, { guestFieldSelect: gfs, vmpl: 1 });
    assert.equal(r.status, 0);
    const zero16 = new Uint8Array(16);
    const want = expectedKey(s.fw.identity.vcekSeed(tcb), {
      rks: 0,
      ids: 0,
      gfs,
      vmpl: 1,
      svn: 0,
      tcb: 0n,
      policy: POLICY,
      imageId: zero16,
      familyId: zero16,
      meas: g.measurement,
      host: g.hostData,
      idKey: new Uint8Array(32),
    });
    assert.deepEqual(r.derivedKey, want);
    const vmrk = key(s, 3n, { rootKeySelect: 1 });
    assert.notDeepEqual(vmrk.derivedKey, r.derivedKey);
    assert.deepEqual(
      vmrk.derivedKey,
      expectedKey(g.vmrk, {
        rks: 1,
        ids: 0,
        gfs: 0n,
        vmpl: 0,
        svn: 0,
        tcb: 0n,
        policy: 0n,
        imageId: zero16,
        familyId: zero16,
        meas: new Uint8Array(32),
        host: g.hostData,
        idKey: new Uint8Array(32),
      }),
    );
  });

  it('a lower TCB in the request re-derives from that TCB; a higher one -> INVALID_PARAM', () => {
    const s = guest();
    const lower = encodeTcb({ ...GENOA_FIRMWARE.committedTcb, snp: 1 }, 'milan-genoa');
    const a = key(s, 1n, { guestFieldSelect: GuestFieldSelect.TCB_VERSION, tcbVersion: lower });
    const b = key(s, 3n, {});
    assert.equal(a.status, 0);
    assert.notDeepEqual(a.derivedKey, b.derivedKey);
    const higher = encodeTcb({ ...GENOA_FIRMWARE.committedTcb, snp: 0xff }, 'milan-genoa');
    assert.equal(
      key(s, 5n, { guestFieldSelect: GuestFieldSelect.TCB_VERSION, tcbVersion: higher }).status,
      SevStatus.INVALID_PARAM,
    );
    assert.equal(
      key(s, 7n, { guestFieldSelect: GuestFieldSelect.TCB_VERSION, tcbVersion: lower | (1n << 16n) }).status,
      SevStatus.INVALID_PARAM,
      'reserved TCB byte',
    );
  });

  it('Turin TCB layout: an FMC SVN above the committed one is refused like any other SVN', () => {
    const committedTcb = { fmc: 2, bootLoader: 3, tee: 0, snp: 5, microcode: 0x40 };
    const p = parsePlatformProfile({
      firmware: { tcbLayout: 'turin', currentTcb: committedTcb, committedTcb },
    });
    assert.ok(p.ok);
    const s = initSystem(p.profile);
    runningGuest(s);
    markFirmware(s.platform, RSP);
    const tcb = (fmc: number) => encodeTcb({ ...committedTcb, fmc }, 'turin');
    const sel = GuestFieldSelect.TCB_VERSION;
    assert.equal(key(s, 1n, { guestFieldSelect: sel, tcbVersion: tcb(1) }).status, 0, 'lower FMC');
    assert.equal(key(s, 3n, { guestFieldSelect: sel, tcbVersion: tcb(2) }).status, 0, 'committed TCB');
    assert.equal(
      key(s, 5n, { guestFieldSelect: sel, tcbVersion: tcb(3) }).status,
      SevStatus.INVALID_PARAM,
      'FMC above the committed TCB',
    );
  });

  it('message-level statuses: INVALID_PARAM (reserved, GFS bit 6, VMPL, SVN), INVALID_KEY (key_sel, MaskChipKey)', () => {
    const s = guest();
    const reserved = encodeKeyRequest({});
    reserved[4] = 1;
    const x = exchange(s, { seqno: 1n, type: MsgType.KEY_REQ, payload: reserved });
    assert.equal(decodeKeyResponse(x.payload!).status, SevStatus.INVALID_PARAM);
    assert.equal(key(s, 3n, { guestFieldSelect: 1n << 6n }).status, SevStatus.INVALID_PARAM);
    assert.equal(
      key(s, 5n, { guestFieldSelect: GuestFieldSelect.GUEST_SVN, guestSvn: 1 }).status,
      SevStatus.INVALID_PARAM,
      'SVN above the ID block (0)',
    );
    assert.equal(key(s, 7n, { keySel: 3 }).status, SevStatus.INVALID_KEY);
    assert.equal(key(s, 1n, { vmpl: 0 }, 1).status, SevStatus.INVALID_PARAM, 'VMPL 0 with VMPCK1');
    s.fw.config({ maskChipKey: true });
    assert.equal(key(s, 9n, {}).status, SevStatus.INVALID_KEY);
    const failed = key(s, 11n, { rootKeySelect: 1 });
    assert.equal(failed.status, 0, 'the VMRK is not a chip key');
  });
});

describe('SNP_GUEST_REQUEST MSG_TSC_INFO_REQ', () => {
  it('returns GUEST_TSC_SCALE for the desired frequency, the offset and TSC_FACTOR', () => {
    const s = initSystem();
    markFirmware(s.platform, GCTX);
    s.fw.gctxCreate(GCTX);
    s.fw.launchStart({ gctxPaddr: GCTX, policy: POLICY, desiredTscKhz: 99800 * 3 });
    s.fw.activate(GCTX, 1);
    s.fw.launchFinish({ gctxPaddr: GCTX });
    markFirmware(s.platform, RSP);
    const x = exchange(s, { seqno: 1n, type: MsgType.TSC_INFO_REQ, payload: new Uint8Array(0x80) });
    expectStatus(s.fw, x.status, SevStatus.SUCCESS);
    const v = new DataView(x.payload!.buffer);
    assert.equal(v.getUint32(0, true), 0);
    assert.equal(v.getBigUint64(8, true), 3n << 32n);
    assert.equal(v.getUint32(0x18, true), 200);
    const bad = new Uint8Array(0x80);
    bad[0x7f] = 1;
    const y = exchange(s, { seqno: 3n, type: MsgType.TSC_INFO_REQ, payload: bad });
    assert.equal(new DataView(y.payload!.buffer).getUint32(0, true), SevStatus.INVALID_PARAM);
  });
});
