import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  createSnpSystem,
  encodeAddr,
  encodePageSetState,
  encodeRangeList,
  encodeThreeAddr,
  Firmware,
  GENOA_FIRMWARE,
  makeRmpEntry,
  PageState,
  Rmp,
  SevStatus,
  SnpCommandId,
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
  type Sys,
  startGuest,
} from './fw-fixture.js';

const P = 0x20_0000;
const pfn = (pa: number) => pa / 0x1000;
const FW_LOCKED = makeRmpEntry({ assigned: true, immutable: true, lock: true });

describe('SNP_PAGE_RECLAIM', () => {
  it('Firmware -> Reclaim, Pre-Guest -> Guest-Invalid, Pre-Swap -> Guest-Valid, Metadata -> Reclaim (tag cleared)', () => {
    const s = initSystem();
    markFirmware(s.platform, P);
    expectStatus(s.fw, s.fw.pageReclaim(P), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.pageState(pfn(P)), PageState.RECLAIM);
    makePreGuest(s.platform, P + 0x1000, 0x5000, 3);
    expectStatus(s.fw, s.fw.pageReclaim(P + 0x1000), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.pageState(pfn(P) + 1), PageState.GUEST_INVALID);
    s.platform.firmwareWrite(
      pfn(P) + 2,
      makeRmpEntry({ assigned: true, validated: true, immutable: true, asid: 3 }),
    );
    assert.equal(s.platform.rmp.pageState(pfn(P) + 2), PageState.PRE_SWAP);
    expectStatus(s.fw, s.fw.pageReclaim(P + 0x2000), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.pageState(pfn(P) + 2), PageState.GUEST_VALID);
    const tagged = (2 ** 36 + 0x77) * 0x1000; // GPA-field tag [38:36] = 1 (Metadata), GFN 0x77
    s.platform.firmwareWrite(
      pfn(P) + 3,
      makeRmpEntry({ assigned: true, immutable: true, lock: true, gpa: tagged }),
    );
    assert.equal(s.platform.rmp.pageState(pfn(P) + 3), PageState.METADATA);
    expectStatus(s.fw, s.fw.pageReclaim(P + 0x3000), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.pageState(pfn(P) + 3), PageState.RECLAIM);
    assert.equal(s.platform.rmp.entry(pfn(P) + 3)?.gpa, 0x77000);
  });

  it('a mutable page is a successful no-op; Context and HV-Fixed pages -> INVALID_PAGE_STATE', () => {
    const s = initSystem();
    expectStatus(s.fw, s.fw.pageReclaim(P), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.pageState(pfn(P)), PageState.HYPERVISOR);
    startGuest(s);
    expectStatus(s.fw, s.fw.pageReclaim(GCTX), SevStatus.INVALID_PAGE_STATE, 'Context');
    s.platform.firmwareWrite(pfn(P), makeRmpEntry({ immutable: true }));
    expectStatus(s.fw, s.fw.pageReclaim(P), SevStatus.INVALID_PAGE_STATE, 'HV-Fixed');
  });

  it('2 MB: the RMP size must match the request; a 2 MB Pre-Guest page becomes Guest-Invalid', () => {
    const s = initSystem();
    makePreGuest(s.platform, 0x40_0000, 0, 1, 1);
    expectStatus(s.fw, s.fw.pageReclaim(0x40_0000, 0), SevStatus.INVALID_PAGE_SIZE);
    expectStatus(s.fw, s.fw.pageReclaim(0x40_0000, 1), SevStatus.SUCCESS);
    assert.equal(s.platform.rmp.pageState(0x400), PageState.GUEST_INVALID);
    assert.equal(makeShared(s.platform, 0x40_0000, 1), 0, 'KVM can then make it shared as a 2 MB page');
    // an (unusual) 2 MB entry at a 4K-aligned address
    s.platform.firmwareWrite(0x601, makeRmpEntry({ assigned: true, immutable: true, asid: 1, pageSize: 1 }));
    expectStatus(s.fw, s.fw.pageReclaim(0x60_1000, 1), SevStatus.INVALID_ADDRESS);
  });

  it('INVALID_PARAM for bits 11:1, INVALID_PLATFORM_STATE, INVALID_ADDRESS outside memory', () => {
    const s = initSystem();
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_PAGE_RECLAIM, encodeAddr(P | 0x2)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.pageReclaim(64 * MiB), SevStatus.INVALID_ADDRESS);
    const b = bareSystem();
    expectStatus(b.fw, b.fw.pageReclaim(P), SevStatus.INVALID_PLATFORM_STATE);
  });
});

describe('SNP_PAGE_UNSMASH', () => {
  const BASE = 0x40_0000;

  function smashed(s: Sys, asid = 1, gpa = 0x20_0000): void {
    for (let i = 0; i < 512; i++) makePreGuest(s.platform, BASE + i * 0x1000, gpa + i * 0x1000, asid);
  }

  it('joins 512 matching 4K Pre-Guest entries into one 2 MB entry that KVM can later reclaim as 2 MB', () => {
    const s = initSystem();
    smashed(s);
    expectStatus(s.fw, s.fw.pageUnsmash(BASE), SevStatus.SUCCESS);
    const head = s.platform.rmp.entry(pfn(BASE))!;
    assert.equal(head.pageSize, 1);
    assert.equal(s.platform.rmp.pageState(pfn(BASE)), PageState.PRE_GUEST);
    assert.equal(s.platform.rmp.subpageCount(pfn(BASE)), 0);
    assert.deepEqual(s.platform.rmp.verifyCounters(), []);
    expectStatus(s.fw, s.fw.pageReclaim(BASE, 1), SevStatus.SUCCESS);
    assert.equal(makeShared(s.platform, BASE, 1), 0);
  });

  it('refuses mismatching entries with INVALID_PAGE_STATE', () => {
    const cases: [string, (s: Sys) => void][] = [
      ['a Hypervisor entry', (s) => s.platform.firmwareWrite(pfn(BASE) + 5, makeRmpEntry({}))],
      [
        'another ASID',
        (s) => s.platform.firmwareWrite(pfn(BASE) + 7, { ...s.platform.rmp.entry(pfn(BASE) + 7)!, asid: 2 }),
      ],
      [
        'a GPA gap',
        (s) => s.platform.firmwareWrite(pfn(BASE) + 9, { ...s.platform.rmp.entry(pfn(BASE) + 9)!, gpa: 0 }),
      ],
      [
        'other VMPL masks',
        (s) =>
          s.platform.firmwareWrite(pfn(BASE) + 1, {
            ...s.platform.rmp.entry(pfn(BASE) + 1)!,
            vmplPerms: [0x1f, 1, 0, 0],
          }),
      ],
      [
        'a VMSA page',
        (s) =>
          s.platform.firmwareWrite(pfn(BASE) + 3, { ...s.platform.rmp.entry(pfn(BASE) + 3)!, vmsa: true }),
      ],
      [
        'a mixed state (Pre-Swap)',
        (s) =>
          s.platform.firmwareWrite(pfn(BASE) + 11, {
            ...s.platform.rmp.entry(pfn(BASE) + 11)!,
            validated: true,
          }),
      ],
    ];
    for (const [what, mutate] of cases) {
      const s = initSystem();
      smashed(s);
      mutate(s);
      expectStatus(s.fw, s.fw.pageUnsmash(BASE), SevStatus.INVALID_PAGE_STATE, what);
      assert.equal(s.platform.rmp.entry(pfn(BASE))!.pageSize, 0, `${what}: nothing written`);
    }
    const t = initSystem();
    smashed(t, 1, 0x1000);
    expectStatus(t.fw, t.fw.pageUnsmash(BASE), SevStatus.INVALID_PAGE_STATE, 'GPA not 2 MB aligned');
  });

  it('INVALID_PARAM (reserved bits, not 2 MB aligned), INVALID_PLATFORM_STATE, Default -> INVALID_PAGE_STATE', () => {
    const s = initSystem();
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_PAGE_UNSMASH, encodeAddr(BASE | 0x10)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.pageUnsmash(BASE + 0x1000), SevStatus.INVALID_PARAM);
    expectStatus(bareSystem().fw, bareSystem().fw.pageUnsmash(BASE), SevStatus.INVALID_PLATFORM_STATE);
    const { firmware: fw } = createSnpSystem({ memoryBytes: 64 * MiB, coveredBytes: 32 * MiB, init: true });
    expectStatus(fw, fw.pageUnsmash(48 * MiB), SevStatus.INVALID_PAGE_STATE, 'not RMP-covered');
  });

  it('a 2 MB range overlapping the RMP -> INVALID_ADDRESS', () => {
    const rmp = new Rmp({ coveredBytes: 16 * MiB });
    const memory = new SystemMemory({ memoryBytes: 16 * MiB });
    // RMP_BASE 1 MiB aligned and the RMP a whole number of MiB, or SNP_INIT refuses the platform.
    const fw = new Firmware({ rmp, memory, rmpBase: 0xb0_0000, rmpEnd: 0xbf_ffff }, GENOA_FIRMWARE);
    expectStatus(fw, fw.snpInit(), SevStatus.SUCCESS);
    expectStatus(fw, fw.pageUnsmash(0xa0_0000), SevStatus.INVALID_ADDRESS);
  });
});

describe('SNP_PAGE_SET_STATE', () => {
  const LIST = 0x30_0000;

  it('Firmware pages the firmware wrote (lock bit set) -> HV-Fixed', () => {
    const s = initSystem();
    for (let i = 0; i < 3; i++) s.platform.firmwareWrite(pfn(0x40_0000) + i, FW_LOCKED);
    s.platform.memory.write(LIST, encodeRangeList([{ base: 0x40_0000, pageCount: 3 }]));
    expectStatus(s.fw, s.fw.pageSetState(LIST), SevStatus.SUCCESS);
    for (let i = 0; i < 3; i++) assert.equal(s.platform.rmp.pageState(0x400 + i), PageState.HV_FIXED);
    assert.equal(s.platform.rmp.pageState(0x403), PageState.HYPERVISOR);
    assert.deepEqual(s.platform.rmp.verifyCounters(), []);
  });

  it('refuses anything but that exact Firmware value: an RMPUPDATE-made Firmware page (lock clear) -> INVALID_PAGE_STATE', () => {
    const s = initSystem();
    markFirmware(s.platform, 0x40_0000);
    s.platform.memory.write(LIST, encodeRangeList([{ base: 0x40_0000, pageCount: 1 }]));
    expectStatus(s.fw, s.fw.pageSetState(LIST), SevStatus.INVALID_PAGE_STATE);
    assert.match(s.fw.lastError?.reason ?? '', /lock bit/);
    s.platform.firmwareWrite(0x400, FW_LOCKED);
    s.platform.memory.write(LIST, encodeRangeList([{ base: 0x40_0000, pageCount: 2 }]));
    expectStatus(s.fw, s.fw.pageSetState(LIST), SevStatus.INVALID_PAGE_STATE, 'second page is Hypervisor');
    assert.equal(s.platform.rmp.pageState(0x400), PageState.FIRMWARE, 'all checked before any write');
  });

  it('INVALID_LEN, INVALID_PARAM (reserved, list, base alignment), INVALID_PLATFORM_STATE, INVALID_ADDRESS', () => {
    const s = initSystem();
    const bad = encodePageSetState(LIST);
    bad[0] = 8;
    expectStatus(s.fw, s.fw.command(SnpCommandId.SNP_PAGE_SET_STATE, bad), SevStatus.INVALID_LEN);
    const rsvd = encodePageSetState(LIST);
    rsvd[4] = 1;
    expectStatus(s.fw, s.fw.command(SnpCommandId.SNP_PAGE_SET_STATE, rsvd), SevStatus.INVALID_PARAM);
    expectStatus(s.fw, s.fw.pageSetState(LIST + 8), SevStatus.INVALID_PARAM, 'list address bits 11:0');
    s.platform.memory.write(LIST, encodeRangeList([{ base: 0x40_1000, pageCount: 1 }]));
    expectStatus(s.fw, s.fw.pageSetState(LIST), SevStatus.INVALID_PARAM, 'range base not 2 MB aligned');
    const many = encodeRangeList([{ base: 0, pageCount: 0 }]);
    many[0] = 0xff;
    many[1] = 0x01; // 511 ranges: more than 255
    s.platform.memory.write(LIST, many);
    expectStatus(s.fw, s.fw.pageSetState(LIST), SevStatus.INVALID_PARAM, 'too many ranges');
    expectStatus(s.fw, s.fw.pageSetState(64 * MiB), SevStatus.INVALID_ADDRESS, 'list outside memory');
    expectStatus(bareSystem().fw, bareSystem().fw.pageSetState(LIST), SevStatus.INVALID_PLATFORM_STATE);
  });
});

describe('SNP_DBG_DECRYPT / SNP_DBG_ENCRYPT', () => {
  const DST = 0x30_0000;
  const DEBUG = POLICY | (1n << 19n);

  it('copy a 4 KiB page out of and into a DEBUG guest', () => {
    const s = initSystem();
    const { gctx, pagePa } = runningGuest(s, { policy: DEBUG });
    s.platform.memory.write(pagePa, new Uint8Array(4096).fill(0x3c));
    markFirmware(s.platform, DST);
    expectStatus(s.fw, s.fw.dbgDecrypt(gctx, pagePa, DST), SevStatus.SUCCESS);
    assert.deepEqual(s.platform.memory.read(DST, 4096), new Uint8Array(4096).fill(0x3c));
    makePreGuest(s.platform, 0x31_0000, 0x9000, 1);
    s.platform.memory.write(0x32_0000, new Uint8Array(4096).fill(0x77));
    expectStatus(s.fw, s.fw.dbgEncrypt(gctx, 0x32_0000, 0x31_0000), SevStatus.SUCCESS);
    assert.deepEqual(s.platform.memory.read(0x31_0000, 4096), new Uint8Array(4096).fill(0x77));
    expectStatus(
      s.fw,
      s.fw.dbgEncrypt(gctx, 1 << 30, 0x31_0000),
      SevStatus.INVALID_ADDRESS,
      'source outside memory',
    );
  });

  it('resolves a 4K address inside a 2 MB guest page through the 2 MB entry', () => {
    const s = initSystem();
    startGuest(s, { asid: 1, policy: DEBUG });
    makePreGuest(s.platform, 0x40_0000, 0, 1, 1);
    markFirmware(s.platform, DST);
    expectStatus(s.fw, s.fw.dbgDecrypt(GCTX, 0x40_5000, DST), SevStatus.SUCCESS);
  });

  it('DECRYPT: every status in firmware order', () => {
    const s = initSystem();
    const { gctx, pagePa } = runningGuest(s);
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_DBG_DECRYPT, encodeThreeAddr(gctx, pagePa + 1, DST)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.dbgDecrypt(DST, pagePa, DST), SevStatus.INVALID_GUEST);
    expectStatus(
      s.fw,
      s.fw.dbgDecrypt(gctx, pagePa, DST),
      SevStatus.INVALID_PAGE_STATE,
      'destination Hypervisor',
    );
    markFirmware(s.platform, DST);
    expectStatus(
      s.fw,
      s.fw.dbgDecrypt(gctx, 0x50_0000, DST),
      SevStatus.INVALID_PAGE_STATE,
      'source Hypervisor',
    );
    makePreGuest(s.platform, 0x50_0000, 0, 9);
    expectStatus(s.fw, s.fw.dbgDecrypt(gctx, 0x50_0000, DST), SevStatus.INVALID_PAGE_OWNER);
    expectStatus(s.fw, s.fw.dbgDecrypt(gctx, pagePa, DST), SevStatus.POLICY_FAILURE, 'no POLICY.DEBUG');
    expectStatus(
      bareSystem().fw,
      bareSystem().fw.dbgDecrypt(gctx, pagePa, DST),
      SevStatus.INVALID_PLATFORM_STATE,
    );
  });

  it('ENCRYPT checks the platform state before the reserved bits; then state, owner, DEBUG', () => {
    const b = bareSystem();
    expectStatus(
      b.fw,
      b.fw.command(SnpCommandId.SNP_DBG_ENCRYPT, encodeThreeAddr(1, 2, 3)),
      SevStatus.INVALID_PLATFORM_STATE,
    );
    expectStatus(
      b.fw,
      b.fw.command(SnpCommandId.SNP_DBG_DECRYPT, encodeThreeAddr(1, 2, 3)),
      SevStatus.INVALID_PARAM,
    );
    const s = initSystem();
    const { gctx, pagePa } = runningGuest(s);
    expectStatus(
      s.fw,
      s.fw.command(SnpCommandId.SNP_DBG_ENCRYPT, encodeThreeAddr(gctx, DST, pagePa + 8)),
      SevStatus.INVALID_PARAM,
    );
    expectStatus(s.fw, s.fw.dbgEncrypt(DST, DST, pagePa), SevStatus.INVALID_GUEST);
    expectStatus(
      s.fw,
      s.fw.dbgEncrypt(gctx, DST, pagePa),
      SevStatus.INVALID_PAGE_STATE,
      'Guest-Valid destination',
    );
    makePreGuest(s.platform, 0x50_0000, 0, 9);
    expectStatus(s.fw, s.fw.dbgEncrypt(gctx, DST, 0x50_0000), SevStatus.INVALID_PAGE_OWNER);
    makePreGuest(s.platform, 0x51_0000, 0x1000, 1);
    expectStatus(s.fw, s.fw.dbgEncrypt(gctx, DST, 0x51_0000), SevStatus.POLICY_FAILURE);
  });

  it('INVALID_ADDRESS when the Firmware destination lies outside system memory', () => {
    const rmp = new Rmp({ coveredBytes: 32 * MiB });
    const memory = new SystemMemory({ memoryBytes: 16 * MiB });
    const fw = new Firmware({ rmp, memory }, GENOA_FIRMWARE, { random: counterRandom() });
    fw.snpInit();
    fw.noteWbinvd();
    fw.dfFlush();
    rmp.writeEntry(pfn(GCTX), FW_LOCKED);
    fw.gctxCreate(GCTX);
    fw.launchStart({ gctxPaddr: GCTX, policy: DEBUG });
    fw.activate(GCTX, 1);
    rmp.writeEntry(pfn(P), makeRmpEntry({ assigned: true, immutable: true, asid: 1 }));
    rmp.writeEntry(0x1800, FW_LOCKED);
    expectStatus(fw, fw.dbgDecrypt(GCTX, P, 0x180_0000), SevStatus.INVALID_ADDRESS);
  });
});
