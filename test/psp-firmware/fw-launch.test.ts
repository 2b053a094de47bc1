import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  buildIdAuth,
  encodeIdBlock,
  encodeLaunchFinish,
  encodeLaunchStart,
  encodeLaunchUpdate,
  encodeSevPublicKey,
  GENOA_FIRMWARE,
  IdAuthOffset,
  keyDigest,
  PageState,
  parsePlatformProfile,
  SecretsOffset,
  SevStatus,
  SnpCommandId,
  SnpGuestState,
  SnpPageType,
} from '../../psp-firmware/index.js';
import {
  bareSystem,
  expectStatus,
  GCTX,
  initSystem,
  makePreGuest,
  markFirmware,
  POLICY,
  type Sys,
  startGuest,
} from './fw-fixture.js';

const PAGE = 0x20_0000;
const sha384 = (b: Uint8Array) => new Uint8Array(createHash('sha384').update(b).digest());

/** PAGE_INFO in the firmware's layout (firmware-rmp.md §E.1), built independently of the model. */
function pageInfo(
  ld: Uint8Array,
  contents: Uint8Array | null,
  type: number,
  gpa: number,
  v = [0, 0, 0],
  imi = false,
) {
  const pi = new Uint8Array(0x70);
  const dv = new DataView(pi.buffer);
  pi.set(ld, 0);
  if (contents) pi.set(contents, 0x30);
  dv.setUint16(0x60, 0x70, true);
  pi[0x62] = type;
  pi[0x63] = imi ? 1 : 0;
  pi[0x65] = v[0]!;
  pi[0x66] = v[1]!;
  pi[0x67] = v[2]!;
  dv.setBigUint64(0x68, BigInt(gpa), true);
  return sha384(pi);
}

function u32(b: Uint8Array, off: number): number {
  return new DataView(b.buffer, b.byteOffset).getUint32(off, true);
}

function update(s: Sys, pageType: number, extra: Partial<Parameters<Sys['fw']['launchUpdate']>[0]> = {}) {
  return s.fw.launchUpdate({ gctxPaddr: GCTX, address: PAGE, pageType, ...extra });
}

describe('SNP_LAUNCH_START', () => {
  it('INIT -> LAUNCH with fresh VMPCKs and REPORT_ID_MA all 0xFF (no migration agent)', () => {
    const s = initSystem();
    startGuest(s);
    const g = s.fw.guestContext(GCTX)!;
    assert.equal(g.snpState, SnpGuestState.LAUNCH);
    assert.equal(g.policy, POLICY);
    assert.deepEqual(g.reportIdMa, new Uint8Array(32).fill(0xff));
    const keys = g.vmpck.map((k) => Buffer.from(k).toString('hex'));
    assert.equal(new Set(keys).size, 4, 'four distinct VMPCKs');
    assert.ok(!keys.includes('00'.repeat(32)));
  });

  it('reserved fields, platform state, gctx and guest state come before the policy', () => {
    const s = initSystem();
    const withFlags = encodeLaunchStart({ gctxPaddr: GCTX, policy: POLICY });
    withFlags[0x18] = 0x4;
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_LAUNCH_START, withFlags),
      SevStatus.INVALID_PARAM,
      'rsvd flag',
    );
    expectStatus(
      s.fw,
      s.fw.launchStart({ gctxPaddr: GCTX, policy: POLICY, maGctxPaddr: 0x123 }),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.launchStart({ gctxPaddr: GCTX, policy: 0n }), SevStatus.INVALID_GUEST);
    startGuest(s);
    expectStatus(s.fw, s.fw.launchStart({ gctxPaddr: GCTX, policy: 0n }), SevStatus.INVALID_GUEST_STATE);
    const b = bareSystem();
    expectStatus(
      b.fw,
      b.fw.launchStart({ gctxPaddr: GCTX, policy: POLICY }),
      SevStatus.INVALID_PLATFORM_STATE,
    );
  });

  it('policy checks (firmware-rmp.md §E.5): POLICY_FAILURE exactly when a rule is broken', () => {
    const s = initSystem();
    markFirmware(s.platform, GCTX);
    const smt = GENOA_FIRMWARE.smtEnabled;
    const failing = (p: bigint) =>
      (p & (1n << 17n)) === 0n ||
      ((p & (1n << 16n)) === 0n && smt) ||
      ((p >> 8n) & 0xffn) > 1n ||
      (((p >> 8n) & 0xffn) === 1n && (p & 0xffn) > 55n) ||
      (p & GENOA_FIRMWARE.policyReservedMask) !== 0n;
    fc.assert(
      fc.property(fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }), fc.boolean(), (raw, sane) => {
        // half the cases keep the reserved bits clear and bit 17 set so the other rules are reached
        const p = sane ? (raw & 0x1fffffn) | (1n << 17n) : raw;
        s.fw.gctxCreate(GCTX);
        const st = s.fw.launchStart({ gctxPaddr: GCTX, policy: p });
        s.fw.decommission(GCTX);
        return st === (failing(p) ? SevStatus.POLICY_FAILURE : SevStatus.SUCCESS);
      }),
      { numRuns: 300 },
    );
  });

  it('migration agent rules: MA_EN needs MIGRATE_MA, an MA without an MA, SINGLE_SOCKET on both', () => {
    const s = initSystem();
    const ma = 0x12_0000;
    startGuest(s, { gctx: ma });
    markFirmware(s.platform, GCTX);
    s.fw.gctxCreate(GCTX);
    const start = (policy: bigint, maGctxPaddr = ma) =>
      s.fw.launchStart({ gctxPaddr: GCTX, policy, maEn: true, maGctxPaddr });
    expectStatus(s.fw, start(POLICY, 0x13_0000), SevStatus.INVALID_GUEST, 'MA is not a Context page');
    expectStatus(s.fw, start(POLICY), SevStatus.POLICY_FAILURE, 'no MIGRATE_MA');
    expectStatus(
      s.fw,
      start(POLICY | (1n << 18n) | (1n << 20n)),
      SevStatus.POLICY_FAILURE,
      'MA lacks SINGLE_SOCKET',
    );
    expectStatus(s.fw, start(POLICY | (1n << 18n)), SevStatus.SUCCESS);
    const g = s.fw.guestContext(GCTX)!;
    assert.deepEqual(g.reportIdMa, s.fw.guestContext(ma)!.reportId);
    const third = 0x14_0000;
    markFirmware(s.platform, third);
    s.fw.gctxCreate(third);
    expectStatus(
      s.fw,
      s.fw.launchStart({ gctxPaddr: third, policy: POLICY | (1n << 18n), maEn: true, maGctxPaddr: GCTX }),
      SevStatus.POLICY_FAILURE,
      'the MA is itself bound to an MA',
    );
  });
});

describe('SNP_LAUNCH_UPDATE', () => {
  function launching(asid = 1): Sys {
    const s = initSystem();
    startGuest(s, { asid });
    return s;
  }

  it('NORMAL 4K: Pre-Guest -> Guest-Valid, LD = SHA-384(PAGE_INFO) over the page', () => {
    const s = launching();
    const data = new Uint8Array(4096).map((_, i) => i * 7);
    s.platform.memory.write(PAGE, data);
    makePreGuest(s.platform, PAGE, 0x7000, 1);
    expectStatus(s.fw, update(s, SnpPageType.NORMAL), SevStatus.SUCCESS);
    const e = s.platform.rmp.entry(PAGE / 4096)!;
    assert.equal(s.platform.rmp.pageState(PAGE / 4096), PageState.GUEST_VALID);
    assert.equal(e.validated, true);
    assert.equal(e.immutable, false);
    assert.equal(e.vmsa, false);
    const want = pageInfo(new Uint8Array(48), sha384(data), 1, 0x7000);
    assert.deepEqual(s.fw.guestContext(GCTX)!.measurement, want);
    assert.deepEqual(s.platform.memory.read(PAGE, 4096), data, 'NORMAL keeps the contents');
  });

  it('ZERO zeroes, UNMEASURED keeps, both measure 48 zero bytes of CONTENTS', () => {
    const s = launching();
    s.platform.memory.write(PAGE, new Uint8Array(4096).fill(9));
    s.platform.memory.write(PAGE + 0x1000, new Uint8Array(4096).fill(9));
    makePreGuest(s.platform, PAGE, 0x0, 1);
    makePreGuest(s.platform, PAGE + 0x1000, 0x1000, 1);
    expectStatus(s.fw, update(s, SnpPageType.ZERO), SevStatus.SUCCESS);
    expectStatus(s.fw, update(s, SnpPageType.UNMEASURED, { address: PAGE + 0x1000 }), SevStatus.SUCCESS);
    assert.deepEqual(s.platform.memory.read(PAGE, 4096), new Uint8Array(4096));
    assert.deepEqual(s.platform.memory.read(PAGE + 0x1000, 4096), new Uint8Array(4096).fill(9));
    const ld1 = pageInfo(new Uint8Array(48), null, 3, 0);
    assert.deepEqual(s.fw.guestContext(GCTX)!.measurement, pageInfo(ld1, null, 4, 0x1000));
  });

  it('VMPL masks go to the RMP and to PAGE_INFO in the firmware byte order (reserved, VMPL1, VMPL2, VMPL3)', () => {
    const s = launching();
    makePreGuest(s.platform, PAGE, 0, 1);
    expectStatus(
      s.fw,
      update(s, SnpPageType.ZERO, { vmpl1Perms: 0x1, vmpl2Perms: 0x3, vmpl3Perms: 0x7 }),
      SevStatus.SUCCESS,
    );
    assert.deepEqual(s.platform.rmp.entry(PAGE / 4096)!.vmplPerms, [0x1f, 0x1, 0x3, 0x7]);
    assert.deepEqual(
      s.fw.guestContext(GCTX)!.measurement,
      pageInfo(new Uint8Array(48), null, 3, 0, [1, 3, 7]),
    );
  });

  it("the 'tools' profile switch measures the masks in the order of sev-snp-measure (VMPL3, VMPL2, VMPL1, 0)", () => {
    const p = parsePlatformProfile({ firmware: { pageInfoVmplOrder: 'tools' } });
    assert.ok(p.ok);
    const s = initSystem(p.profile);
    startGuest(s, { asid: 1 });
    makePreGuest(s.platform, PAGE, 0, 1);
    expectStatus(
      s.fw,
      update(s, SnpPageType.ZERO, { vmpl1Perms: 0x1, vmpl2Perms: 0x3, vmpl3Perms: 0x7 }),
      SevStatus.SUCCESS,
    );
    const pi = new Uint8Array(0x70);
    new DataView(pi.buffer).setUint16(0x60, 0x70, true);
    pi[0x62] = 3;
    pi.set([7, 3, 1, 0], 0x64);
    assert.deepEqual(s.fw.guestContext(GCTX)!.measurement, sha384(pi));
  });

  it('VMSA: sets RMP.VMSA, measures with GUEST_TSC_SCALE/OFFSET read as 0, writes them for SecureTSC', () => {
    const s = launching();
    const vmsa = new Uint8Array(4096);
    const dv = new DataView(vmsa.buffer);
    dv.setBigUint64(0x3b0, (1n << 9n) | 1n, true); // SEV_FEATURES: SNPActive | SecureTSC
    dv.setBigUint64(0x2f0, 0x1234n, true);
    dv.setBigUint64(0x2f8, 0x5678n, true);
    s.platform.memory.write(PAGE, vmsa);
    makePreGuest(s.platform, PAGE, 0xfffffffff000, 1);
    s.fw.guestContext(GCTX)!.desiredTscKhz = 2 * 99800;
    expectStatus(s.fw, update(s, SnpPageType.VMSA), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.entry(PAGE / 4096)!.vmsa, true);
    const measured = vmsa.slice();
    measured.fill(0, 0x2f0, 0x300);
    assert.deepEqual(
      s.fw.guestContext(GCTX)!.measurement,
      pageInfo(new Uint8Array(48), sha384(measured), 2, 0xfffffffff000),
    );
    const after = new DataView(s.platform.memory.read(PAGE, 4096).buffer);
    assert.equal(after.getBigUint64(0x2f0, true), 2n << 32n, 'GUEST_TSC_SCALE = 2.0 in 8.32');
    assert.equal(after.getBigUint64(0x2f8, true), 0n);
  });

  it('SECRETS: version 3, IMI_EN, FMS, GOSVW, VMPCK0-3, TSC_FACTOR; CONTENTS measured as zero', () => {
    const s = initSystem();
    markFirmware(s.platform, GCTX);
    s.fw.gctxCreate(GCTX);
    const gosvw = new Uint8Array(16).fill(0x5a);
    s.fw.launchStart({ gctxPaddr: GCTX, policy: POLICY, gosvw });
    s.fw.activate(GCTX, 1);
    s.platform.memory.write(PAGE, new Uint8Array(4096).fill(0xee));
    makePreGuest(s.platform, PAGE, 0x3000, 1);
    expectStatus(s.fw, update(s, SnpPageType.SECRETS), SevStatus.SUCCESS);
    const p = s.platform.memory.read(PAGE, 4096);
    const g = s.fw.guestContext(GCTX)!;
    assert.equal(u32(p, SecretsOffset.VERSION), 3);
    assert.equal(u32(p, SecretsOffset.IMI_EN), 0);
    assert.equal(u32(p, SecretsOffset.FMS), 0xa10f10);
    assert.deepEqual(p.slice(0x10, 0x20), gosvw);
    for (let i = 0; i < 4; i++) assert.deepEqual(p.slice(0x20 + 32 * i, 0x40 + 32 * i), g.vmpck[i]);
    assert.equal(u32(p, SecretsOffset.TSC_FACTOR), 200);
    assert.deepEqual(p.slice(0x164), new Uint8Array(4096 - 0x164));
    assert.deepEqual(g.measurement, pageInfo(new Uint8Array(48), null, 5, 0x3000));
  });

  it('CPUID: structure checks (reserved header, COUNT <= 64, entry reserved) -> INVALID_PARAM, page stays Pre-Guest', () => {
    const s = launching();
    makePreGuest(s.platform, PAGE, 0x4000, 1);
    const good = new Uint8Array(4096);
    const dv = new DataView(good.buffer);
    dv.setUint32(0, 2, true);
    dv.setUint32(0x10, 0x1, true); // Fn0000_0001
    dv.setUint32(0x10 + 0x18, 0xa10f10, true);
    dv.setUint32(0x40, 0x80000008, true);
    const bad = (mutate: (v: DataView) => void) => {
      const p = good.slice();
      mutate(new DataView(p.buffer));
      s.platform.memory.write(PAGE, p);
      return update(s, SnpPageType.CPUID);
    };
    expectStatus(
      s.fw,
      bad((v) => v.setUint32(4, 1, true)),
      SevStatus.INVALID_PARAM,
      'reserved',
    );
    expectStatus(
      s.fw,
      bad((v) => v.setUint32(0, 65, true)),
      SevStatus.INVALID_PARAM,
      'count',
    );
    expectStatus(
      s.fw,
      bad((v) => v.setUint32(0x10 + 0x28, 1, true)),
      SevStatus.INVALID_PARAM,
      'entry reserved',
    );
    assert.equal(s.platform.rmp.pageState(PAGE / 4096), PageState.PRE_GUEST);
    assert.deepEqual(s.fw.guestContext(GCTX)!.measurement, new Uint8Array(48), 'LD untouched');
    s.platform.memory.write(PAGE, good);
    expectStatus(s.fw, update(s, SnpPageType.CPUID), SevStatus.SUCCESS);
    assert.deepEqual(s.fw.guestContext(GCTX)!.measurement, pageInfo(new Uint8Array(48), null, 6, 0x4000));
  });

  it("CPUID 'rules' validation writes the corrected page back and fails; unlisted leaves must be zero", () => {
    const p = parsePlatformProfile({
      firmware: {
        cpuidValidation: 'rules',
        cpuidRules: [
          {
            eaxIn: 1,
            ecxIn: 0,
            regs: [
              { rule: 'exact', value: 0xa10f10, reserved: 0 },
              { rule: 'unchecked', value: 0, reserved: 0 },
              { rule: 'mask', value: 0x0000ffff, reserved: 0x80000000 },
              { rule: 'lessthan', value: 0x100, reserved: 0 },
            ],
          },
        ],
      },
    });
    assert.ok(p.ok);
    const s = initSystem(p.profile);
    startGuest(s, { asid: 1 });
    makePreGuest(s.platform, PAGE, 0x4000, 1);
    const page = new Uint8Array(4096);
    const dv = new DataView(page.buffer);
    dv.setUint32(0, 2, true);
    dv.setUint32(0x10, 1, true);
    dv.setUint32(0x10 + 0x18, 0xa10f11, true); // EAX: exact 0xa10f10 expected
    dv.setUint32(0x10 + 0x20, 0x8001_0001, true); // ECX: mask + reserved bit 31
    dv.setUint32(0x10 + 0x24, 0x200, true); // EDX: above 0x100
    dv.setUint32(0x40, 0x7, true); // Fn0000_0007: not in the rules
    dv.setUint32(0x40 + 0x1c, 0xffff, true);
    s.platform.memory.write(PAGE, page);
    expectStatus(s.fw, update(s, SnpPageType.CPUID), SevStatus.INVALID_PARAM);
    const back = new DataView(s.platform.memory.read(PAGE, 4096).buffer);
    assert.equal(back.getUint32(0x10 + 0x18, true), 0xa10f10);
    assert.equal(back.getUint32(0x10 + 0x20, true), 0x0001);
    assert.equal(back.getUint32(0x10 + 0x24, true), 0x100);
    assert.equal(back.getUint32(0x40 + 0x1c, true), 0, 'unlisted architectural leaf zeroed');
    expectStatus(s.fw, update(s, SnpPageType.CPUID), SevStatus.SUCCESS, 'the corrected page passes');
  });

  it('2 MB NORMAL: 512 PAGE_INFO steps with GPA += 4K, the 2 MB entry becomes Guest-Valid', () => {
    const s = launching();
    const base = 0x40_0000;
    for (let i = 0; i < 512; i += 100)
      s.platform.memory.write(base + i * 4096, Uint8Array.of(i & 0xff, 1, 2));
    makePreGuest(s.platform, base, 0x80_0000, 1, 1);
    expectStatus(
      s.fw,
      s.fw.launchUpdate({ gctxPaddr: GCTX, address: base, pageType: 1, pageSize: 1 }),
      SevStatus.SUCCESS,
    );
    let ld = new Uint8Array(48);
    for (let i = 0; i < 512; i++) {
      ld = pageInfo(ld, sha384(s.platform.memory.read(base + i * 4096, 4096)), 1, 0x80_0000 + i * 4096);
    }
    assert.deepEqual(s.fw.guestContext(GCTX)!.measurement, ld);
    const e = s.platform.rmp.entry(base / 4096)!;
    assert.equal(e.pageSize, 1);
    assert.equal(s.platform.rmp.pageState(base / 4096), PageState.GUEST_VALID);
  });

  it('2 MB ZERO is allowed; VMSA, SECRETS and CPUID must be 4K (INVALID_PAGE_SIZE)', () => {
    const s = launching();
    const base = 0x40_0000;
    makePreGuest(s.platform, base, 0, 1, 1);
    for (const t of [SnpPageType.VMSA, SnpPageType.SECRETS, SnpPageType.CPUID]) {
      expectStatus(
        s.fw,
        s.fw.launchUpdate({ gctxPaddr: GCTX, address: base, pageType: t, pageSize: 1 }),
        SevStatus.INVALID_PAGE_SIZE,
      );
    }
    expectStatus(
      s.fw,
      s.fw.launchUpdate({ gctxPaddr: GCTX, address: base, pageType: 3, pageSize: 0 }),
      SevStatus.INVALID_PAGE_SIZE,
      'RMP 2M vs request 4K',
    );
    expectStatus(
      s.fw,
      s.fw.launchUpdate({ gctxPaddr: GCTX, address: base, pageType: 3, pageSize: 1 }),
      SevStatus.SUCCESS,
    );
  });

  it('every status in firmware order', () => {
    const s = launching(2);
    const raw = (mut: (b: Uint8Array) => void) => {
      const b = encodeLaunchUpdate({ gctxPaddr: GCTX, address: PAGE, pageType: 1 });
      mut(b);
      return s.fw.command(SnpCommandId.SNP_LAUNCH_UPDATE, b);
    };
    expectStatus(
      s.fw,
      raw((b) => (b[0x08] = 0x22)),
      SevStatus.INVALID_PARAM,
      'flags reserved',
    );
    expectStatus(
      s.fw,
      raw((b) => (b[0x0c] = 1)),
      SevStatus.INVALID_PARAM,
      'rsvd2',
    );
    expectStatus(
      s.fw,
      raw((b) => (b[0x18] = 1)),
      SevStatus.INVALID_PARAM,
      'rsvd3',
    );
    expectStatus(
      s.fw,
      raw((b) => (b[0x1c] = 1)),
      SevStatus.INVALID_PARAM,
      'rsvd4',
    );
    expectStatus(
      s.fw,
      raw((b) => (b[0x10] = 1)),
      SevStatus.INVALID_PARAM,
      'address bits 11:0',
    );
    expectStatus(s.fw, update(s, 1, { gctxPaddr: GCTX + 0x1000 }), SevStatus.INVALID_GUEST);
    expectStatus(s.fw, update(s, 1), SevStatus.INVALID_PAGE_STATE, 'Hypervisor page');
    makePreGuest(s.platform, PAGE, 0, 3);
    expectStatus(s.fw, update(s, 1, { pageSize: 1 }), SevStatus.INVALID_PAGE_SIZE);
    expectStatus(s.fw, update(s, 0), SevStatus.INVALID_PARAM, 'page type 0');
    expectStatus(s.fw, update(s, 7), SevStatus.INVALID_PARAM, 'page type 7');
    expectStatus(s.fw, update(s, 1), SevStatus.INVALID_PAGE_OWNER, 'page ASID 3, guest ASID 2');
    // an (unusual) 2 MB entry at a 4K-aligned address: INVALID_ADDRESS
    const e = s.platform.rmp.entry(0x201)!;
    s.platform.firmwareWrite(0x201, { ...e, assigned: true, immutable: true, asid: 2, pageSize: 1 });
    expectStatus(s.fw, update(s, 1, { address: 0x20_1000, pageSize: 1 }), SevStatus.INVALID_ADDRESS);
    const b = bareSystem();
    expectStatus(
      b.fw,
      b.fw.launchUpdate({ gctxPaddr: GCTX, address: PAGE, pageType: 1 }),
      SevStatus.INVALID_PLATFORM_STATE,
    );
  });

  it('INACTIVE without ACTIVATE, INVALID_GUEST_STATE once RUNNING, IMI pages for an IMI guest', () => {
    const s = initSystem();
    startGuest(s);
    makePreGuest(s.platform, PAGE, 0, 1);
    expectStatus(s.fw, update(s, 1), SevStatus.INACTIVE);
    const r = initSystem();
    startGuest(r, { asid: 1 });
    expectStatus(r.fw, r.fw.launchFinish({ gctxPaddr: GCTX }), SevStatus.SUCCESS);
    makePreGuest(r.platform, PAGE, 0, 1);
    expectStatus(r.fw, update(r, 1), SevStatus.INVALID_GUEST_STATE);
    const t = initSystem();
    markFirmware(t.platform, GCTX);
    t.fw.gctxCreate(GCTX);
    t.fw.launchStart({ gctxPaddr: GCTX, policy: POLICY, imiEn: true });
    t.fw.activate(GCTX, 1);
    makePreGuest(t.platform, PAGE, 0, 1);
    expectStatus(t.fw, update(t, 1), SevStatus.INVALID_PARAM, 'IMI guest needs IMI_PAGE');
    expectStatus(t.fw, update(t, 3, { imiPage: true }), SevStatus.SUCCESS);
    const g = t.fw.guestContext(GCTX)!;
    assert.deepEqual(g.imd, pageInfo(new Uint8Array(48), null, 3, 0, [0, 0, 0], true), 'IMD updated too');
    assert.deepEqual(g.measurement, g.imd);
    expectStatus(t.fw, t.fw.launchFinish({ gctxPaddr: GCTX }), SevStatus.INVALID_GUEST_STATE, 'IMI guest');
  });
});

describe('SNP_LAUNCH_FINISH with ID block and ID auth (§E.4)', () => {
  const ID_BLOCK = 0x30_0000;
  const ID_AUTH = 0x30_1000;
  const idKey = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;
  const authorKey = generateKeyPairSync('ec', { namedCurve: 'P-384' }).privateKey;

  function launched(): Sys {
    const s = initSystem();
    startGuest(s, { asid: 1 });
    makePreGuest(s.platform, PAGE, 0, 1);
    expectStatus(s.fw, update(s, SnpPageType.ZERO), SevStatus.SUCCESS);
    return s;
  }

  function finish(s: Sys, block: Uint8Array, auth: Uint8Array, authKeyEn = false) {
    s.platform.memory.write(ID_BLOCK, block);
    s.platform.memory.write(ID_AUTH, auth);
    return s.fw.launchFinish({
      gctxPaddr: GCTX,
      idBlockEn: true,
      authKeyEn,
      idBlockPaddr: ID_BLOCK,
      idAuthPaddr: ID_AUTH,
      hostData: new Uint8Array(32).fill(0x42),
    });
  }

  it('accepts a signed ID block with an author key; stores the key digests and HOST_DATA; guest RUNNING', () => {
    const s = launched();
    const ld = s.fw.guestContext(GCTX)!.measurement.slice();
    const block = encodeIdBlock({ ld, policy: POLICY, guestSvn: 7, familyId: new Uint8Array(16).fill(1) });
    const auth = buildIdAuth({ idBlock: block, idKey, authorKey });
    expectStatus(s.fw, finish(s, block, auth, true), SevStatus.SUCCESS);
    const g = s.fw.guestContext(GCTX)!;
    assert.equal(g.snpState, SnpGuestState.RUNNING);
    assert.deepEqual(g.idKeyDigest, keyDigest(encodeSevPublicKey(idKey)));
    assert.deepEqual(g.authorKeyDigest, keyDigest(encodeSevPublicKey(authorKey)));
    assert.deepEqual(g.idKeyDigest, sha384(auth.subarray(IdAuthOffset.ID_KEY, IdAuthOffset.ID_KEY + 0x404)));
    assert.equal(g.guestSvn, 7);
    assert.deepEqual(g.hostData, new Uint8Array(32).fill(0x42));
    assert.equal(g.authorKeyEn, true);
  });

  it('wrong LD -> BAD_MEASUREMENT, wrong policy -> POLICY_FAILURE, algo != 1 -> INVALID_PARAM', () => {
    const s = launched();
    const ld = s.fw.guestContext(GCTX)!.measurement.slice();
    const wrongLd = encodeIdBlock({ ld: sha384(ld), policy: POLICY });
    expectStatus(
      s.fw,
      finish(s, wrongLd, buildIdAuth({ idBlock: wrongLd, idKey })),
      SevStatus.BAD_MEASUREMENT,
    );
    const wrongPolicy = encodeIdBlock({ ld, policy: POLICY | (1n << 19n) });
    expectStatus(
      s.fw,
      finish(s, wrongPolicy, buildIdAuth({ idBlock: wrongPolicy, idKey })),
      SevStatus.POLICY_FAILURE,
    );
    const block = encodeIdBlock({ ld, policy: POLICY });
    expectStatus(
      s.fw,
      finish(s, block, buildIdAuth({ idBlock: block, idKey, idKeyAlgo: 2 })),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(
      s.fw,
      finish(s, block, buildIdAuth({ idBlock: block, idKey, authKeyAlgo: 0 }), true),
      SevStatus.INVALID_PARAM,
      'AUTH_KEY_EN with AUTH_KEY_ALGO 0',
    );
    assert.equal(s.fw.guestContext(GCTX)!.snpState, SnpGuestState.LAUNCH);
  });

  it('bad signatures and bad keys -> BAD_SIGNATURE', () => {
    const s = launched();
    const ld = s.fw.guestContext(GCTX)!.measurement.slice();
    const block = encodeIdBlock({ ld, policy: POLICY });
    const other = encodeIdBlock({ ld, policy: POLICY, guestSvn: 1 });
    const signedOther = buildIdAuth({ idBlock: other, idKey });
    expectStatus(
      s.fw,
      finish(s, block, signedOther),
      SevStatus.BAD_SIGNATURE,
      'signature over another block',
    );
    const badCurve = buildIdAuth({ idBlock: block, idKey });
    badCurve[IdAuthOffset.ID_KEY] = 1; // curve 1 is not P-384
    expectStatus(s.fw, finish(s, block, badCurve), SevStatus.BAD_SIGNATURE, 'ID key curve');
    const offCurve = buildIdAuth({ idBlock: block, idKey });
    offCurve[IdAuthOffset.ID_KEY + 4] = (offCurve[IdAuthOffset.ID_KEY + 4] ?? 0) ^ 1; // QX changed: point off the curve
    expectStatus(s.fw, finish(s, block, offCurve), SevStatus.BAD_SIGNATURE, 'ID key not on the curve');
    const badAuthor = buildIdAuth({ idBlock: block, idKey, authorKey });
    badAuthor[IdAuthOffset.ID_KEY_SIG] = (badAuthor[IdAuthOffset.ID_KEY_SIG] ?? 0) ^ 1;
    expectStatus(s.fw, finish(s, block, badAuthor, true), SevStatus.BAD_SIGNATURE, 'ID_KEY_SIG');
    expectStatus(s.fw, finish(s, block, buildIdAuth({ idBlock: block, idKey })), SevStatus.SUCCESS);
  });

  it('INVALID_PARAM, INVALID_PLATFORM_STATE, INVALID_GUEST, INVALID_GUEST_STATE, INACTIVE, INVALID_ADDRESS', () => {
    const s = initSystem();
    const b = encodeLaunchFinish({ gctxPaddr: GCTX });
    b[0x18] = 0x8;
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_LAUNCH_FINISH, b),
      SevStatus.INVALID_PARAM,
      'reserved flag bit 3',
    );
    expectStatus(s.fw, s.fw.launchFinish({ gctxPaddr: GCTX }), SevStatus.INVALID_GUEST);
    markFirmware(s.platform, GCTX);
    s.fw.gctxCreate(GCTX);
    expectStatus(s.fw, s.fw.launchFinish({ gctxPaddr: GCTX }), SevStatus.INVALID_GUEST_STATE, 'guest INIT');
    s.fw.launchStart({ gctxPaddr: GCTX, policy: POLICY });
    expectStatus(s.fw, s.fw.launchFinish({ gctxPaddr: GCTX }), SevStatus.INACTIVE);
    s.fw.activate(GCTX, 1);
    expectStatus(
      s.fw,
      s.fw.launchFinish({ gctxPaddr: GCTX, idBlockEn: true, idBlockPaddr: 1 << 30, idAuthPaddr: ID_AUTH }),
      SevStatus.INVALID_ADDRESS,
    );
    expectStatus(s.fw, s.fw.launchFinish({ gctxPaddr: GCTX, vcekDisabled: true }), SevStatus.SUCCESS);
    assert.equal(s.fw.guestContext(GCTX)!.vcekDis, true);
    const u = bareSystem();
    expectStatus(u.fw, u.fw.launchFinish({ gctxPaddr: GCTX }), SevStatus.INVALID_PLATFORM_STATE);
  });
});
