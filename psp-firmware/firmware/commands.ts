/**
 * The SNP command table, keyed by the real command ids (Linux `enum sev_cmd`, Genoa
 * `sev_mcmd_id_t` / sev_dispatch.c `master_handler_table`) [LX][FW]: name, buffer layout, the states
 * the command is legal in (firmware-rmp.md §D.3/§D.4), every status the model's handler can return,
 * and the handler. Rows without a handler are real commands the model does not implement: they
 * answer UNSUPPORTED. Ids absent from the table answer INVALID_COMMAND [FW sev_dispatch_master].
 */
import { type BufferLayout, Layouts } from './buffers.js';
import type { FirmwareCore } from './core.js';
import { snpDbgDecrypt, snpDbgEncrypt } from './dbg.js';
import { snpActivate, snpDecommission, snpGctxCreate, snpGuestStatus } from './guest-cmds.js';
import { snpGuestRequest } from './guest-request.js';
import { snpLaunchFinish, snpLaunchStart, snpLaunchUpdate } from './launch.js';
import { snpPageReclaim, snpPageSetState, snpPageUnsmash } from './page-cmds.js';
import {
  snpCommit,
  snpConfig,
  snpDfFlush,
  snpFeatureInfo,
  snpInit,
  snpInitEx,
  snpPlatformStatus,
  snpShutdown,
  snpShutdownEx,
} from './platform-cmds.js';
import { SevStatus, type SevStatusCode } from './status.js';

/** SNP command ids [LX include/linux/psp-sev.h `enum sev_cmd`]. */
export const SnpCommandId = Object.freeze({
  SNP_INIT: 0x081,
  SNP_SHUTDOWN: 0x082,
  SNP_PLATFORM_STATUS: 0x083,
  SNP_DF_FLUSH: 0x084,
  SNP_INIT_EX: 0x085,
  SNP_SHUTDOWN_EX: 0x086,
  SNP_DECOMMISSION: 0x090,
  SNP_ACTIVATE: 0x091,
  SNP_GUEST_STATUS: 0x092,
  SNP_GCTX_CREATE: 0x093,
  SNP_GUEST_REQUEST: 0x094,
  SNP_ACTIVATE_EX: 0x095,
  SNP_LAUNCH_START: 0x0a0,
  SNP_LAUNCH_UPDATE: 0x0a1,
  SNP_LAUNCH_FINISH: 0x0a2,
  SNP_DBG_DECRYPT: 0x0b0,
  SNP_DBG_ENCRYPT: 0x0b1,
  SNP_PAGE_SWAP_OUT: 0x0c0,
  SNP_PAGE_SWAP_IN: 0x0c1,
  SNP_PAGE_MOVE: 0x0c2,
  SNP_PAGE_MD_INIT: 0x0c3,
  SNP_PAGE_SET_STATE: 0x0c6,
  SNP_PAGE_RECLAIM: 0x0c7,
  SNP_PAGE_UNSMASH: 0x0c8,
  SNP_CONFIG: 0x0c9,
  SNP_DOWNLOAD_FIRMWARE_EX: 0x0ca,
  SNP_COMMIT: 0x0cb,
  SNP_VLEK_LOAD: 0x0cd,
  SNP_FEATURE_INFO: 0x0ce,
} as const);
export type SnpCommandName = keyof typeof SnpCommandId;

export type Handler = (fw: FirmwareCore, buffer: Uint8Array) => number;

/** The platform state a command needs (§D.4 "needs INIT"), or 'any'. */
export type PlatformRequirement = 'UNINIT' | 'INIT' | 'any';

export interface CommandSpec {
  readonly id: number;
  readonly name: SnpCommandName;
  /** Command buffer layout, or null for commands without a buffer. */
  readonly layout: BufferLayout | null;
  readonly platform: PlatformRequirement;
  /** Guest states the command is legal in (§D.3), or null when it takes no guest. */
  readonly guestStates: readonly ('INIT' | 'LAUNCH' | 'RUNNING')[] | null;
  /** Every status this model's handler can return, SUCCESS first. */
  readonly statuses: readonly SevStatusCode[];
  /** null: a real command the model does not implement (answers UNSUPPORTED). */
  readonly handler: Handler | null;
}

const S = SevStatus;
const PAGE_CHECKS = [S.INVALID_PARAM, S.INVALID_PLATFORM_STATE, S.INVALID_GUEST] as const;

function row(
  name: SnpCommandName,
  layout: BufferLayout | null,
  platform: PlatformRequirement,
  guestStates: CommandSpec['guestStates'],
  statuses: readonly SevStatusCode[],
  handler: Handler | null,
): CommandSpec {
  return Object.freeze({
    id: SnpCommandId[name],
    name,
    layout,
    platform,
    guestStates: guestStates && Object.freeze([...guestStates]),
    statuses: Object.freeze(handler ? [S.SUCCESS, ...statuses] : [S.UNSUPPORTED]),
    handler,
  });
}

const ANY = ['INIT', 'LAUNCH', 'RUNNING'] as const;

/** The table, in command-id order. */
export const COMMANDS: readonly CommandSpec[] = Object.freeze([
  row('SNP_INIT', null, 'UNINIT', null, [S.INVALID_PLATFORM_STATE, S.INVALID_CONFIG], (fw) => snpInit(fw)),
  row('SNP_SHUTDOWN', null, 'any', null, [S.INVALID_PLATFORM_STATE, S.DFFLUSH_REQUIRED], (fw) =>
    snpShutdown(fw),
  ),
  row(
    'SNP_PLATFORM_STATUS',
    Layouts.addr,
    'any',
    null,
    [S.INVALID_PARAM, S.INVALID_PAGE_STATE, S.INVALID_ADDRESS],
    snpPlatformStatus,
  ),
  row('SNP_DF_FLUSH', null, 'any', null, [S.WBINVD_REQUIRED], (fw) => snpDfFlush(fw)),
  row(
    'SNP_INIT_EX',
    Layouts.initEx,
    'UNINIT',
    null,
    [S.INVALID_PARAM, S.INVALID_PLATFORM_STATE, S.RMP_INIT_REQUIRED, S.INVALID_CONFIG],
    snpInitEx,
  ),
  row(
    'SNP_SHUTDOWN_EX',
    Layouts.shutdownEx,
    'any',
    null,
    [S.INVALID_PLATFORM_STATE, S.DFFLUSH_REQUIRED, S.INVALID_PARAM],
    snpShutdownEx,
  ),
  row('SNP_DECOMMISSION', Layouts.addr, 'INIT', ANY, [...PAGE_CHECKS], snpDecommission),
  row(
    'SNP_ACTIVATE',
    Layouts.activate,
    'INIT',
    ['LAUNCH', 'RUNNING'],
    [
      ...PAGE_CHECKS,
      S.INVALID_GUEST_STATE,
      S.INVALID_CONFIG,
      S.POLICY_FAILURE,
      S.INVALID_ASID,
      S.ASID_OWNED,
      S.ACTIVE,
      S.DFFLUSH_REQUIRED,
    ],
    snpActivate,
  ),
  row(
    'SNP_GUEST_STATUS',
    Layouts.guestStatus,
    'INIT',
    ANY,
    [...PAGE_CHECKS, S.INVALID_PAGE_STATE, S.INVALID_ADDRESS],
    snpGuestStatus,
  ),
  row(
    'SNP_GCTX_CREATE',
    Layouts.addr,
    'INIT',
    null,
    [S.INVALID_PARAM, S.INVALID_PLATFORM_STATE, S.INVALID_PAGE_STATE, S.INVALID_PAGE_SIZE, S.INVALID_CONFIG],
    snpGctxCreate,
  ),
  row(
    'SNP_GUEST_REQUEST',
    Layouts.guestRequest,
    'INIT',
    ['RUNNING'],
    [
      ...PAGE_CHECKS,
      S.INVALID_PAGE_STATE,
      S.INVALID_PAGE_SIZE,
      S.INVALID_GUEST_STATE,
      S.INVALID_ADDRESS,
      S.BAD_MEASUREMENT,
      S.AEAD_OFLOW,
      S.UNSUPPORTED,
    ],
    snpGuestRequest,
  ),
  row('SNP_ACTIVATE_EX', null, 'INIT', ['LAUNCH', 'RUNNING'], [], null),
  row(
    'SNP_LAUNCH_START',
    Layouts.launchStart,
    'INIT',
    ['INIT'],
    [...PAGE_CHECKS, S.INVALID_GUEST_STATE, S.POLICY_FAILURE],
    snpLaunchStart,
  ),
  row(
    'SNP_LAUNCH_UPDATE',
    Layouts.launchUpdate,
    'INIT',
    ['LAUNCH'],
    [
      ...PAGE_CHECKS,
      S.INVALID_PAGE_STATE,
      S.INVALID_PAGE_SIZE,
      S.INVALID_ADDRESS,
      S.INVALID_GUEST_STATE,
      S.INACTIVE,
      S.INVALID_PAGE_OWNER,
    ],
    snpLaunchUpdate,
  ),
  row(
    'SNP_LAUNCH_FINISH',
    Layouts.launchFinish,
    'INIT',
    ['LAUNCH'],
    [
      ...PAGE_CHECKS,
      S.INVALID_GUEST_STATE,
      S.INACTIVE,
      S.INVALID_ADDRESS,
      S.BAD_MEASUREMENT,
      S.POLICY_FAILURE,
      S.BAD_SIGNATURE,
    ],
    snpLaunchFinish,
  ),
  row(
    'SNP_DBG_DECRYPT',
    Layouts.dbg,
    'INIT',
    ANY,
    [...PAGE_CHECKS, S.INVALID_PAGE_STATE, S.INVALID_PAGE_OWNER, S.POLICY_FAILURE, S.INVALID_ADDRESS],
    snpDbgDecrypt,
  ),
  row(
    'SNP_DBG_ENCRYPT',
    Layouts.dbg,
    'INIT',
    ANY,
    [...PAGE_CHECKS, S.INVALID_PAGE_STATE, S.INVALID_PAGE_OWNER, S.POLICY_FAILURE, S.INVALID_ADDRESS],
    snpDbgEncrypt,
  ),
  row('SNP_PAGE_SWAP_OUT', null, 'INIT', ['LAUNCH', 'RUNNING'], [], null),
  row('SNP_PAGE_SWAP_IN', null, 'INIT', ['LAUNCH', 'RUNNING'], [], null),
  row('SNP_PAGE_MOVE', null, 'INIT', ['LAUNCH', 'RUNNING'], [], null),
  row('SNP_PAGE_MD_INIT', null, 'INIT', ['LAUNCH', 'RUNNING'], [], null),
  row(
    'SNP_PAGE_SET_STATE',
    Layouts.pageSetState,
    'INIT',
    null,
    [S.INVALID_LEN, S.INVALID_PARAM, S.INVALID_PLATFORM_STATE, S.INVALID_ADDRESS, S.INVALID_PAGE_STATE],
    snpPageSetState,
  ),
  row(
    'SNP_PAGE_RECLAIM',
    Layouts.pageReclaim,
    'INIT',
    null,
    [S.INVALID_PARAM, S.INVALID_PLATFORM_STATE, S.INVALID_ADDRESS, S.INVALID_PAGE_SIZE, S.INVALID_PAGE_STATE],
    snpPageReclaim,
  ),
  row(
    'SNP_PAGE_UNSMASH',
    Layouts.pageUnsmash,
    'INIT',
    null,
    [S.INVALID_PARAM, S.INVALID_PLATFORM_STATE, S.INVALID_PAGE_STATE, S.INVALID_ADDRESS],
    snpPageUnsmash,
  ),
  row('SNP_CONFIG', Layouts.config, 'any', null, [S.INVALID_PARAM], snpConfig),
  row('SNP_DOWNLOAD_FIRMWARE_EX', null, 'any', null, [], null),
  row('SNP_COMMIT', Layouts.commit, 'any', null, [S.INVALID_PARAM], snpCommit),
  row('SNP_VLEK_LOAD', null, 'any', null, [], null),
  row(
    'SNP_FEATURE_INFO',
    Layouts.featureInfo,
    'any',
    null,
    [S.INVALID_PARAM, S.INVALID_ADDRESS, S.INVALID_PAGE_STATE],
    snpFeatureInfo,
  ),
]);

/** The table keyed by command id. */
export const COMMANDS_BY_ID: ReadonlyMap<number, CommandSpec> = new Map(COMMANDS.map((c) => [c.id, c]));
