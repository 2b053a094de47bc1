import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  encodeAddr,
  encodeConfig,
  encodeFeatureInfo,
  encodeInitEx,
  encodeRangeList,
  encodeShutdownEx,
  encodeTcb,
  Firmware,
  GENOA_FIRMWARE,
  LegacySevState,
  PageState,
  PLATFORM_PROFILES,
  Platform,
  parsePlatformProfile,
  SevStatus,
  SnpCommandId,
  SnpPlatformState,
} from '../../psp-firmware/index.js';
import { bareSystem, expectStatus, initSystem, MiB, markFirmware, startGuest } from './fw-fixture.js';

const STATUS_PAGE = 0x30_0000;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

describe('SNP_INIT / SNP_INIT_EX', () => {
  it('moves UNINIT -> INIT and refuses a second INIT with INVALID_PLATFORM_STATE', () => {
    const { fw } = bareSystem();
    assert.equal(fw.snpState, SnpPlatformState.UNINIT);
    expectStatus(fw, fw.snpInit(), SevStatus.SUCCESS);
    assert.equal(fw.snpState, SnpPlatformState.INIT);
    expectStatus(fw, fw.snpInit(), SevStatus.INVALID_PLATFORM_STATE);
    expectStatus(fw, fw.snpInitEx(), SevStatus.INVALID_PLATFORM_STATE);
  });

  it('needs the legacy SEV platform UNINIT ("init SNP first")', () => {
    const { fw } = bareSystem();
    fw.legacySevState = LegacySevState.INIT;
    expectStatus(fw, fw.snpInit(), SevStatus.INVALID_PLATFORM_STATE);
    assert.match(fw.lastError?.reason ?? '', /legacy SEV/);
  });

  it('needs SYSCFG.SNP_EN: INVALID_CONFIG', () => {
    const platform = new Platform({ memoryBytes: 16 * MiB, snpEnabled: false });
    const fw = new Firmware(platform, GENOA_FIRMWARE);
    expectStatus(fw, fw.snpInit(), SevStatus.INVALID_CONFIG);
    expectStatus(fw, fw.snpInitEx(), SevStatus.INVALID_CONFIG);
    assert.equal(fw.snpState, SnpPlatformState.UNINIT);
  });

  it('initialises the RMP: every memory page back to Hypervisor', () => {
    const { platform, fw } = bareSystem();
    markFirmware(platform, 0x5000);
    assert.equal(platform.rmp.pageState(5), PageState.FIRMWARE);
    expectStatus(fw, fw.snpInit(), SevStatus.SUCCESS);
    assert.equal(platform.rmp.pageState(5), PageState.HYPERVISOR);
    assert.deepEqual(platform.rmp.verifyCounters(), []);
  });

  it('SNP_INIT_EX: reserved flag bits, a non-zero max_snp_asid, rsvd1 -> INVALID_PARAM (FW 1.55.25 knows bits 1:0)', () => {
    const { fw } = bareSystem();
    expectStatus(fw, fw.snpInitEx({ extraFlags: 0x4 }), SevStatus.INVALID_PARAM, 'rapl_dis');
    expectStatus(fw, fw.snpInitEx({ maxSnpAsid: 10 }), SevStatus.INVALID_PARAM, 'max_snp_asid');
    const b = encodeInitEx({});
    view(b).setUint32(4, 1, true);
    expectStatus(fw, fw.command(SnpCommandId.SNP_INIT_EX, b), SevStatus.INVALID_PARAM, 'rsvd1');
    const tail = encodeInitEx({});
    tail[0x3f] = 1;
    expectStatus(fw, fw.command(SnpCommandId.SNP_INIT_EX, tail), SevStatus.INVALID_PARAM, 'rsvd2');
    // reserved fields are checked before the platform state
    expectStatus(fw, fw.snpInitEx({}), SevStatus.SUCCESS);
    expectStatus(fw, fw.snpInitEx({ extraFlags: 0x4 }), SevStatus.INVALID_PARAM);
  });

  it('SNP_INIT_EX INIT_RMP=0: RMP_INIT_REQUIRED until an RMP exists; then reuses it', () => {
    const { platform, fw } = bareSystem();
    expectStatus(fw, fw.snpInitEx({ initRmp: false }), SevStatus.RMP_INIT_REQUIRED);
    expectStatus(fw, fw.snpInitEx({ initRmp: true }), SevStatus.SUCCESS);
    markFirmware(platform, 0x7000);
    fw.noteWbinvd();
    expectStatus(fw, fw.dfFlush(), SevStatus.SUCCESS);
    expectStatus(fw, fw.shutdown(), SevStatus.SUCCESS);
    expectStatus(fw, fw.snpInitEx({ initRmp: false }), SevStatus.SUCCESS);
    assert.equal(platform.rmp.pageState(7), PageState.FIRMWARE, 'RMP kept');
  });

  it('SNP_INIT_EX: LIST_PADDR_EN without INIT_RMP -> INVALID_PARAM', () => {
    const { fw } = bareSystem();
    expectStatus(fw, fw.snpInitEx({}), SevStatus.SUCCESS);
    fw.noteWbinvd();
    fw.dfFlush();
    fw.shutdown();
    expectStatus(fw, fw.snpInitEx({ initRmp: false, listPaddr: 0x1000 }), SevStatus.INVALID_PARAM);
  });

  it('SNP_INIT_EX RANGE_LIST: listed ranges become HV-Fixed', () => {
    const { platform, fw } = bareSystem();
    platform.memory.write(
      0x9000,
      encodeRangeList([
        { base: 0x40_0000, pageCount: 2 },
        { base: 0x80_0000, pageCount: 1 },
      ]),
    );
    expectStatus(fw, fw.snpInitEx({ listPaddr: 0x9000 }), SevStatus.SUCCESS);
    assert.equal(platform.rmp.pageState(0x400), PageState.HV_FIXED);
    assert.equal(platform.rmp.pageState(0x401), PageState.HV_FIXED);
    assert.equal(platform.rmp.pageState(0x402), PageState.HYPERVISOR);
    assert.equal(platform.rmp.pageState(0x800), PageState.HV_FIXED);
  });

  it('leaves every ASID dirty: the first DF_FLUSH needs WBINVD', () => {
    const { fw } = bareSystem();
    fw.snpInit();
    assert.equal(fw.asidState(1), 'dirty');
    expectStatus(fw, fw.dfFlush(), SevStatus.WBINVD_REQUIRED);
    fw.noteWbinvd();
    expectStatus(fw, fw.dfFlush(), SevStatus.SUCCESS);
    assert.equal(fw.asidState(1), 'clean');
  });
});

describe('SNP_SHUTDOWN / SNP_SHUTDOWN_EX', () => {
  it('is a successful no-op when already UNINIT, even with a bad SHUTDOWN_EX length', () => {
    const { fw } = bareSystem();
    expectStatus(fw, fw.shutdown(), SevStatus.SUCCESS);
    const b = encodeShutdownEx({});
    view(b).setUint32(0, 7, true);
    expectStatus(fw, fw.command(SnpCommandId.SNP_SHUTDOWN_EX, b), SevStatus.SUCCESS);
  });

  it('needs legacy SEV UNINIT first', () => {
    const { fw } = initSystem();
    fw.legacySevState = LegacySevState.WORKING;
    expectStatus(fw, fw.shutdown(), SevStatus.INVALID_PLATFORM_STATE);
    expectStatus(fw, fw.shutdownEx(), SevStatus.INVALID_PLATFORM_STATE);
  });

  it('returns DFFLUSH_REQUIRED while an ASID is not clean, then succeeds after DF_FLUSH', () => {
    const { fw } = bareSystem();
    fw.snpInit();
    expectStatus(fw, fw.shutdown(), SevStatus.DFFLUSH_REQUIRED);
    fw.noteWbinvd();
    fw.dfFlush();
    expectStatus(fw, fw.shutdown(), SevStatus.SUCCESS);
    assert.equal(fw.snpState, SnpPlatformState.UNINIT);
  });

  it('checks SHUTDOWN_EX length, reserved bits and X86_SNP_SHUTDOWN after the ASID state', () => {
    const { fw } = initSystem();
    const bad = encodeShutdownEx({});
    view(bad).setUint32(0, 16, true);
    expectStatus(fw, fw.command(SnpCommandId.SNP_SHUTDOWN_EX, bad), SevStatus.INVALID_PARAM, 'len');
    const rsvd = encodeShutdownEx({});
    view(rsvd).setUint32(4, 0x5, true);
    expectStatus(fw, fw.command(SnpCommandId.SNP_SHUTDOWN_EX, rsvd), SevStatus.INVALID_PARAM, 'reserved');
    expectStatus(
      fw,
      fw.shutdownEx({ iommuSnpShutdown: false, x86SnpShutdown: true }),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(fw, fw.shutdownEx({ iommuSnpShutdown: true }), SevStatus.SUCCESS);
    expectStatus(
      fw,
      fw.snpInitEx({ initRmp: false }),
      SevStatus.RMP_INIT_REQUIRED,
      'IOMMU shutdown uninitialises the RMP',
    );
  });

  it('refuses X86_SNP_SHUTDOWN when the profile has no SMU support', () => {
    const parsed = parsePlatformProfile({ firmware: { x86SnpShutdown: false } });
    assert.ok(parsed.ok);
    const { fw } = initSystem(parsed.profile);
    expectStatus(
      fw,
      fw.shutdownEx({ iommuSnpShutdown: true, x86SnpShutdown: true }),
      SevStatus.INVALID_PARAM,
    );
  });

  it('with a running guest its ASID is in use: DFFLUSH_REQUIRED, and DF_FLUSH cannot clean it', () => {
    const s = initSystem();
    startGuest(s, { asid: 5 });
    expectStatus(s.fw, s.fw.shutdown(), SevStatus.DFFLUSH_REQUIRED);
    expectStatus(s.fw, s.fw.dfFlush(), SevStatus.SUCCESS);
    expectStatus(s.fw, s.fw.shutdown(), SevStatus.DFFLUSH_REQUIRED);
  });
});

describe('SNP_PLATFORM_STATUS', () => {
  it('writes the 32-byte status with the profile version, state, TCBs and guest count', () => {
    const s = initSystem();
    markFirmware(s.platform, STATUS_PAGE);
    startGuest(s, { asid: 1 });
    const r = s.fw.platformStatus(STATUS_PAGE);
    expectStatus(s.fw, r.status, SevStatus.SUCCESS);
    const tcb = encodeTcb(GENOA_FIRMWARE.currentTcb, 'milan-genoa');
    assert.deepEqual(r.data, {
      apiMajor: 1,
      apiMinor: 55,
      state: 1,
      isRmpInitialized: true,
      buildId: 25,
      maskChipId: false,
      maskChipKey: false,
      vlekEn: false,
      featureInfo: true,
      guestCount: 1,
      currentTcb: tcb,
      reportedTcb: tcb,
    });
  });

  it('needs a Firmware or Default page once INIT: INVALID_PAGE_STATE for a Hypervisor page', () => {
    const { fw } = initSystem();
    expectStatus(fw, fw.platformStatus(STATUS_PAGE).status, SevStatus.INVALID_PAGE_STATE);
  });

  it('writes anywhere in memory while UNINIT; INVALID_ADDRESS outside memory', () => {
    const { fw } = bareSystem();
    const r = fw.platformStatus(STATUS_PAGE);
    expectStatus(fw, r.status, SevStatus.SUCCESS);
    assert.equal(r.data?.state, 0);
    assert.equal(r.data?.isRmpInitialized, false);
    expectStatus(
      fw,
      fw.command(SnpCommandId.SNP_PLATFORM_STATUS, encodeAddr(128 * MiB)),
      SevStatus.INVALID_ADDRESS,
    );
  });

  it('refuses a buffer crossing a page boundary with INVALID_PARAM (before the state check)', () => {
    const { fw } = initSystem();
    expectStatus(
      fw,
      fw.command(SnpCommandId.SNP_PLATFORM_STATUS, encodeAddr(STATUS_PAGE + 0xff0)),
      SevStatus.INVALID_PARAM,
    );
  });
});

describe('SNP_DF_FLUSH and WBINVD', () => {
  it('cleans dirty ASIDs only on CCXs whose WBINVD_DONE is set, and fails until all are', () => {
    const { fw } = bareSystem();
    fw.snpInit();
    fw.noteWbinvd(0b1);
    expectStatus(fw, fw.dfFlush(), SevStatus.WBINVD_REQUIRED);
    assert.equal(fw.asidState(3), 'mixed', 'CCX 0 clean, the others still dirty');
    fw.noteWbinvd();
    expectStatus(fw, fw.dfFlush(), SevStatus.SUCCESS);
    assert.equal(fw.asidState(3), 'clean');
  });
});

describe('SNP_CONFIG and SNP_COMMIT', () => {
  it('sets REPORTED_TCB (lower only), MaskChipId and MaskChipKey; 0 means the committed TCB', () => {
    const s = initSystem();
    markFirmware(s.platform, STATUS_PAGE);
    const committed = encodeTcb(GENOA_FIRMWARE.committedTcb, 'milan-genoa');
    const lower = encodeTcb({ ...GENOA_FIRMWARE.committedTcb, snp: 1 }, 'milan-genoa');
    expectStatus(s.fw, s.fw.config({ reportedTcb: lower, maskChipId: true }), SevStatus.SUCCESS);
    let st = s.fw.platformStatus(STATUS_PAGE).data;
    assert.equal(st?.reportedTcb, lower);
    assert.equal(st?.maskChipId, true);
    const higher = encodeTcb({ ...GENOA_FIRMWARE.committedTcb, microcode: 0xff }, 'milan-genoa');
    expectStatus(s.fw, s.fw.config({ reportedTcb: higher }), SevStatus.INVALID_PARAM);
    expectStatus(s.fw, s.fw.config({ reportedTcb: 0n, maskChipKey: true }), SevStatus.SUCCESS);
    st = s.fw.platformStatus(STATUS_PAGE).data;
    assert.equal(st?.reportedTcb, committed);
    assert.equal(st?.maskChipKey, true);
    assert.equal(st?.maskChipId, false);
  });

  it('SNP_CONFIG reserved fields -> INVALID_PARAM (any platform state)', () => {
    const { fw } = bareSystem();
    const b = encodeConfig({});
    b[0x08] = 0x4;
    expectStatus(fw, fw.command(SnpCommandId.SNP_CONFIG, b), SevStatus.INVALID_PARAM);
    const c = encodeConfig({});
    c[0x30] = 1;
    expectStatus(fw, fw.command(SnpCommandId.SNP_CONFIG, c), SevStatus.INVALID_PARAM);
  });

  it('SNP_COMMIT: length must be 4; a commit drops the CONFIG TCB', () => {
    const s = initSystem();
    markFirmware(s.platform, STATUS_PAGE);
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_COMMIT, Uint8Array.of(8, 0, 0, 0)),
      SevStatus.INVALID_PARAM,
    );
    const lower = encodeTcb({ ...GENOA_FIRMWARE.committedTcb, tee: 0, bootLoader: 1 }, 'milan-genoa');
    s.fw.config({ reportedTcb: lower });
    expectStatus(s.fw, s.fw.commit(), SevStatus.SUCCESS);
    assert.equal(
      s.fw.platformStatus(STATUS_PAGE).data?.reportedTcb,
      encodeTcb(GENOA_FIRMWARE.currentTcb, 'milan-genoa'),
    );
  });
});

describe('SNP_FEATURE_INFO', () => {
  it('returns the profile words for ECX_IN 0 and 1, INVALID_PARAM for others', () => {
    const s = initSystem();
    markFirmware(s.platform, STATUS_PAGE);
    const r0 = s.fw.featureInfo(0, STATUS_PAGE);
    expectStatus(s.fw, r0.status, SevStatus.SUCCESS);
    assert.deepEqual(r0.words, [1, 1, 3, 0]);
    assert.deepEqual(s.fw.featureInfo(1, STATUS_PAGE + 0x10).words, [0x1ff, 0, 0, 0]);
    expectStatus(s.fw, s.fw.featureInfo(2, STATUS_PAGE).status, SevStatus.INVALID_PARAM);
  });

  it('checks length, alignment, page crossing and the page state', () => {
    const s = initSystem();
    const bad = encodeFeatureInfo(0, STATUS_PAGE);
    bad[0] = 8;
    expectStatus(s.fw, s.fw.command(SnpCommandId.SNP_FEATURE_INFO, bad), SevStatus.INVALID_PARAM);
    expectStatus(s.fw, s.fw.featureInfo(0, STATUS_PAGE + 2).status, SevStatus.INVALID_ADDRESS, 'misaligned');
    expectStatus(s.fw, s.fw.featureInfo(0, STATUS_PAGE + 0xff8).status, SevStatus.INVALID_ADDRESS, 'crosses');
    expectStatus(
      s.fw,
      s.fw.featureInfo(0, STATUS_PAGE).status,
      SevStatus.INVALID_PAGE_STATE,
      'Hypervisor page',
    );
  });

  it('clears X86_SNP_SHUTDOWN (ECX bit 1) without SMU support', () => {
    const parsed = parsePlatformProfile({ firmware: { x86SnpShutdown: false } });
    assert.ok(parsed.ok);
    const { fw } = bareSystem();
    const f2 = new Firmware(fw.platform, parsed.profile.firmware);
    assert.deepEqual(f2.featureInfo(0, STATUS_PAGE).words, [1, 1, 1, 0]);
  });
});

describe('presets', () => {
  it('milan reports API 1.52 build 4 (the virtee/sev Milan report platform)', () => {
    const s = initSystem(PLATFORM_PROFILES.milan);
    markFirmware(s.platform, STATUS_PAGE);
    const d = s.fw.platformStatus(STATUS_PAGE).data;
    assert.equal(d?.apiMinor, 52);
    assert.equal(d?.buildId, 4);
    assert.equal(d?.currentTcb, 0x7308000000000003n);
  });
});
