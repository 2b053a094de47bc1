/**
 * The PSP firmware: `command(id, buffer)` dispatches through the command table and returns the status
 * (a value, never thrown); typed wrappers build the Linux buffers for the host. State lives here: the
 * platform state machine, ASIDs, guest contexts, the chip identity.
 */
import { randomBytes } from 'node:crypto';
import { ChipIdentity } from '../attestation/vcek.js';
import { LaunchDigest } from '../measure/page-info.js';
import { PAGE_SIZE } from '../rmp/layout.js';
import {
  decodeGuestStatus,
  decodePlatformStatus,
  encodeActivate,
  encodeAddr,
  encodeCommit,
  encodeConfig,
  encodeFeatureInfo,
  encodeInitEx,
  encodeLaunchFinish,
  encodeLaunchStart,
  encodeLaunchUpdate,
  encodePageSetState,
  encodeShutdownEx,
  encodeThreeAddr,
  encodeTwoAddr,
  FEATURE_INFO_SIZE,
  type InitExInput,
  type LaunchFinishInput,
  type LaunchStartInput,
  type LaunchUpdateInput,
  Layouts,
  SNP_GUEST_STATUS_SIZE,
  SNP_PLATFORM_STATUS_SIZE,
  type SnpGuestStatus,
  type SnpPlatformStatus,
  u32,
} from './buffers.js';
import { COMMANDS_BY_ID, SnpCommandId } from './commands.js';
import type { FirmwareCore, FirmwarePlatform } from './core.js';
import type { GuestContextPage } from './guest-context.js';
import { encodeTcb, type FirmwareProfile, GENOA_FIRMWARE } from './profile.js';
import {
  type AsidState,
  AsidTable,
  LegacySevState,
  type PlatformFirmwareState,
  SnpPlatformState,
} from './state.js';
import { SevStatus, sevStatusName } from './status.js';

/** Why the last command failed: the command, its status and the check that decided it. */
export interface FirmwareError {
  readonly layer: 'firmware';
  readonly command: string;
  readonly id: number;
  readonly status: number;
  readonly statusName: string;
  readonly reason: string;
}

export interface FirmwareOptions {
  /** Source of the PSP's TRNG (VMPCKs, REPORT_ID ...); node:crypto randomBytes by default. */
  readonly random?: (n: number) => Uint8Array;
}

const EMPTY = new Uint8Array(0);

export class Firmware implements FirmwareCore {
  readonly platform: FirmwarePlatform;
  readonly profile: FirmwareProfile;
  readonly state: PlatformFirmwareState;
  readonly asids: AsidTable;
  readonly contexts = new Map<number, GuestContextPage>();
  readonly identity: ChipIdentity;
  readonly launchDigest: LaunchDigest;
  #lastError: FirmwareError | null = null;
  #reason = '';
  readonly #random: (n: number) => Uint8Array;

  constructor(
    platform: FirmwarePlatform,
    profile: FirmwareProfile = GENOA_FIRMWARE,
    options: FirmwareOptions = {},
  ) {
    this.platform = platform;
    this.profile = profile;
    this.asids = new AsidTable(profile.maxAsid, profile.ccxCount);
    this.identity = new ChipIdentity(profile.chipSeed);
    this.launchDigest = new LaunchDigest({ vmplOrder: profile.pageInfoVmplOrder });
    this.#random = options.random ?? ((n) => new Uint8Array(randomBytes(n)));
    platform.onWbinvd?.(() => this.asids.noteWbinvd());
    this.state = {
      snpState: SnpPlatformState.UNINIT,
      legacySevState: LegacySevState.UNINIT,
      rmpInitialized: false,
      guestCount: 0,
      maskChipId: false,
      maskChipKey: false,
      configTcb: 0n,
      committedApiMajor: profile.committedApiMajor,
      committedApiMinor: profile.committedApiMinor,
      committedBuildId: profile.committedBuildId,
      committedTcb: encodeTcb(profile.committedTcb, profile.tcbLayout),
    };
  }

  // ---- FirmwareCore --------------------------------------------------------------------------

  fail(status: number, reason: string): number {
    this.#reason = reason;
    return status;
  }

  random(n: number): Uint8Array {
    return this.#random(n);
  }

  // ---- the mailbox ---------------------------------------------------------------------------

  /**
   * Run command `id` with its command buffer (the Linux struct bytes). Returns the firmware status.
   * Unknown id: INVALID_COMMAND. Throws RangeError only when `buffer` is shorter than the command's
   * struct (a caller bug: the real PSP always reads the whole struct).
   */
  command(id: number, buffer: Uint8Array = EMPTY): number {
    const spec = COMMANDS_BY_ID.get(id);
    this.#reason = '';
    let status: number;
    if (!spec) {
      status = this.fail(SevStatus.INVALID_COMMAND, `command id 0x${id.toString(16)} is not an SNP command`);
    } else if (!spec.handler) {
      status = this.fail(SevStatus.UNSUPPORTED, `${spec.name} is a real command that snpsim does not model`);
    } else {
      if (spec.layout && buffer.length < spec.layout.size) {
        throw new RangeError(
          `${spec.name} (0x${id.toString(16)}): buffer is ${buffer.length} bytes, struct ${spec.layout.struct} needs ${spec.layout.size}`,
        );
      }
      status = spec.handler(this, spec.layout ? buffer.subarray(0, spec.layout.size) : EMPTY);
    }
    this.#lastError =
      status === SevStatus.SUCCESS
        ? null
        : Object.freeze({
            layer: 'firmware' as const,
            command: spec?.name ?? `0x${id.toString(16)}`,
            id,
            status,
            statusName: sevStatusName(status),
            reason: this.#reason,
          });
    return status;
  }

  /** Why the last command failed, or null after a success. */
  get lastError(): FirmwareError | null {
    return this.#lastError;
  }

  // ---- platform-side notions ------------------------------------------------------------------

  /**
   * WBINVD executed on every core of the CCXs in `ccxMask` (default: all cores): sets the
   * WBINVD_DONE flags SNP_DF_FLUSH requires after a guest was deactivated. `Platform.wbinvd()` (the
   * host's WBINVD on all CPUs) calls it for every CCX; a mask is for per-CCX experiments.
   */
  noteWbinvd(ccxMask?: number): void {
    this.asids.noteWbinvd(ccxMask);
  }

  /** Legacy SEV platform state (legacy SEV commands are not modelled; set it to experiment). */
  get legacySevState(): LegacySevState {
    return this.state.legacySevState;
  }
  set legacySevState(s: LegacySevState) {
    this.state.legacySevState = s;
  }

  get snpState(): SnpPlatformState {
    return this.state.snpState;
  }

  /** Firmware state of an ASID (1..maxAsid). */
  asidState(asid: number): AsidState {
    if (!Number.isInteger(asid) || asid < 1 || asid > this.asids.maxAsid) {
      throw new RangeError(`asidState: ASID must be 1..${this.asids.maxAsid}, got ${asid}`);
    }
    return this.asids.state(asid);
  }

  /** Model introspection: the guest context held in the Context page at `gctxPaddr`. */
  guestContext(gctxPaddr: number): GuestContextPage | undefined {
    return this.contexts.get(Math.floor(gctxPaddr / PAGE_SIZE));
  }

  // ---- typed wrappers (one command each; status returned) --------------------------------------

  snpInit(): number {
    return this.command(SnpCommandId.SNP_INIT);
  }
  snpInitEx(i: InitExInput = {}): number {
    return this.command(SnpCommandId.SNP_INIT_EX, encodeInitEx(i));
  }
  shutdown(): number {
    return this.command(SnpCommandId.SNP_SHUTDOWN);
  }
  shutdownEx(i: { iommuSnpShutdown?: boolean; x86SnpShutdown?: boolean } = {}): number {
    return this.command(SnpCommandId.SNP_SHUTDOWN_EX, encodeShutdownEx(i));
  }
  /** SNP_PLATFORM_STATUS into the page at `statusPaddr`; the decoded buffer on success. */
  platformStatus(statusPaddr: number): { status: number; data: SnpPlatformStatus | null } {
    const status = this.command(SnpCommandId.SNP_PLATFORM_STATUS, encodeAddr(statusPaddr));
    return {
      status,
      data:
        status === SevStatus.SUCCESS
          ? decodePlatformStatus(this.platform.memory.read(statusPaddr, SNP_PLATFORM_STATUS_SIZE))
          : null,
    };
  }
  dfFlush(): number {
    return this.command(SnpCommandId.SNP_DF_FLUSH);
  }
  gctxCreate(gctxPaddr: number): number {
    return this.command(SnpCommandId.SNP_GCTX_CREATE, encodeAddr(gctxPaddr));
  }
  decommission(gctxPaddr: number): number {
    return this.command(SnpCommandId.SNP_DECOMMISSION, encodeAddr(gctxPaddr));
  }
  activate(gctxPaddr: number, asid: number): number {
    return this.command(SnpCommandId.SNP_ACTIVATE, encodeActivate(gctxPaddr, asid));
  }
  guestStatus(gctxPaddr: number, statusPaddr: number): { status: number; data: SnpGuestStatus | null } {
    const status = this.command(
      SnpCommandId.SNP_GUEST_STATUS,
      encodeTwoAddr(Layouts.guestStatus.size, gctxPaddr, statusPaddr),
    );
    return {
      status,
      data:
        status === SevStatus.SUCCESS
          ? decodeGuestStatus(this.platform.memory.read(statusPaddr, SNP_GUEST_STATUS_SIZE))
          : null,
    };
  }
  launchStart(i: LaunchStartInput): number {
    return this.command(SnpCommandId.SNP_LAUNCH_START, encodeLaunchStart(i));
  }
  launchUpdate(i: LaunchUpdateInput): number {
    return this.command(SnpCommandId.SNP_LAUNCH_UPDATE, encodeLaunchUpdate(i));
  }
  launchFinish(i: LaunchFinishInput): number {
    return this.command(SnpCommandId.SNP_LAUNCH_FINISH, encodeLaunchFinish(i));
  }
  guestRequest(gctxPaddr: number, requestPaddr: number, responsePaddr: number): number {
    return this.command(
      SnpCommandId.SNP_GUEST_REQUEST,
      encodeThreeAddr(gctxPaddr, requestPaddr, responsePaddr),
    );
  }
  dbgDecrypt(gctxPaddr: number, srcPaddr: number, dstPaddr: number): number {
    return this.command(SnpCommandId.SNP_DBG_DECRYPT, encodeThreeAddr(gctxPaddr, srcPaddr, dstPaddr));
  }
  dbgEncrypt(gctxPaddr: number, srcPaddr: number, dstPaddr: number): number {
    return this.command(SnpCommandId.SNP_DBG_ENCRYPT, encodeThreeAddr(gctxPaddr, srcPaddr, dstPaddr));
  }
  /** SNP_PAGE_RECLAIM of a 4K (`pageSize` 0) or 2 MB (1) page. */
  pageReclaim(paddr: number, pageSize: 0 | 1 = 0): number {
    return this.command(SnpCommandId.SNP_PAGE_RECLAIM, encodeAddr(BigInt(paddr) | BigInt(pageSize)));
  }
  pageUnsmash(paddr: number): number {
    return this.command(SnpCommandId.SNP_PAGE_UNSMASH, encodeAddr(paddr));
  }
  /** SNP_PAGE_SET_STATE with the RANGE_LIST at `listPaddr`. */
  pageSetState(listPaddr: number): number {
    return this.command(SnpCommandId.SNP_PAGE_SET_STATE, encodePageSetState(listPaddr));
  }
  config(i: { reportedTcb?: bigint; maskChipId?: boolean; maskChipKey?: boolean } = {}): number {
    return this.command(SnpCommandId.SNP_CONFIG, encodeConfig(i));
  }
  commit(): number {
    return this.command(SnpCommandId.SNP_COMMIT, encodeCommit());
  }
  /** SNP_FEATURE_INFO for ECX_IN into `paddr`; the four words on success. */
  featureInfo(ecxIn: number, paddr: number): { status: number; words: readonly number[] | null } {
    const status = this.command(SnpCommandId.SNP_FEATURE_INFO, encodeFeatureInfo(ecxIn, paddr));
    if (status !== SevStatus.SUCCESS) return { status, words: null };
    const b = this.platform.memory.read(paddr, FEATURE_INFO_SIZE);
    return { status, words: [u32(b, 0), u32(b, 4), u32(b, 8), u32(b, 12)] };
  }
}
