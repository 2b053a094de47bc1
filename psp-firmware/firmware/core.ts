/**
 * What every command handler works with: the firmware's state, its profile, and the platform it
 * reads and writes (RMP, memory) — plus the lookups every handler repeats in the same firmware order
 * (`rmp_get_addr_entry_state`: an address inside the RMP is INVALID_PARAM, beyond RMP coverage is
 * the Default state [FW sev_rmp.c]).
 */
import type { ChipIdentity } from '../attestation/vcek.js';
import type { CpuMsrs } from '../cpu/msrs.js';
import type { LaunchDigest } from '../measure/page-info.js';
import type { SystemMemory } from '../memory.js';
import type { RmpEntry } from '../rmp/entry.js';
import { PAGE_SIZE } from '../rmp/layout.js';
import { PageState } from '../rmp/page-state.js';
import type { Rmp } from '../rmp/table.js';
import type { GuestContextPage } from './guest-context.js';
import type { FirmwareProfile } from './profile.js';
import { type AsidTable, type PlatformFirmwareState, SnpPlatformState } from './state.js';
import { SevStatus } from './status.js';

/**
 * The platform as the firmware sees it. `Platform` (psp-firmware/platform.ts) satisfies it; only
 * public methods of the RMP and memory are used: `rmp.entry/pageState/writeEntry/asidCount` and
 * `memory.read/write/fill`. `rmp.writeEntry` keeps the per-ASID and subpage counters, as the
 * firmware's own RMP writes must.
 */
export interface FirmwarePlatform {
  readonly rmp: Rmp;
  readonly memory: SystemMemory;
  /** The AMD-SP's own RMP write (counters kept); `rmp.writeEntry` when absent. */
  firmwareWrite?(pfn: number, entry: RmpEntry): void;
  /** SYSCFG.SNP_EN on all cores; SNP_INIT fails with INVALID_CONFIG when false (used without `msrs`). */
  readonly snpEnabled?: boolean;
  /** RMP_BASE / RMP_END (inclusive) when the platform places the RMP table in system memory. */
  readonly rmpBase?: number | undefined;
  readonly rmpEnd?: number | undefined;
  /** Per-CPU MSRs: SNP_INIT's configuration checks, SNP_SHUTDOWN_EX's X86_SNP_SHUTDOWN (`Platform.msrs`). */
  readonly msrs?: Pick<CpuMsrs, 'cpuCount' | 'rdmsr' | 'smuClearSnpEn'>;
  /** Observes the host's WBINVD on all CPUs (`Platform.wbinvd`): sets every WBINVD_DONE flag. */
  onWbinvd?(listener: () => void): void;
}

/** [FW] SNP_ADDR_RESERVED_MASK: bits 11:0 of a page address are reserved. */
export const ADDR_RESERVED_MASK = 0xfffn;
/** [FW] SNP_ADDR_PAGE_RECLAIM_RESERVED_MASK / SNP_ADDR_LAUNCH_FINISH_RESERVED_MASK: bits 11:1. */
export const ADDR_RECLAIM_RESERVED_MASK = 0xffen;
/** [FW] PADDR_INVALID (-1): "no migration agent". */
export const PADDR_INVALID = 0xffff_ffff_ffff_ffffn;

/** A page looked up the way the firmware does. */
export interface PageLookup {
  /** SUCCESS, or INVALID_PARAM when the address lies inside the RMP itself. */
  readonly status: number;
  readonly state: PageState;
  /** -1 when the address cannot be a system address (Default). */
  readonly pfn: number;
  /** Undefined for Default pages. */
  readonly entry: RmpEntry | undefined;
}

export interface FirmwareCore {
  readonly profile: FirmwareProfile;
  readonly platform: FirmwarePlatform;
  readonly state: PlatformFirmwareState;
  readonly asids: AsidTable;
  /** Guest contexts by Context-page PFN. */
  readonly contexts: Map<number, GuestContextPage>;
  /** Records why a command failed (for `Firmware.lastError`) and returns `status`. */
  fail(status: number, reason: string): number;
  /** Random bytes (the PSP's TRNG). */
  random(n: number): Uint8Array;
  /** CHIP_ID and the VCEK of the simulated part. */
  readonly identity: ChipIdentity;
  /** The PAGE_INFO chain of the measurement module, reused for every LAUNCH_UPDATE step. */
  readonly launchDigest: LaunchDigest;
}

/** Address from a command buffer with the C-bit cleared [FW CLEAR_CBIT]; -1 beyond 2^52. */
export function spaOf(fw: FirmwareCore, addr: bigint): number {
  const a = addr & ~(1n << BigInt(fw.profile.cbitPosition));
  return a >= 1n << 52n ? -1 : Number(a);
}

/** True when `spa` lies inside the RMP table [FW get_rmp_paddr]. */
export function insideRmp(fw: FirmwareCore, spa: number): boolean {
  const { rmpBase, rmpEnd } = fw.platform;
  return rmpBase !== undefined && rmpEnd !== undefined && spa >= rmpBase && spa <= rmpEnd;
}

const DEFAULT_LOOKUP: PageLookup = Object.freeze({
  status: SevStatus.SUCCESS,
  state: PageState.DEFAULT,
  pfn: -1,
  entry: undefined,
});

/** `rmp_get_addr_entry_state` of a command-buffer address. */
export function lookupPage(fw: FirmwareCore, addr: bigint): PageLookup {
  const spa = spaOf(fw, addr);
  if (spa < 0) return DEFAULT_LOOKUP;
  if (insideRmp(fw, spa)) {
    return { status: SevStatus.INVALID_PARAM, state: PageState.INVALID, pfn: -1, entry: undefined };
  }
  const pfn = Math.floor(spa / PAGE_SIZE);
  const rmp = fw.platform.rmp;
  if (!rmp.isCovered(pfn)) return { ...DEFAULT_LOOKUP, pfn };
  return { status: SevStatus.SUCCESS, state: rmp.pageState(pfn), pfn, entry: rmp.entry(pfn) };
}

/**
 * Looks up three command-buffer addresses in order, as the handlers taking a gctx and two pages do;
 * the first address inside the RMP fails the command with INVALID_PARAM.
 */
export function lookupThree(
  fw: FirmwareCore,
  a: bigint,
  b: bigint,
  c: bigint,
): { status: number; pages: readonly [PageLookup, PageLookup, PageLookup] } {
  const pages = [lookupPage(fw, a), lookupPage(fw, b), lookupPage(fw, c)] as const;
  for (let i = 0; i < 3; i++) {
    if (pages[i]!.status !== SevStatus.SUCCESS) {
      return { status: fw.fail(pages[i]!.status, `${hex([a, b, c][i]!)} lies inside the RMP`), pages };
    }
  }
  return { status: SevStatus.SUCCESS, pages };
}

/** Names the state of a lookup for diagnostics. */
export function describe(addr: bigint, l: PageLookup): string {
  return `page 0x${addr.toString(16)} is ${l.state}`;
}

/**
 * A firmware copy to x86 memory (`copy_to_x86`). Returns INVALID_ADDRESS when the range is not in
 * system memory (the model's stand-in for the boot loader's address-violation error).
 */
export function writeMemory(fw: FirmwareCore, spa: number, bytes: Uint8Array): number {
  const mem = fw.platform.memory;
  if (spa < 0 || spa + bytes.length > mem.memoryBytes) {
    return fw.fail(
      SevStatus.INVALID_ADDRESS,
      `0x${spa.toString(16)}+0x${bytes.length.toString(16)} is outside system memory`,
    );
  }
  mem.write(spa, bytes);
  return SevStatus.SUCCESS;
}

/** `copy_from_x86`; null when the range is outside system memory. */
export function readMemory(fw: FirmwareCore, spa: number, length: number): Uint8Array | null {
  const mem = fw.platform.memory;
  if (spa < 0 || spa + length > mem.memoryBytes) return null;
  return mem.read(spa, length);
}

/** Writes an RMP entry the way the firmware does (counters kept by the RMP). */
export function writeRmp(fw: FirmwareCore, pfn: number, entry: RmpEntry): void {
  const p = fw.platform;
  if (p.firmwareWrite) p.firmwareWrite(pfn, entry);
  else p.rmp.writeEntry(pfn, entry);
}

/**
 * The gctx lookup every guest command starts with, after its reserved-field and platform-state
 * checks: INVALID_PARAM inside the RMP, INVALID_GUEST unless the page is in the Context state.
 */
export function lookupGctx(
  fw: FirmwareCore,
  addr: bigint,
  l: PageLookup = lookupPage(fw, addr),
): { status: number; ctx?: GuestContextPage; pfn: number } {
  if (l.status !== SevStatus.SUCCESS) {
    return { status: fw.fail(l.status, `gctx 0x${addr.toString(16)} lies inside the RMP`), pfn: -1 };
  }
  if (l.state !== PageState.CONTEXT) {
    return { status: fw.fail(SevStatus.INVALID_GUEST, `gctx ${describe(addr, l)}, not Context`), pfn: l.pfn };
  }
  const ctx = fw.contexts.get(l.pfn);
  if (!ctx) {
    return {
      status: fw.fail(
        SevStatus.INVALID_GUEST,
        `gctx page 0x${addr.toString(16)} is Context but holds no firmware context`,
      ),
      pfn: l.pfn,
    };
  }
  return { status: SevStatus.SUCCESS, ctx, pfn: l.pfn };
}

/** "needs INIT": INVALID_PLATFORM_STATE unless the SNP platform state is INIT. */
export function needsInit(fw: FirmwareCore): number {
  return fw.state.snpState === SnpPlatformState.INIT
    ? SevStatus.SUCCESS
    : fw.fail(SevStatus.INVALID_PLATFORM_STATE, 'the SNP platform is not in the INIT state');
}

export function hex(v: number | bigint): string {
  return `0x${v.toString(16)}`;
}
