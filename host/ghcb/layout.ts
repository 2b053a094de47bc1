/**
 * The GHCB page: field offsets, the valid bitmap and the response encoding.
 * Layout of `struct ghcb` / `struct ghcb_save_area` [LX] arch/x86/include/asm/svm.h
 * (EXPECTED_GHCB_SAVE_AREA_SIZE 1032, EXPECTED_GHCB_SIZE PAGE_SIZE).
 */

/** Byte offsets of the GHCB fields the host reads or writes [LX] arch/x86/include/asm/svm.h */
export const GHCB_FIELD = Object.freeze({
  cpl: 0x0cb,
  xss: 0x140,
  dr7: 0x160,
  rip: 0x178,
  rsp: 0x1d8,
  rax: 0x1f8,
  rcx: 0x308,
  rdx: 0x310,
  rbx: 0x318,
  rbp: 0x328,
  rsi: 0x330,
  rdi: 0x338,
  sw_exit_code: 0x390,
  sw_exit_info_1: 0x398,
  sw_exit_info_2: 0x3a0,
  sw_scratch: 0x3a8,
  xcr0: 0x3e8,
} as const);
export type GhcbField = keyof typeof GHCB_FIELD;

/** valid_bitmap: 16 bytes at 0x3F0 [LX] struct ghcb_save_area */
export const GHCB_VALID_BITMAP_OFFSET = 0x3f0;
export const GHCB_VALID_BITMAP_BYTES = 16;
/** x87_state_gpa at 0x400 [LX] struct ghcb_save_area */
export const GHCB_X87_STATE_GPA_OFFSET = 0x400;
/** shared_buffer[GHCB_SHARED_BUF_SIZE = 2032] at 0x800 [LX] struct ghcb */
export const GHCB_SHARED_BUFFER_OFFSET = 0x800;
export const GHCB_SHARED_BUF_SIZE = 2032;
/** reserved_0xff0[10] ends the shared buffer [LX] struct ghcb */
export const GHCB_RESERVED_0XFF0_OFFSET = 0xff0;
/** u16 protocol_version at 0xFFA [LX] struct ghcb */
export const GHCB_PROTOCOL_VERSION_OFFSET = 0xffa;
/** u32 ghcb_usage at 0xFFC (only usage 0 is supported by KVM) [LX] struct ghcb */
export const GHCB_USAGE_OFFSET = 0xffc;
export const GHCB_SIZE = 0x1000;

/** GHCB_BITMAP_IDX(field) = offsetof(struct ghcb_save_area, field) / sizeof(u64) [LX] asm/svm.h */
export function ghcbBitmapIndex(field: GhcbField): number {
  return Math.floor(GHCB_FIELD[field] / 8);
}

/**
 * SW_EXITINFO1[31:0] response codes (GHCB spec 2.03 §4.1; names `GHCB_HV_RESP_*` from the 2024-12
 * Linux thread) [ap-creation.md A.3].
 */
export const GHCB_HV_RESP = Object.freeze({
  NO_ACTION: 0n,
  ISSUE_EXCEPTION: 1n,
  MALFORMED_INPUT: 2n,
} as const);

/** SW_EXITINFO2 error codes with SW_EXITINFO1 = 2 [LX] arch/x86/include/asm/sev-common.h */
export const GHCB_ERR = Object.freeze({
  NOT_REGISTERED: 1n,
  INVALID_USAGE: 2n,
  INVALID_SCRATCH_AREA: 3n,
  MISSING_INPUT: 4n,
  INVALID_INPUT: 5n,
  INVALID_EVENT: 6n,
} as const);

const GHCB_ERR_NAMES: Readonly<Record<string, string>> = Object.freeze(
  Object.fromEntries(Object.entries(GHCB_ERR).map(([name, value]) => [value.toString(), `GHCB_ERR_${name}`])),
);
/** `GHCB_ERR_INVALID_INPUT` for 5n. */
export function ghcbErrName(code: bigint): string {
  return GHCB_ERR_NAMES[code.toString()] ?? `GHCB_ERR_?(${code})`;
}

/** The memory a GHCB lives in (`SystemMemory` satisfies it). */
export interface GhcbMemory {
  read(spa: number, length: number): Uint8Array;
  write(spa: number, bytes: Uint8Array): void;
}

function u64le(bytes: Uint8Array): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(0, true);
}

function le(value: bigint, length: number): Uint8Array {
  const out = new Uint8Array(length);
  let v = BigInt.asUintN(length * 8, value);
  for (let i = 0; i < length; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

/**
 * The GHCB page at system address `spa` (the host's `svm->sev_es.ghcb` mapping). Reads and writes
 * are little-endian at the real offsets; `set` marks the field valid as `ghcb_set_<field>` does.
 * The caller checks host write access when it maps the page.
 */
export class GhcbView {
  readonly memory: GhcbMemory;
  readonly spa: number;

  constructor(memory: GhcbMemory, spa: number) {
    if (!Number.isSafeInteger(spa) || spa < 0 || spa % GHCB_SIZE !== 0) {
      throw new RangeError(`GHCB page address must be page aligned, got ${spa}`);
    }
    this.memory = memory;
    this.spa = spa;
  }

  get(field: GhcbField): bigint {
    if (field === 'cpl') return BigInt(this.memory.read(this.spa + GHCB_FIELD.cpl, 1)[0]!);
    return u64le(this.memory.read(this.spa + GHCB_FIELD[field], 8));
  }

  /** `ghcb_set_<field>`: store the value and set its valid bit. */
  set(field: GhcbField, value: bigint): void {
    this.memory.write(this.spa + GHCB_FIELD[field], le(value, field === 'cpl' ? 1 : 8));
    this.setValid(field, true);
  }

  isValid(field: GhcbField): boolean {
    const bit = ghcbBitmapIndex(field);
    const byte = this.memory.read(this.spa + GHCB_VALID_BITMAP_OFFSET + (bit >> 3), 1)[0]!;
    return (byte & (1 << (bit & 7))) !== 0;
  }

  setValid(field: GhcbField, valid: boolean): void {
    const bit = ghcbBitmapIndex(field);
    const at = this.spa + GHCB_VALID_BITMAP_OFFSET + (bit >> 3);
    const byte = this.memory.read(at, 1)[0]!;
    this.memory.write(at, Uint8Array.of(valid ? byte | (1 << (bit & 7)) : byte & ~(1 << (bit & 7))));
  }

  /** The 128-bit valid bitmap as two little-endian quadwords. */
  validBitmap(): readonly [bigint, bigint] {
    const b = this.memory.read(this.spa + GHCB_VALID_BITMAP_OFFSET, GHCB_VALID_BITMAP_BYTES);
    return [u64le(b.subarray(0, 8)), u64le(b.subarray(8, 16))];
  }

  setValidBitmap(low: bigint, high: bigint): void {
    const b = new Uint8Array(GHCB_VALID_BITMAP_BYTES);
    b.set(le(low, 8), 0);
    b.set(le(high, 8), 8);
    this.memory.write(this.spa + GHCB_VALID_BITMAP_OFFSET, b);
  }

  usage(): number {
    const b = this.memory.read(this.spa + GHCB_USAGE_OFFSET, 4);
    return new DataView(b.buffer, b.byteOffset, b.byteLength).getUint32(0, true);
  }

  setUsage(usage: number): void {
    this.memory.write(this.spa + GHCB_USAGE_OFFSET, le(BigInt(usage >>> 0), 4));
  }

  protocolVersion(): number {
    const b = this.memory.read(this.spa + GHCB_PROTOCOL_VERSION_OFFSET, 2);
    return b[0]! | (b[1]! << 8);
  }

  setProtocolVersion(version: number): void {
    this.memory.write(this.spa + GHCB_PROTOCOL_VERSION_OFFSET, le(BigInt(version & 0xffff), 2));
  }

  /** Bytes of the page at `offset` (the shared buffer, for scratch areas). */
  readBytes(offset: number, length: number): Uint8Array {
    return this.memory.read(this.spa + offset, length);
  }

  writeBytes(offset: number, bytes: Uint8Array): void {
    this.memory.write(this.spa + offset, bytes);
  }
}
