/**
 * Platform commands: SNP_INIT, SNP_INIT_EX, SNP_SHUTDOWN(_EX), SNP_PLATFORM_STATUS, SNP_DF_FLUSH,
 * SNP_CONFIG, SNP_COMMIT, SNP_FEATURE_INFO. Checks in the order of the Genoa firmware handlers
 * (sev_mcmd.c `snp_mcmd_init_common`, `snp_mcmd_shutdown_common`, `snp_mcmd_platform_status`,
 * `mcmd_df_flush_common`, `snp_mcmd_config`, `snp_mcmd_commit`, `snp_mcmd_feature_info`) [FW].
 */
import { HWCR_SMM_LOCK, Msr, Syscfg } from '../cpu/msrs.js';
import { PAGE_SIZE, W0_ASSIGNED, W0_IMMUTABLE, W0_SUBPAGE_MASK, W1_LOCK } from '../rmp/layout.js';
import { PageState } from '../rmp/page-state.js';
import { RMP_FW_ALIGN } from '../rmp/placement.js';
import {
  decodeConfig,
  decodeInitEx,
  decodeShutdownEx,
  encodePlatformStatus,
  FEATURE_INFO_SIZE,
  InitExFlag,
  Layouts,
  putU32,
  RANGE_LIST_HEADER_SIZE,
  RANGE_LIST_MAX_COUNT,
  RANGE_SIZE,
  SNP_PLATFORM_STATUS_SIZE,
  u32,
  u64,
} from './buffers.js';
import {
  ADDR_RESERVED_MASK,
  type FirmwareCore,
  hex,
  lookupPage,
  readMemory,
  spaOf,
  writeMemory,
} from './core.js';
import { decodeTcb, encodeTcb, tcbExceeds } from './profile.js';
import { LegacySevState, SnpPlatformState } from './state.js';
import { SevStatus } from './status.js';

/** Raw RMP quadword 0 the firmware writes [FW sev_rmp.c RMP_ENTRY_VAL_*]: HV-Fixed = immutable. */
export const W0_HV_FIXED = W0_IMMUTABLE;
/** Firmware = assigned | immutable, with the lock bit (w1 = W1_LOCK) set as on every firmware-written page. */
export const W0_FIRMWARE = W0_ASSIGNED | W0_IMMUTABLE;
/** Legacy HyperTransport hole the firmware always makes HV-Fixed [FW add_known_hvfixed_ranges]. */
const HT_HOLE_BASE = 0xfd_0000_0000;
const HT_HOLE_END = 0xfd_ffff_ffff;

/** The TCB the platform reports (SNP_CONFIG's, else the committed one) [FW get_reported_tcb]. */
export function reportedTcb(fw: FirmwareCore): bigint {
  return fw.state.configTcb !== 0n ? fw.state.configTcb : fw.state.committedTcb;
}

/** The running TCB (PLATFORM_STATUS.tcb_version, report CURRENT_TCB) [FW get_running_tcb]. */
export function currentTcb(fw: FirmwareCore): bigint {
  return encodeTcb(fw.profile.currentTcb, fw.profile.tcbLayout);
}

// ---- SNP_INIT / SNP_INIT_EX -------------------------------------------------------------------

/** Fill [firstPfn, lastPfn] (clipped to coverage) with the raw words w0/w1, q1 = 0. */
function fillRange(fw: FirmwareCore, first: number, last: number, w0: number, w1: number): void {
  const rmp = fw.platform.rmp;
  const end = Math.min(last, rmp.coveredPages - 1);
  for (let pfn = Math.max(0, first); pfn <= end; pfn++) rmp.writeEntryWords(pfn, w0, w1, 0, 0);
}

/**
 * RANGE_LIST ranges to make HV-Fixed, as `walk_reserved_list`: the list must fit its 4K page, its
 * reserved field and each range's be zero, bases aligned per `baseMbz`; a range overlapping the RMP
 * is trimmed around it. Returns the ranges (page-aligned [first, last] PFNs) or a status.
 */
export function walkRangeList(
  fw: FirmwareCore,
  listPaddr: bigint,
  baseMbz: bigint,
): { status: number; ranges: [number, number][] } {
  const ranges: [number, number][] = [];
  const spa = spaOf(fw, listPaddr);
  const head = spa < 0 ? null : readMemory(fw, spa, RANGE_LIST_HEADER_SIZE);
  if (head === null) {
    return {
      status: fw.fail(SevStatus.INVALID_ADDRESS, `RANGE_LIST at ${hex(listPaddr)} is outside memory`),
      ranges,
    };
  }
  const n = u32(head, 0);
  if (
    u32(head, 4) !== 0 ||
    n > RANGE_LIST_MAX_COUNT ||
    (spa % PAGE_SIZE) + RANGE_LIST_HEADER_SIZE + n * RANGE_SIZE > PAGE_SIZE
  ) {
    return {
      status: fw.fail(
        SevStatus.INVALID_PARAM,
        `RANGE_LIST: reserved field set, or ${n} ranges do not fit its page`,
      ),
      ranges,
    };
  }
  const body = readMemory(fw, spa + RANGE_LIST_HEADER_SIZE, n * RANGE_SIZE) ?? new Uint8Array(0);
  const { rmpBase, rmpEnd } = fw.platform;
  for (let i = 0; i < n; i++) {
    const base = u64(body, i * RANGE_SIZE) & ~(1n << BigInt(fw.profile.cbitPosition));
    const count = u32(body, i * RANGE_SIZE + 8);
    if (u32(body, i * RANGE_SIZE + 12) !== 0 || (base & baseMbz) !== 0n) {
      return {
        status: fw.fail(
          SevStatus.INVALID_PARAM,
          `RANGE_LIST entry ${i}: reserved field set or base ${hex(base)} misaligned`,
        ),
        ranges,
      };
    }
    if (count === 0 || base >= 1n << 52n) continue;
    const b = Number(base);
    const e = b + count * PAGE_SIZE - 1;
    if (rmpBase !== undefined && rmpEnd !== undefined && b <= rmpEnd && e >= rmpBase) {
      if (b < rmpBase) ranges.push([b / PAGE_SIZE, Math.floor((rmpBase - 1) / PAGE_SIZE)]);
      if (rmpEnd < e) ranges.push([Math.floor((rmpEnd + 1) / PAGE_SIZE), Math.floor(e / PAGE_SIZE)]);
    } else ranges.push([b / PAGE_SIZE, Math.floor(e / PAGE_SIZE)]);
  }
  return { status: SevStatus.SUCCESS, ranges };
}

/**
 * `configure_rmp`: every covered page HV-Fixed, system memory Hypervisor, the RANGE_LIST ranges and
 * the HT hole HV-Fixed, the RMP itself Firmware. Errors in the list are ignored, as the firmware
 * ignores `walk_reserved_list`'s status here.
 */
function configureRmp(fw: FirmwareCore, listPaddr: bigint | null): void {
  const rmp = fw.platform.rmp;
  const memPages = Math.min(rmp.coveredPages, fw.platform.memory.memoryBytes / PAGE_SIZE);
  for (let pfn = 0; pfn < memPages; pfn++) {
    if ((rmp.word(pfn, 0) & ~W0_SUBPAGE_MASK) | rmp.word(pfn, 1) | rmp.word(pfn, 2) | rmp.word(pfn, 3)) {
      rmp.writeEntryWords(pfn, 0, 0, 0, 0);
    }
  }
  fillRange(fw, memPages, rmp.coveredPages - 1, W0_HV_FIXED, 0);
  if (listPaddr !== null) {
    for (const [a, b] of walkRangeList(fw, listPaddr, ADDR_RESERVED_MASK).ranges)
      fillRange(fw, a, b, W0_HV_FIXED, 0);
  }
  fillRange(fw, HT_HOLE_BASE / PAGE_SIZE, Math.floor(HT_HOLE_END / PAGE_SIZE), W0_HV_FIXED, 0);
  const { rmpBase, rmpEnd } = fw.platform;
  if (rmpBase !== undefined && rmpEnd !== undefined) {
    fillRange(fw, Math.floor(rmpBase / PAGE_SIZE), Math.floor(rmpEnd / PAGE_SIZE), W0_FIRMWARE, W1_LOCK);
  }
  fw.contexts.clear();
}

/** The first CPU whose value differs from CPU 0's, else -1 (the firmware's "identical on all cores"). */
function firstDiffering(values: readonly bigint[]): number {
  return values.findIndex((v) => v !== values[0]);
}

/**
 * The platform checks of `snp_mcmd_init_common`, in its order, each INVALID_CONFIG [FW]: SME, SNP_EN
 * and VMPL_EN on every core; SYSCFG identical on every core with MFDM set; HWCR identical with SmmLock
 * set; RMP_BASE 1 MiB aligned and the RMP a whole number of MiB (`get_rmp_bounds`); VM_HSAVE_PA 0 on
 * every core when the RMP is (re)initialised. Not modelled: UMC encryption, SMKE, the microcode level,
 * TSEG and the MMIO map (always consistent in the model).
 */
function checkPlatformConfig(fw: FirmwareCore, initializeRmp: boolean): number {
  const p = fw.platform;
  const bad = (why: string) => fw.fail(SevStatus.INVALID_CONFIG, why);
  const msrs = p.msrs;
  if (msrs === undefined) {
    if (p.snpEnabled === false) return bad('SYSCFG.SNP_EN is not set on all cores');
  } else {
    const all = (index: number) => Array.from({ length: msrs.cpuCount }, (_, c) => msrs.rdmsr(c, index));
    const syscfg = all(Msr.SYSCFG);
    for (const [bit, name] of SYSCFG_REQUIRED) {
      const cpu = syscfg.findIndex((v) => (v & bit) === 0n);
      if (cpu >= 0) return bad(`SYSCFG.${name} is clear on CPU ${cpu}`);
    }
    let cpu = firstDiffering(syscfg);
    if (cpu >= 0)
      return bad(`SYSCFG differs between cores: CPU 0 ${hex(syscfg[0]!)}, CPU ${cpu} ${hex(syscfg[cpu]!)}`);
    if ((syscfg[0]! & Syscfg.MFDM) === 0n) return bad('SYSCFG.MFDM (MtrrFixDramModEn) is clear');
    const hwcr = all(Msr.HWCR);
    cpu = firstDiffering(hwcr);
    if (cpu >= 0)
      return bad(`HWCR differs between cores: CPU 0 ${hex(hwcr[0]!)}, CPU ${cpu} ${hex(hwcr[cpu]!)}`);
    if ((hwcr[0]! & HWCR_SMM_LOCK) === 0n) return bad('HWCR.SmmLock is clear');
  }
  const { rmpBase, rmpEnd } = p;
  if (rmpBase !== undefined && rmpEnd !== undefined) {
    if (rmpBase % RMP_FW_ALIGN !== 0 || (rmpEnd - rmpBase + 1) % RMP_FW_ALIGN !== 0) {
      return bad(
        `RMP_BASE ${hex(rmpBase)} / RMP_END ${hex(rmpEnd)}: the base must be 1 MiB aligned and the RMP a multiple of 1 MiB`,
      );
    }
  }
  if (initializeRmp && msrs !== undefined) {
    for (let c = 0; c < msrs.cpuCount; c++) {
      const hsave = msrs.rdmsr(c, Msr.VM_HSAVE_PA);
      if (hsave !== 0n) return bad(`VM_HSAVE_PA is ${hex(hsave)} on CPU ${c}, not 0 (a VM may be running)`);
    }
  }
  return SevStatus.SUCCESS;
}

/** SYSCFG bits SNP_INIT needs on every core [FW snp_mcmd_init_common]. */
const SYSCFG_REQUIRED: readonly (readonly [bigint, string])[] = [
  [Syscfg.MEM_ENCRYPT, 'MemEncryptionModEn (SME)'],
  [Syscfg.SNP_EN, 'SNP_EN'],
  [Syscfg.VMPL_EN, 'VMPL_EN'],
];

function initCommon(fw: FirmwareCore, b: Uint8Array | null): number {
  const ex = b === null ? null : decodeInitEx(b);
  if (ex) {
    const cipherHiding = (fw.profile.initExFlagsMask & InitExFlag.CIPHERTEXT_HIDING_EN) !== 0;
    if (
      (ex.flags & ~fw.profile.initExFlagsMask) !== 0 ||
      ex.rsvd1 !== 0 ||
      !ex.rsvd2Zero ||
      (!cipherHiding && ex.maxSnpAsid !== 0)
    ) {
      return fw.fail(SevStatus.INVALID_PARAM, `SNP_INIT_EX: reserved bits set (flags ${hex(ex.flags)})`);
    }
  }
  if (fw.state.snpState !== SnpPlatformState.UNINIT || fw.state.legacySevState !== LegacySevState.UNINIT) {
    return fw.fail(
      SevStatus.INVALID_PLATFORM_STATE,
      fw.state.snpState !== SnpPlatformState.UNINIT
        ? 'SNP is already INIT'
        : 'legacy SEV is not UNINIT (init SNP first)',
    );
  }
  let initializeRmp = true;
  if (ex && !ex.initRmp) {
    if (!fw.state.rmpInitialized) {
      return fw.fail(
        SevStatus.RMP_INIT_REQUIRED,
        'SNP_INIT_EX with INIT_RMP=0 but the RMP was never initialised',
      );
    }
    initializeRmp = false;
  }
  if (ex?.listPaddrEn && !initializeRmp) {
    return fw.fail(SevStatus.INVALID_PARAM, 'SNP_INIT_EX: LIST_PADDR_EN without INIT_RMP');
  }
  const config = checkPlatformConfig(fw, initializeRmp);
  if (config !== SevStatus.SUCCESS) return config;
  if (initializeRmp) configureRmp(fw, ex?.listPaddrEn ? ex.listPaddr : null);
  fw.asids.resetAllDirty();
  fw.state.snpState = SnpPlatformState.INIT;
  fw.state.rmpInitialized = true;
  fw.state.guestCount = 0;
  return SevStatus.SUCCESS;
}

export function snpInit(fw: FirmwareCore): number {
  return initCommon(fw, null);
}

export function snpInitEx(fw: FirmwareCore, b: Uint8Array): number {
  return initCommon(fw, b);
}

// ---- SNP_SHUTDOWN / SNP_SHUTDOWN_EX -----------------------------------------------------------

function shutdownCommon(fw: FirmwareCore, b: Uint8Array | null): number {
  if (fw.state.legacySevState !== LegacySevState.UNINIT) {
    return fw.fail(SevStatus.INVALID_PLATFORM_STATE, 'legacy SEV is not UNINIT');
  }
  if (fw.state.snpState === SnpPlatformState.UNINIT) return SevStatus.SUCCESS;
  if (fw.asids.anyNotClean()) {
    return fw.fail(
      SevStatus.DFFLUSH_REQUIRED,
      'an ASID is not clean on every CCX (dirty, allocated or in use)',
    );
  }
  const ex = b === null ? null : decodeShutdownEx(b);
  if (ex) {
    if (ex.len !== Layouts.shutdownEx.size)
      return fw.fail(SevStatus.INVALID_PARAM, `SNP_SHUTDOWN_EX: len ${ex.len} != 8`);
    if (ex.rsvd !== 0) return fw.fail(SevStatus.INVALID_PARAM, 'SNP_SHUTDOWN_EX: reserved bits set');
    if (ex.x86SnpShutdown && (!ex.iommuSnpShutdown || !fw.profile.x86SnpShutdown)) {
      return fw.fail(
        SevStatus.INVALID_PARAM,
        'SNP_SHUTDOWN_EX: X86_SNP_SHUTDOWN needs IOMMU_SNP_SHUTDOWN and SMU support',
      );
    }
  }
  fw.state.snpState = SnpPlatformState.UNINIT;
  if (ex?.iommuSnpShutdown) fw.state.rmpInitialized = false;
  // [FW] X86_SNP_SHUTDOWN: the SMU clears SYSCFG.SNP_EN on every core (x86 writes could not).
  if (ex?.x86SnpShutdown) fw.platform.msrs?.smuClearSnpEn();
  return SevStatus.SUCCESS;
}

export function snpShutdown(fw: FirmwareCore): number {
  return shutdownCommon(fw, null);
}

export function snpShutdownEx(fw: FirmwareCore, b: Uint8Array): number {
  return shutdownCommon(fw, b);
}

// ---- status / flush / config / commit / feature info -----------------------------------------

/** Output page checks of PLATFORM_STATUS / FEATURE_INFO: Firmware or Default once SNP is up. */
function outputPageState(fw: FirmwareCore, addr: bigint, what: string): number {
  if (fw.state.snpState === SnpPlatformState.UNINIT) return SevStatus.SUCCESS;
  const l = lookupPage(fw, addr);
  if (l.status !== SevStatus.SUCCESS)
    return fw.fail(l.status, `${what} page ${hex(addr)} lies inside the RMP`);
  if (l.state !== PageState.FIRMWARE && l.state !== PageState.DEFAULT) {
    return fw.fail(
      SevStatus.INVALID_PAGE_STATE,
      `${what} page ${hex(addr)} is ${l.state}, not Firmware or Default`,
    );
  }
  return SevStatus.SUCCESS;
}

export function snpPlatformStatus(fw: FirmwareCore, b: Uint8Array): number {
  const addr = u64(b, 0);
  if (Number(addr & ADDR_RESERVED_MASK) + SNP_PLATFORM_STATUS_SIZE > PAGE_SIZE) {
    return fw.fail(SevStatus.INVALID_PARAM, `status buffer at ${hex(addr)} crosses a page boundary`);
  }
  const st = outputPageState(fw, addr, 'status');
  if (st !== SevStatus.SUCCESS) return st;
  const p = fw.profile;
  const out = encodePlatformStatus({
    apiMajor: p.apiMajor,
    apiMinor: p.apiMinor,
    state: fw.state.snpState,
    isRmpInitialized: fw.state.rmpInitialized,
    buildId: p.buildId,
    maskChipId: fw.state.maskChipId,
    maskChipKey: fw.state.maskChipKey,
    vlekEn: false,
    featureInfo: true,
    guestCount: fw.state.guestCount,
    currentTcb: currentTcb(fw),
    reportedTcb: reportedTcb(fw),
  });
  return writeMemory(fw, spaOf(fw, addr), out);
}

export function snpDfFlush(fw: FirmwareCore): number {
  return fw.asids.dfFlush()
    ? SevStatus.SUCCESS
    : fw.fail(SevStatus.WBINVD_REQUIRED, 'WBINVD has not run on every core since the last deactivation');
}

export function snpConfig(fw: FirmwareCore, b: Uint8Array): number {
  const c = decodeConfig(b);
  if (c.rsvd !== 0 || !c.rsvd1Zero)
    return fw.fail(SevStatus.INVALID_PARAM, 'SNP_CONFIG: reserved fields set');
  const layout = fw.profile.tcbLayout;
  let requested = c.reportedTcb;
  if (requested === 0n) requested = fw.state.committedTcb;
  else if (tcbExceeds(decodeTcb(requested, layout), decodeTcb(fw.state.committedTcb, layout))) {
    return fw.fail(
      SevStatus.INVALID_PARAM,
      `SNP_CONFIG: REPORTED_TCB ${hex(requested)} exceeds the committed TCB`,
    );
  }
  fw.state.configTcb = requested;
  fw.state.maskChipId = c.maskChipId;
  fw.state.maskChipKey = c.maskChipKey;
  return SevStatus.SUCCESS;
}

export function snpCommit(fw: FirmwareCore, b: Uint8Array): number {
  const len = u32(b, 0);
  if (len !== Layouts.commit.size) return fw.fail(SevStatus.INVALID_PARAM, `SNP_COMMIT: length ${len} != 4`);
  const p = fw.profile;
  fw.state.committedApiMajor = p.apiMajor;
  fw.state.committedApiMinor = p.apiMinor;
  fw.state.committedBuildId = p.buildId;
  fw.state.committedTcb = encodeTcb(p.currentTcb, p.tcbLayout);
  fw.state.configTcb = 0n; // [FW] a commit flushes any CONFIG'd TCB
  return SevStatus.SUCCESS;
}

export function snpFeatureInfo(fw: FirmwareCore, b: Uint8Array): number {
  if (u32(b, 0) !== Layouts.featureInfo.size) {
    return fw.fail(SevStatus.INVALID_PARAM, `SNP_FEATURE_INFO: length ${u32(b, 0)} != 16`);
  }
  const ecxIn = u32(b, 4);
  const addr = u64(b, 8);
  if ((addr & 3n) !== 0n || PAGE_SIZE - Number(addr & ADDR_RESERVED_MASK) < FEATURE_INFO_SIZE) {
    return fw.fail(
      SevStatus.INVALID_ADDRESS,
      `SNP_FEATURE_INFO: output ${hex(addr)} misaligned or crossing a page`,
    );
  }
  const st = outputPageState(fw, addr, 'FEATURE_INFO');
  if (st !== SevStatus.SUCCESS) return st;
  const words = ecxIn === 0 || ecxIn === 1 ? fw.profile.featureInfo[ecxIn] : undefined;
  if (!words) return fw.fail(SevStatus.INVALID_PARAM, `SNP_FEATURE_INFO: ECX_IN ${ecxIn} is not 0 or 1`);
  const out = new Uint8Array(FEATURE_INFO_SIZE);
  words.forEach((w, i) => {
    putU32(out, i * 4, i === 2 && ecxIn === 0 && !fw.profile.x86SnpShutdown ? w & ~2 : w);
  });
  return writeMemory(fw, spaOf(fw, addr), out);
}
