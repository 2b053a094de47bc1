/**
 * Firmware-wide state: the SNP platform state machine, the legacy SEV platform state, the per-ASID
 * firmware states and the WBINVD_DONE flags, modelled as the Genoa firmware keeps them [FW sev_plat.h,
 * sev_mcmd.c]: every ASID has four CCX bitmasks (dirty, clean, allocated, in use); a CCX moves
 * in-use -> dirty when its guest is deactivated, dirty -> clean on SNP_DF_FLUSH once every core of the
 * CCX executed WBINVD since the last deactivation (WBINVD_DONE), clean -> allocated/in-use on ACTIVATE.
 */

/** SNP platform state (`snp_state_t`, PLATFORM_STATUS.state) [FW]. */
export const SnpPlatformState = Object.freeze({ UNINIT: 0, INIT: 1 } as const);
export type SnpPlatformState = (typeof SnpPlatformState)[keyof typeof SnpPlatformState];

/** Legacy SEV platform state (`sev_state_t`) [FW]; SNP_INIT and SNP_SHUTDOWN need UNINIT. */
export const LegacySevState = Object.freeze({ UNINIT: 0, INIT: 1, WORKING: 2 } as const);
export type LegacySevState = (typeof LegacySevState)[keyof typeof LegacySevState];

/** SNP guest state (`snp_guest_state_t`, GUEST_STATUS.state) [FW]. */
export const SnpGuestState = Object.freeze({ INIT: 0, LAUNCH: 1, RUNNING: 2 } as const);
export type SnpGuestState = (typeof SnpGuestState)[keyof typeof SnpGuestState];

/** The firmware's view of one ASID, summarised over all CCXs. */
export type AsidState = 'clean' | 'dirty' | 'allocated' | 'in-use' | 'mixed';

/**
 * ASID bookkeeping, one bitmask over the CCXs per ASID and per firmware state, plus the WBINVD_DONE
 * flags. ASIDs are 1..maxAsid (index asid-1, as `asid_dirty[asid-1]`).
 */
export class AsidTable {
  readonly maxAsid: number;
  /** Bitmask of the present CCXs (`ccx_present_bit_mask`). */
  readonly present: number;
  readonly dirty: Uint32Array;
  readonly clean: Uint32Array;
  readonly allocated: Uint32Array;
  readonly inUse: Uint32Array;
  /** CCXs whose cores all executed WBINVD since the flags were last cleared. */
  wbinvdDone = 0;

  constructor(maxAsid: number, ccxCount: number) {
    if (!Number.isInteger(ccxCount) || ccxCount < 1 || ccxCount > 32) {
      throw new RangeError(`AsidTable: ccxCount must be 1..32, got ${ccxCount}`);
    }
    this.maxAsid = maxAsid;
    this.present = ccxCount === 32 ? 0xffffffff : (1 << ccxCount) - 1;
    this.dirty = new Uint32Array(maxAsid);
    this.clean = new Uint32Array(maxAsid);
    this.allocated = new Uint32Array(maxAsid);
    this.inUse = new Uint32Array(maxAsid);
    this.clean.fill(this.present);
  }

  /** SNP_INIT: every ASID dirty on every CCX, WBINVD_DONE cleared [FW snp_mcmd_init_common]. */
  resetAllDirty(): void {
    this.dirty.fill(this.present);
    this.clean.fill(0);
    this.allocated.fill(0);
    this.inUse.fill(0);
    this.wbinvdDone = 0;
  }

  /** WBINVD executed on every core of the CCXs in `ccxMask` (default: all). */
  noteWbinvd(ccxMask = this.present): void {
    this.wbinvdDone = (this.wbinvdDone | ccxMask) & this.present;
  }

  /**
   * SNP_DF_FLUSH core: dirty -> clean on every CCX whose WBINVD_DONE is set; returns false when
   * not every CCX is done (WBINVD_REQUIRED), after cleaning what it could [FW mcmd_df_flush_common].
   */
  dfFlush(): boolean {
    const done = this.wbinvdDone;
    if (done !== 0) {
      for (let i = 0; i < this.maxAsid; i++) {
        const m = this.dirty[i]! & done;
        if (m !== 0) {
          this.dirty[i] = this.dirty[i]! & ~m;
          this.clean[i] = (this.clean[i]! | m) >>> 0;
        }
      }
    }
    return done === this.present;
  }

  /** True when some ASID is not clean on every CCX (SHUTDOWN then needs a DF_FLUSH). */
  anyNotClean(): boolean {
    for (let i = 0; i < this.maxAsid; i++) if (this.clean[i] !== this.present) return true;
    return false;
  }

  /** Firmware state of `asid` (1..maxAsid). */
  state(asid: number): AsidState {
    const i = asid - 1;
    if (this.clean[i] === this.present) return 'clean';
    if (this.dirty[i] === this.present) return 'dirty';
    if (this.allocated[i] === this.present) return 'allocated';
    if (this.inUse[i] === this.present) return 'in-use';
    return 'mixed';
  }

  /**
   * Activation of `asid` on `ccxs` [FW activate_common]: clean -> in use for a RUNNING guest, clean ->
   * allocated for a guest still launching (LAUNCH_FINISH then calls `launched`).
   */
  activate(asid: number, ccxs: number, running: boolean): void {
    const i = asid - 1;
    if (running) this.inUse[i] = (this.inUse[i]! | ccxs) >>> 0;
    else this.allocated[i] = (this.allocated[i]! | ccxs) >>> 0;
    this.clean[i] = this.clean[i]! & ~ccxs;
  }

  /** LAUNCH_FINISH of a guest activated while launching: allocated -> in use on `ccxs`. */
  launched(asid: number, ccxs: number): void {
    const i = asid - 1;
    this.inUse[i] = (this.inUse[i]! | ccxs) >>> 0;
    this.allocated[i] = this.allocated[i]! & ~ccxs;
    this.clean[i] = this.clean[i]! & ~ccxs;
  }

  /** Deactivation of a guest's CCXs: allocated -> clean, in-use -> dirty (clears WBINVD_DONE of those). */
  deactivate(asid: number, ccxs: number): void {
    const i = asid - 1;
    const alloc = this.allocated[i]! & ccxs;
    if (alloc) {
      this.allocated[i] = this.allocated[i]! & ~alloc;
      this.clean[i] = (this.clean[i]! | alloc) >>> 0;
    }
    const used = this.inUse[i]! & ccxs;
    if (used) {
      this.inUse[i] = this.inUse[i]! & ~used;
      this.dirty[i] = (this.dirty[i]! | used) >>> 0;
      // [FW sev_guest_deactivate] clear_wbinvd_done(inuse_ccxs)
      this.wbinvdDone = this.wbinvdDone & ~used;
    }
  }
}

/** Mutable firmware-wide values (`gpDram->perm`, `gPersistent`) that commands read and change. */
export interface PlatformFirmwareState {
  snpState: SnpPlatformState;
  legacySevState: LegacySevState;
  /** `snp_globals.rmp_initialized`: the RMP was initialised and not torn down by SHUTDOWN_EX. */
  rmpInitialized: boolean;
  /** Number of SNP guests launched (LAUNCH_START ++, DECOMMISSION of a launched guest --). */
  guestCount: number;
  maskChipId: boolean;
  maskChipKey: boolean;
  /** SNP_CONFIG's REPORTED_TCB (0 = use the committed TCB) [FW gPersistent.config_tcb]. */
  configTcb: bigint;
  committedApiMajor: number;
  committedApiMinor: number;
  committedBuildId: number;
  committedTcb: bigint;
}
