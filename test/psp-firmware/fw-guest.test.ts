import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createSnpSystem,
  encodeActivate,
  encodeAddr,
  Firmware,
  GENOA_FIRMWARE,
  PageState,
  parsePlatformProfile,
  Rmp,
  SevStatus,
  SnpCommandId,
  SnpGuestState,
  SystemMemory,
} from '../../psp-firmware/index.js';
import {
  bareSystem,
  counterRandom,
  expectStatus,
  GCTX,
  initSystem,
  MiB,
  makePreGuest,
  makeShared,
  markFirmware,
  POLICY,
  runningGuest,
  startGuest,
} from './fw-fixture.js';

const PFN = GCTX / 0x1000;

describe('SNP_GCTX_CREATE', () => {
  it('turns a Firmware page into a Context page (RMP.VMSA = 1), zeroed, guest INIT', () => {
    const { platform, fw } = initSystem();
    markFirmware(platform, GCTX);
    platform.memory.write(GCTX, new Uint8Array(16).fill(0xaa));
    expectStatus(fw, fw.gctxCreate(GCTX), SevStatus.SUCCESS);
    assert.equal(platform.rmp.pageState(PFN), PageState.CONTEXT);
    assert.equal(platform.rmp.entry(PFN)?.vmsa, true);
    assert.deepEqual(platform.memory.read(GCTX, 16), new Uint8Array(16));
    const g = fw.guestContext(GCTX);
    assert.equal(g?.snpState, SnpGuestState.INIT);
    assert.deepEqual(g?.measurement, new Uint8Array(48), 'launch digest starts at 48 zero bytes');
  });

  it('checks reserved bits, platform state, page state and page size in that order', () => {
    const bare = bareSystem();
    expectStatus(
      bare.fw,
      bare.fw.command(SnpCommandId.SNP_GCTX_CREATE, encodeAddr(GCTX + 1)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(bare.fw, bare.fw.gctxCreate(GCTX), SevStatus.INVALID_PLATFORM_STATE);
    const { platform, fw } = initSystem();
    expectStatus(fw, fw.gctxCreate(GCTX), SevStatus.INVALID_PAGE_STATE, 'Hypervisor page');
    assert.equal(
      platform.rmpupdate(0x40_0000, { assigned: true, asid: 0, immutable: true, gpa: 0, pageSize: 1 }),
      0,
    );
    expectStatus(fw, fw.gctxCreate(0x40_0000), SevStatus.INVALID_PAGE_SIZE, '2 MB Firmware page');
    markFirmware(platform, GCTX);
    fw.gctxCreate(GCTX);
    expectStatus(fw, fw.gctxCreate(GCTX), SevStatus.INVALID_PAGE_STATE, 'already Context');
  });

  it('INVALID_CONFIG for a Firmware page outside system memory (an RMP covering more than DRAM)', () => {
    const rmp = new Rmp({ coveredBytes: 32 * MiB });
    const memory = new SystemMemory({ memoryBytes: 16 * MiB });
    const fw = new Firmware({ rmp, memory }, GENOA_FIRMWARE, { random: counterRandom() });
    expectStatus(fw, fw.snpInit(), SevStatus.SUCCESS);
    assert.equal(
      rmp.pageState(0x1800),
      PageState.HV_FIXED,
      'covered non-DRAM pages become HV-Fixed at SNP_INIT',
    );
    rmp.writeEntryWords(0x1800, 0x5, 0x80000000, 0, 0); // a Firmware page above DRAM
    expectStatus(fw, fw.gctxCreate(0x180_0000), SevStatus.INVALID_CONFIG);
  });
});

describe('addresses inside the RMP (firmware-rmp.md §A.4)', () => {
  it('are INVALID_PARAM for every page-address lookup', () => {
    const rmp = new Rmp({ coveredBytes: 16 * MiB });
    const memory = new SystemMemory({ memoryBytes: 16 * MiB });
    const fw = new Firmware({ rmp, memory, rmpBase: 0xf0_0000, rmpEnd: 0xff_ffff }, GENOA_FIRMWARE);
    expectStatus(fw, fw.snpInit(), SevStatus.SUCCESS);
    assert.equal(rmp.pageState(0xf00), PageState.FIRMWARE, 'SNP_INIT makes the RMP itself Firmware');
    assert.equal(rmp.entry(0xf00)?.lock, true);
    expectStatus(fw, fw.gctxCreate(0xf0_0000), SevStatus.INVALID_PARAM);
    expectStatus(fw, fw.decommission(0xf8_0000), SevStatus.INVALID_PARAM);
    expectStatus(fw, fw.pageReclaim(0xf0_1000), SevStatus.INVALID_PARAM);
  });
});

describe('SNP_DECOMMISSION', () => {
  it('Context -> Firmware, guest count back down, and a guest that ran leaves its ASID dirty', () => {
    const s = initSystem();
    markFirmware(s.platform, 0x30_0000);
    runningGuest(s, { asid: 3 });
    assert.equal(s.fw.platformStatus(0x30_0000).data?.guestCount, 1);
    assert.equal(s.fw.asidState(3), 'in-use');
    expectStatus(s.fw, s.fw.decommission(GCTX), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.pageState(PFN), PageState.FIRMWARE);
    assert.equal(s.fw.guestContext(GCTX), undefined);
    assert.equal(s.fw.platformStatus(0x30_0000).data?.guestCount, 0);
    assert.equal(s.fw.asidState(3), 'dirty');
  });

  it('a guest activated but never run gives its ASID back clean', () => {
    const s = initSystem();
    startGuest(s, { asid: 4 });
    assert.equal(s.fw.asidState(4), 'allocated');
    expectStatus(s.fw, s.fw.decommission(GCTX), SevStatus.SUCCESS);
    assert.equal(s.fw.asidState(4), 'clean');
  });

  it('INVALID_PARAM, INVALID_PLATFORM_STATE, INVALID_GUEST', () => {
    const s = initSystem();
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_DECOMMISSION, encodeAddr(GCTX | 0x800)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.decommission(GCTX), SevStatus.INVALID_GUEST, 'Hypervisor page');
    markFirmware(s.platform, GCTX);
    expectStatus(s.fw, s.fw.decommission(GCTX), SevStatus.INVALID_GUEST, 'Firmware page');
    s.fw.gctxCreate(GCTX);
    expectStatus(s.fw, s.fw.shutdown(), SevStatus.SUCCESS);
    expectStatus(s.fw, s.fw.decommission(GCTX), SevStatus.INVALID_PLATFORM_STATE);
  });
});

describe('SNP_ACTIVATE and the ASID life cycle', () => {
  it('ACTIVATE in LAUNCH leaves the guest pending; LAUNCH_FINISH makes the ASID in use', () => {
    const s = initSystem();
    startGuest(s, { asid: 9 });
    assert.equal(s.fw.guestContext(GCTX)?.activation, 'pending');
    makePreGuest(s.platform, 0x20_0000, 0, 9);
    s.fw.launchUpdate({ gctxPaddr: GCTX, address: 0x20_0000, pageType: 1 });
    expectStatus(s.fw, s.fw.launchFinish({ gctxPaddr: GCTX }), SevStatus.SUCCESS);
    assert.equal(s.fw.guestContext(GCTX)?.activation, 'active');
    assert.equal(s.fw.asidState(9), 'in-use');
  });

  it('checks in firmware order: INVALID_GUEST_STATE, INVALID_CONFIG, POLICY_FAILURE, INVALID_ASID, ASID_OWNED, ACTIVE', () => {
    const s = initSystem();
    markFirmware(s.platform, GCTX);
    s.fw.gctxCreate(GCTX);
    expectStatus(s.fw, s.fw.activate(GCTX, 1), SevStatus.INVALID_GUEST_STATE, 'guest INIT');
    s.fw.launchStart({ gctxPaddr: GCTX, policy: POLICY });
    makePreGuest(s.platform, 0x20_0000, 0, 7);
    expectStatus(s.fw, s.fw.activate(GCTX, 7), SevStatus.INVALID_CONFIG, 'RMP still holds an ASID 7 page');
    expectStatus(
      s.fw,
      s.fw.activate(GCTX, 0),
      SevStatus.INVALID_CONFIG,
      'ASID 0: its counter counts the Context page',
    );
    expectStatus(s.fw, s.fw.activate(GCTX, 1007), SevStatus.INVALID_ASID, 'above maxAsid 1006');
    expectStatus(s.fw, s.fw.activate(GCTX, 2048), SevStatus.INVALID_ASID, 'no RMP counter');
    expectStatus(s.fw, s.fw.activate(GCTX, 1006), SevStatus.SUCCESS);
    expectStatus(s.fw, s.fw.activate(GCTX, 5), SevStatus.ACTIVE, 'already activated');
    startGuest(s, { gctx: 0x11_0000 });
    expectStatus(s.fw, s.fw.activate(0x11_0000, 1006), SevStatus.ASID_OWNED);
  });

  it('POLICY.SINGLE_SOCKET on a two-socket platform -> POLICY_FAILURE', () => {
    const p = parsePlatformProfile({ firmware: { sockets: 2 } });
    assert.ok(p.ok);
    const s = initSystem(p.profile);
    startGuest(s, { policy: POLICY | (1n << 20n) });
    expectStatus(s.fw, s.fw.activate(GCTX, 1), SevStatus.POLICY_FAILURE);
  });

  it('reusing an ASID: DFFLUSH_REQUIRED until DF_FLUSH, which needs WBINVD after the deactivation', () => {
    const s = initSystem();
    const { pagePa } = runningGuest(s, { asid: 2 });
    expectStatus(s.fw, s.fw.decommission(GCTX), SevStatus.SUCCESS);
    expectStatus(s.fw, s.fw.pageReclaim(pagePa), SevStatus.SUCCESS);
    assert.equal(makeShared(s.platform, pagePa), 0);
    startGuest(s, { gctx: 0x11_0000 });
    expectStatus(s.fw, s.fw.activate(0x11_0000, 2), SevStatus.DFFLUSH_REQUIRED);
    expectStatus(s.fw, s.fw.dfFlush(), SevStatus.WBINVD_REQUIRED, 'the deactivation cleared WBINVD_DONE');
    s.fw.noteWbinvd();
    expectStatus(s.fw, s.fw.dfFlush(), SevStatus.SUCCESS);
    expectStatus(s.fw, s.fw.activate(0x11_0000, 2), SevStatus.SUCCESS);
  });

  it('right after SNP_INIT every ASID is dirty: DFFLUSH_REQUIRED', () => {
    const { platform, firmware: fw } = createSnpSystem({ memoryBytes: 64 * MiB });
    fw.snpInit();
    markFirmware(platform, GCTX);
    fw.gctxCreate(GCTX);
    fw.launchStart({ gctxPaddr: GCTX, policy: POLICY });
    expectStatus(fw, fw.activate(GCTX, 1), SevStatus.DFFLUSH_REQUIRED);
  });

  it('INVALID_PARAM, INVALID_PLATFORM_STATE, INVALID_GUEST', () => {
    const s = initSystem();
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_ACTIVATE, encodeActivate(GCTX + 4, 1)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.activate(GCTX, 1), SevStatus.INVALID_GUEST);
    const b = bareSystem();
    expectStatus(b.fw, b.fw.activate(GCTX, 1), SevStatus.INVALID_PLATFORM_STATE);
  });
});

describe('SNP_GUEST_STATUS', () => {
  it('writes policy, ASID and state into a Firmware or Default page', () => {
    const { platform, firmware: fw } = createSnpSystem({
      memoryBytes: 64 * MiB,
      coveredBytes: 32 * MiB,
      init: true,
      firmwareOptions: { random: counterRandom() },
    });
    const s = { platform, fw };
    startGuest(s, { asid: 12 });
    const r = fw.guestStatus(GCTX, 48 * MiB); // above RMP coverage: Default
    expectStatus(fw, r.status, SevStatus.SUCCESS);
    assert.deepEqual(r.data, { policy: POLICY, asid: 12, state: SnpGuestState.LAUNCH, vcekDis: false });
    markFirmware(platform, 0x30_0000);
    assert.equal(fw.guestStatus(GCTX, 0x30_0000).data?.state, SnpGuestState.LAUNCH);
    expectStatus(fw, fw.guestStatus(GCTX, 0x31_0000).status, SevStatus.INVALID_PAGE_STATE, 'Hypervisor page');
    expectStatus(fw, fw.guestStatus(GCTX, 64 * MiB).status, SevStatus.INVALID_ADDRESS, 'outside memory');
  });

  it('checks reserved bits and page crossing before the platform state, then the gctx', () => {
    const b = bareSystem();
    expectStatus(b.fw, b.fw.guestStatus(GCTX + 8, 0x30_0000).status, SevStatus.INVALID_PARAM);
    expectStatus(b.fw, b.fw.guestStatus(GCTX, 0x30_0ff0).status, SevStatus.INVALID_PARAM);
    expectStatus(b.fw, b.fw.guestStatus(GCTX, 0x30_0000).status, SevStatus.INVALID_PLATFORM_STATE);
    const s = initSystem();
    expectStatus(s.fw, s.fw.guestStatus(GCTX, 0x30_0000).status, SevStatus.INVALID_GUEST);
  });
});
