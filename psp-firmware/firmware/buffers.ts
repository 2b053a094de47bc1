/**
 * Command buffers of the SNP firmware commands, in the Linux struct layouts
 * (include/linux/psp-sev.h, `__packed`) [LX], which match the Genoa firmware's `snp_mcmd_*_t`
 * (sev_mcmd.h) [FW]. Every struct is little-endian. Decoders keep every reserved field so the
 * handlers can check it; encoders build the buffer the host hands to `Firmware.command`.
 */

/** A struct layout: its Linux name and its size in bytes. */
export interface BufferLayout {
  readonly struct: string;
  readonly size: number;
}

function layout(struct: string, size: number): BufferLayout {
  return Object.freeze({ struct, size });
}

/** The layouts by Linux struct name (size in bytes, `sizeof` of the packed struct). */
export const Layouts = Object.freeze({
  /** 64 B: init_rmp b0, list_paddr_en b1, rapl_dis b2, ciphertext_hiding_en b3, tio_en b4 ... */
  initEx: layout('sev_data_snp_init_ex', 0x40),
  /** 8 B: u32 len, u32 iommu_snp_shutdown b0, x86_snp_shutdown b1. */
  shutdownEx: layout('sev_data_snp_shutdown_ex', 0x08),
  /** 8 B: u64 address (generic: status page, gctx page). */
  addr: layout('sev_data_snp_addr', 0x08),
  /** 12 B: u64 gctx_paddr, u32 asid. */
  activate: layout('sev_data_snp_activate', 0x0c),
  /** 16 B: u64 gctx_paddr, u64 address. */
  guestStatus: layout('sev_data_snp_guest_status', 0x10),
  /** 48 B: gctx, policy, ma_gctx, ma_en b0 / imi_en b1, desired_tsc_khz, gosvw[16]. */
  launchStart: layout('sev_data_snp_launch_start', 0x30),
  /** 32 B: gctx, page_size b0 / page_type b3:1 / imi_page b4, rsvd2, address, vmpl masks, rsvd4. */
  launchUpdate: layout('sev_data_snp_launch_update', 0x20),
  /** 64 B: gctx, id_block_paddr, id_auth_paddr, flags byte + 61 reserved bits, host_data[32]. */
  launchFinish: layout('sev_data_snp_launch_finish', 0x40),
  /** 24 B: gctx, req_paddr, res_paddr. */
  guestRequest: layout('sev_data_snp_guest_request', 0x18),
  /** 24 B: gctx, src_addr, dst_addr. */
  dbg: layout('sev_data_snp_dbg', 0x18),
  /** 8 B: u64 paddr with bit 0 = page size. */
  pageReclaim: layout('sev_data_snp_page_reclaim', 0x08),
  /** 8 B: u64 paddr. */
  pageUnsmash: layout('sev_data_snp_page_unsmash', 0x08),
  /** 16 B: u32 length, u32 rsvd, u64 list_paddr [FW snp_mcmd_page_set_state_t]. */
  pageSetState: layout('snp_mcmd_page_set_state_t', 0x10),
  /** 64 B: u64 reported_tcb, mask_chip_id b0 / mask_chip_key b1, 52 B reserved. */
  config: layout('sev_data_snp_config', 0x40),
  /** 4 B: u32 len. */
  commit: layout('sev_data_snp_commit', 0x04),
  /** 16 B: u32 length, u32 ecx_in, u64 feature_info_paddr. */
  featureInfo: layout('sev_data_snp_feature_info', 0x10),
} as const);

// ---- little-endian access ------------------------------------------------------------------

export function u8(b: Uint8Array, off: number): number {
  return b[off] ?? 0;
}
export function u16(b: Uint8Array, off: number): number {
  return (b[off] ?? 0) | ((b[off + 1] ?? 0) << 8);
}
export function u32(b: Uint8Array, off: number): number {
  return (
    ((b[off] ?? 0) | ((b[off + 1] ?? 0) << 8) | ((b[off + 2] ?? 0) << 16) | ((b[off + 3] ?? 0) << 24)) >>> 0
  );
}
export function u64(b: Uint8Array, off: number): bigint {
  return (BigInt(u32(b, off + 4)) << 32n) | BigInt(u32(b, off));
}
export function putU16(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
}
export function putU32(b: Uint8Array, off: number, v: number): void {
  b[off] = v & 0xff;
  b[off + 1] = (v >>> 8) & 0xff;
  b[off + 2] = (v >>> 16) & 0xff;
  b[off + 3] = (v >>> 24) & 0xff;
}
export function putU64(b: Uint8Array, off: number, v: bigint | number): void {
  const x = BigInt.asUintN(64, BigInt(v));
  putU32(b, off, Number(x & 0xffffffffn));
  putU32(b, off + 4, Number(x >> 32n));
}
/** True when every byte of `b[from, to)` is zero. */
export function isZero(b: Uint8Array, from = 0, to = b.length): boolean {
  for (let i = from; i < to; i++) if (b[i] !== 0) return false;
  return true;
}

// ---- decoded command buffers ---------------------------------------------------------------

/**
 * Flag bits of the first dword of SNP_INIT_EX's buffer [LX] include/linux/psp-sev.h
 * `struct sev_data_snp_init_ex` (bits 31:5 reserved). Which of them a firmware knows is
 * `FirmwareProfile.initExFlagsMask` (FW 1.55.25: INIT_RMP | LIST_PADDR_EN).
 */
export const InitExFlag = Object.freeze({
  INIT_RMP: 0x1,
  LIST_PADDR_EN: 0x2,
  RAPL_DIS: 0x4,
  CIPHERTEXT_HIDING_EN: 0x8,
  TIO_EN: 0x10,
} as const);

export interface InitExBuffer {
  readonly initRmp: boolean;
  readonly listPaddrEn: boolean;
  /** Whole first dword: the flag bits (init_rmp b0 ... tio_en b4) and the 27 reserved bits. */
  readonly flags: number;
  readonly rsvd1: number;
  readonly listPaddr: bigint;
  readonly maxSnpAsid: number;
  readonly rsvd2Zero: boolean;
}
export function decodeInitEx(b: Uint8Array): InitExBuffer {
  const flags = u32(b, 0x00);
  return {
    initRmp: (flags & InitExFlag.INIT_RMP) !== 0,
    listPaddrEn: (flags & InitExFlag.LIST_PADDR_EN) !== 0,
    flags,
    rsvd1: u32(b, 0x04),
    listPaddr: u64(b, 0x08),
    maxSnpAsid: u16(b, 0x10),
    rsvd2Zero: isZero(b, 0x12, 0x40),
  };
}
export interface InitExInput {
  initRmp?: boolean;
  listPaddr?: number | bigint;
  /** Raw extra flag bits (rapl_dis b2, ciphertext_hiding_en b3, tio_en b4). */
  extraFlags?: number;
  maxSnpAsid?: number;
}
export function encodeInitEx(i: InitExInput): Uint8Array {
  const b = new Uint8Array(Layouts.initEx.size);
  const listEn = i.listPaddr !== undefined;
  putU32(
    b,
    0x00,
    (i.initRmp === false ? 0 : InitExFlag.INIT_RMP) |
      (listEn ? InitExFlag.LIST_PADDR_EN : 0) |
      (i.extraFlags ?? 0),
  );
  putU64(b, 0x08, i.listPaddr ?? 0);
  putU16(b, 0x10, i.maxSnpAsid ?? 0);
  return b;
}

export interface ShutdownExBuffer {
  readonly len: number;
  readonly iommuSnpShutdown: boolean;
  readonly x86SnpShutdown: boolean;
  /** Bits 31:2 of the second dword. */
  readonly rsvd: number;
}
export function decodeShutdownEx(b: Uint8Array): ShutdownExBuffer {
  const d = u32(b, 0x04);
  return { len: u32(b, 0x00), iommuSnpShutdown: (d & 1) !== 0, x86SnpShutdown: (d & 2) !== 0, rsvd: d >>> 2 };
}
export function encodeShutdownEx(i: { iommuSnpShutdown?: boolean; x86SnpShutdown?: boolean }): Uint8Array {
  const b = new Uint8Array(Layouts.shutdownEx.size);
  putU32(b, 0x00, Layouts.shutdownEx.size);
  putU32(b, 0x04, (i.iommuSnpShutdown === false ? 0 : 1) | (i.x86SnpShutdown ? 2 : 0));
  return b;
}

export function encodeAddr(address: number | bigint): Uint8Array {
  const b = new Uint8Array(Layouts.addr.size);
  putU64(b, 0, address);
  return b;
}

export function encodeActivate(gctxPaddr: number | bigint, asid: number): Uint8Array {
  const b = new Uint8Array(Layouts.activate.size);
  putU64(b, 0x00, gctxPaddr);
  putU32(b, 0x08, asid);
  return b;
}

export function encodeTwoAddr(size: number, a: number | bigint, c: number | bigint): Uint8Array {
  const b = new Uint8Array(size);
  putU64(b, 0x00, a);
  putU64(b, 0x08, c);
  return b;
}

/** gctx and two page addresses: `sev_data_snp_guest_request` and `sev_data_snp_dbg` (same 24-byte layout). */
export function encodeThreeAddr(a: number | bigint, c: number | bigint, d: number | bigint): Uint8Array {
  const b = new Uint8Array(Layouts.guestRequest.size);
  putU64(b, 0x00, a);
  putU64(b, 0x08, c);
  putU64(b, 0x10, d);
  return b;
}

export interface LaunchStartBuffer {
  readonly gctxPaddr: bigint;
  readonly policy: bigint;
  readonly maGctxPaddr: bigint;
  readonly maEn: boolean;
  readonly imiEn: boolean;
  /** Bits 31:2 of the flags dword. */
  readonly rsvd: number;
  readonly desiredTscKhz: number;
  readonly gosvw: Uint8Array;
}
export function decodeLaunchStart(b: Uint8Array): LaunchStartBuffer {
  const f = u32(b, 0x18);
  return {
    gctxPaddr: u64(b, 0x00),
    policy: u64(b, 0x08),
    maGctxPaddr: u64(b, 0x10),
    maEn: (f & 1) !== 0,
    imiEn: (f & 2) !== 0,
    rsvd: f >>> 2,
    desiredTscKhz: u32(b, 0x1c),
    gosvw: b.slice(0x20, 0x30),
  };
}
export interface LaunchStartInput {
  gctxPaddr: number | bigint;
  policy: bigint;
  maGctxPaddr?: number | bigint;
  maEn?: boolean;
  imiEn?: boolean;
  desiredTscKhz?: number;
  gosvw?: Uint8Array;
}
export function encodeLaunchStart(i: LaunchStartInput): Uint8Array {
  const b = new Uint8Array(Layouts.launchStart.size);
  putU64(b, 0x00, i.gctxPaddr);
  putU64(b, 0x08, i.policy);
  putU64(b, 0x10, i.maGctxPaddr ?? 0);
  putU32(b, 0x18, (i.maEn ? 1 : 0) | (i.imiEn ? 2 : 0));
  putU32(b, 0x1c, i.desiredTscKhz ?? 0);
  if (i.gosvw) b.set(i.gosvw.subarray(0, 16), 0x20);
  return b;
}

export interface LaunchUpdateBuffer {
  readonly gctxPaddr: bigint;
  readonly pageSize: 0 | 1;
  readonly pageType: number;
  readonly imiPage: boolean;
  /** Bits 31:5 of the flags dword. */
  readonly rsvd: number;
  readonly rsvd2: number;
  readonly address: bigint;
  /** Bits 7:0 of the permissions dword. */
  readonly rsvd3: number;
  readonly vmpl1Perms: number;
  readonly vmpl2Perms: number;
  readonly vmpl3Perms: number;
  readonly rsvd4: number;
}
export function decodeLaunchUpdate(b: Uint8Array): LaunchUpdateBuffer {
  const f = u32(b, 0x08);
  const p = u32(b, 0x18);
  return {
    gctxPaddr: u64(b, 0x00),
    pageSize: (f & 1) as 0 | 1,
    pageType: (f >>> 1) & 7,
    imiPage: (f & 0x10) !== 0,
    rsvd: f >>> 5,
    rsvd2: u32(b, 0x0c),
    address: u64(b, 0x10),
    rsvd3: p & 0xff,
    vmpl1Perms: (p >>> 8) & 0xff,
    vmpl2Perms: (p >>> 16) & 0xff,
    vmpl3Perms: p >>> 24,
    rsvd4: u32(b, 0x1c),
  };
}
export interface LaunchUpdateInput {
  gctxPaddr: number | bigint;
  address: number | bigint;
  pageType: number;
  pageSize?: 0 | 1;
  imiPage?: boolean;
  vmpl1Perms?: number;
  vmpl2Perms?: number;
  vmpl3Perms?: number;
}
export function encodeLaunchUpdate(i: LaunchUpdateInput): Uint8Array {
  const b = new Uint8Array(Layouts.launchUpdate.size);
  putU64(b, 0x00, i.gctxPaddr);
  putU32(b, 0x08, (i.pageSize ?? 0) | ((i.pageType & 7) << 1) | (i.imiPage ? 0x10 : 0));
  putU64(b, 0x10, i.address);
  putU32(b, 0x18, ((i.vmpl1Perms ?? 0) << 8) | ((i.vmpl2Perms ?? 0) << 16) | ((i.vmpl3Perms ?? 0) << 24));
  return b;
}

export interface LaunchFinishBuffer {
  readonly gctxPaddr: bigint;
  readonly idBlockPaddr: bigint;
  readonly idAuthPaddr: bigint;
  readonly idBlockEn: boolean;
  readonly authKeyEn: boolean;
  readonly vcekDisabled: boolean;
  /** Bits 63:3 of the flags quadword (byte 0x18 bits 7:3 and bytes 0x19-0x1F). */
  readonly rsvd: bigint;
  readonly hostData: Uint8Array;
}
export function decodeLaunchFinish(b: Uint8Array): LaunchFinishBuffer {
  const q = u64(b, 0x18);
  return {
    gctxPaddr: u64(b, 0x00),
    idBlockPaddr: u64(b, 0x08),
    idAuthPaddr: u64(b, 0x10),
    idBlockEn: (q & 1n) !== 0n,
    authKeyEn: (q & 2n) !== 0n,
    vcekDisabled: (q & 4n) !== 0n,
    rsvd: q >> 3n,
    hostData: b.slice(0x20, 0x40),
  };
}
export interface LaunchFinishInput {
  gctxPaddr: number | bigint;
  idBlockPaddr?: number | bigint;
  idAuthPaddr?: number | bigint;
  idBlockEn?: boolean;
  authKeyEn?: boolean;
  vcekDisabled?: boolean;
  hostData?: Uint8Array;
}
export function encodeLaunchFinish(i: LaunchFinishInput): Uint8Array {
  const b = new Uint8Array(Layouts.launchFinish.size);
  putU64(b, 0x00, i.gctxPaddr);
  putU64(b, 0x08, i.idBlockPaddr ?? 0);
  putU64(b, 0x10, i.idAuthPaddr ?? 0);
  b[0x18] = (i.idBlockEn ? 1 : 0) | (i.authKeyEn ? 2 : 0) | (i.vcekDisabled ? 4 : 0);
  if (i.hostData) b.set(i.hostData.subarray(0, 32), 0x20);
  return b;
}

export interface PageSetStateBuffer {
  readonly length: number;
  readonly rsvd: number;
  readonly listPaddr: bigint;
}
export function decodePageSetState(b: Uint8Array): PageSetStateBuffer {
  return { length: u32(b, 0x00), rsvd: u32(b, 0x04), listPaddr: u64(b, 0x08) };
}
export function encodePageSetState(listPaddr: number | bigint): Uint8Array {
  const b = new Uint8Array(Layouts.pageSetState.size);
  putU32(b, 0x00, Layouts.pageSetState.size);
  putU64(b, 0x08, listPaddr);
  return b;
}

export interface ConfigBuffer {
  readonly reportedTcb: bigint;
  readonly maskChipId: boolean;
  readonly maskChipKey: boolean;
  /** Bits 31:2 of the flags dword. */
  readonly rsvd: number;
  readonly rsvd1Zero: boolean;
}
export function decodeConfig(b: Uint8Array): ConfigBuffer {
  const f = u32(b, 0x08);
  return {
    reportedTcb: u64(b, 0x00),
    maskChipId: (f & 1) !== 0,
    maskChipKey: (f & 2) !== 0,
    rsvd: f >>> 2,
    rsvd1Zero: isZero(b, 0x0c, 0x40),
  };
}
export function encodeConfig(i: {
  reportedTcb?: bigint;
  maskChipId?: boolean;
  maskChipKey?: boolean;
}): Uint8Array {
  const b = new Uint8Array(Layouts.config.size);
  putU64(b, 0x00, i.reportedTcb ?? 0n);
  putU32(b, 0x08, (i.maskChipId ? 1 : 0) | (i.maskChipKey ? 2 : 0));
  return b;
}

export function encodeCommit(): Uint8Array {
  const b = new Uint8Array(Layouts.commit.size);
  putU32(b, 0, Layouts.commit.size);
  return b;
}

export function encodeFeatureInfo(ecxIn: number, paddr: number | bigint): Uint8Array {
  const b = new Uint8Array(Layouts.featureInfo.size);
  putU32(b, 0x00, Layouts.featureInfo.size);
  putU32(b, 0x04, ecxIn);
  putU64(b, 0x08, paddr);
  return b;
}

// ---- structures the firmware writes or reads in memory -----------------------------------------

/** SNP_PLATFORM_STATUS output (`struct sev_data_snp_status`, 32 B) [LX][FW]. */
export interface SnpPlatformStatus {
  readonly apiMajor: number;
  readonly apiMinor: number;
  /** 0 UNINIT, 1 INIT. */
  readonly state: number;
  readonly isRmpInitialized: boolean;
  readonly buildId: number;
  readonly maskChipId: boolean;
  readonly maskChipKey: boolean;
  readonly vlekEn: boolean;
  readonly featureInfo: boolean;
  readonly guestCount: number;
  readonly currentTcb: bigint;
  readonly reportedTcb: bigint;
}
export const SNP_PLATFORM_STATUS_SIZE = 0x20; // [LX] sizeof(struct sev_data_snp_status)
export function encodePlatformStatus(s: SnpPlatformStatus): Uint8Array {
  const b = new Uint8Array(SNP_PLATFORM_STATUS_SIZE);
  b[0x00] = s.apiMajor;
  b[0x01] = s.apiMinor;
  b[0x02] = s.state;
  b[0x03] = s.isRmpInitialized ? 1 : 0;
  putU32(b, 0x04, s.buildId);
  putU32(
    b,
    0x08,
    (s.maskChipId ? 1 : 0) | (s.maskChipKey ? 2 : 0) | (s.vlekEn ? 4 : 0) | (s.featureInfo ? 8 : 0),
  );
  putU32(b, 0x0c, s.guestCount);
  putU64(b, 0x10, s.currentTcb);
  putU64(b, 0x18, s.reportedTcb);
  return b;
}
export function decodePlatformStatus(b: Uint8Array): SnpPlatformStatus {
  const f = u32(b, 0x08);
  return {
    apiMajor: u8(b, 0x00),
    apiMinor: u8(b, 0x01),
    state: u8(b, 0x02),
    isRmpInitialized: (u8(b, 0x03) & 1) !== 0,
    buildId: u32(b, 0x04),
    maskChipId: (f & 1) !== 0,
    maskChipKey: (f & 2) !== 0,
    vlekEn: (f & 4) !== 0,
    featureInfo: (f & 8) !== 0,
    guestCount: u32(b, 0x0c),
    currentTcb: u64(b, 0x10),
    reportedTcb: u64(b, 0x18),
  };
}

/** SNP_GUEST_STATUS output (`snp_guest_status_buffer_t`, 32 B) [FW]. */
export interface SnpGuestStatus {
  readonly policy: bigint;
  readonly asid: number;
  /** 0 INIT, 1 LAUNCH, 2 RUNNING. */
  readonly state: number;
  readonly vcekDis: boolean;
}
export const SNP_GUEST_STATUS_SIZE = 0x20; // [FW] sizeof(snp_guest_status_buffer_t)
export function encodeGuestStatus(s: SnpGuestStatus): Uint8Array {
  const b = new Uint8Array(SNP_GUEST_STATUS_SIZE);
  putU64(b, 0x00, s.policy);
  putU32(b, 0x08, s.asid);
  b[0x0c] = s.state;
  putU32(b, 0x10, s.vcekDis ? 1 : 0);
  return b;
}
export function decodeGuestStatus(b: Uint8Array): SnpGuestStatus {
  return { policy: u64(b, 0x00), asid: u32(b, 0x08), state: u8(b, 0x0c), vcekDis: (u32(b, 0x10) & 1) !== 0 };
}

/** One RANGE of a RANGE_LIST (`struct sev_data_range`, 16 B) [LX][FW snp_range_t]. */
export interface SnpRange {
  readonly base: bigint;
  readonly pageCount: number;
  readonly rsvd: number;
}
export const RANGE_LIST_HEADER_SIZE = 0x08; // [LX] u32 num_elements, u32 rsvd
export const RANGE_SIZE = 0x10; // [LX] sizeof(struct sev_data_range)
/** [FW] SNP_RANGE_LIST_MAX_COUNT = 4096 / sizeof(snp_range_t) - 1 = 255. */
export const RANGE_LIST_MAX_COUNT = 4096 / RANGE_SIZE - 1;

export function encodeRangeList(ranges: readonly { base: number | bigint; pageCount: number }[]): Uint8Array {
  const b = new Uint8Array(RANGE_LIST_HEADER_SIZE + ranges.length * RANGE_SIZE);
  putU32(b, 0, ranges.length);
  ranges.forEach((r, i) => {
    putU64(b, RANGE_LIST_HEADER_SIZE + i * RANGE_SIZE, r.base);
    putU32(b, RANGE_LIST_HEADER_SIZE + i * RANGE_SIZE + 8, r.pageCount);
  });
  return b;
}

/** SNP_FEATURE_INFO output (`struct snp_feature_info`, 16 B) [LX]. */
export const FEATURE_INFO_SIZE = 0x10;

/** Three u64 addresses (`sev_data_snp_dbg`, `sev_data_snp_guest_request`: gctx, then two pages). */
export function decodeThreeAddr(b: Uint8Array): { a: bigint; b: bigint; c: bigint } {
  return { a: u64(b, 0x00), b: u64(b, 0x08), c: u64(b, 0x10) };
}
