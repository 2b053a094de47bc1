/**
 * The SNP launch digest: a SHA-384 chain over 0x70-byte PAGE_INFO structures, one per 4 KiB page
 * given to SNP_LAUNCH_UPDATE [FW sev_mcmd.h `snp_mcmd_launch_update_page_info_t`; firmware-rmp.md
 * §E.1–E.2]:
 *
 *   0x00 DIGEST_CUR[48] | 0x30 CONTENTS[48] | 0x60 u16 LENGTH = 0x70 | 0x62 u8 PAGE_TYPE
 *   | 0x63 bit0 IMI_PAGE | 0x64..0x67 VMPL masks (order: see PageInfoVmplOrder) | 0x68 u64 GPA
 *   digest' = SHA-384(PAGE_INFO); the digest starts as 48 zero bytes (GCTX_CREATE zeroes the context)
 *
 * `LaunchDigest` keeps one PAGE_INFO buffer whose first 48 bytes *are* the current digest, so a
 * step writes CONTENTS and the tail in place and hashes the buffer: no Buffer is allocated per page
 * (node:crypto returns each digest as a 48-character latin1 string, copied in place).
 */
import { hash } from 'node:crypto';
import { GFN_BITS, PAGE_SHIFT, PAGE_SIZE, PAGE_SIZE_2M } from '../rmp/layout.js';
import { VmsaOffset } from '../vmsa-layout.js';
import { hex, type MeasureError, MeasureErrorCode, measureError } from './result.js';

/** SNP_LAUNCH_UPDATE page types [LX include/linux/psp-sev.h `SNP_PAGE_TYPE_*`; FW]. 0 and 7 are reserved. */
export const SnpPageType = Object.freeze({
  NORMAL: 0x1,
  VMSA: 0x2,
  ZERO: 0x3,
  UNMEASURED: 0x4,
  SECRETS: 0x5,
  CPUID: 0x6,
} as const);
export type SnpPageType = (typeof SnpPageType)[keyof typeof SnpPageType];

/** Name of each 3-bit PAGE_TYPE value, reserved ones included. */
export const SNP_PAGE_TYPE_NAMES: readonly string[] = Object.freeze([
  'RESERVED_0',
  'NORMAL',
  'VMSA',
  'ZERO',
  'UNMEASURED',
  'SECRETS',
  'CPUID',
  'RESERVED_7',
]);

/** SHA-384 digest size: the launch digest (MEASUREMENT) is 48 bytes [FW; report 0x090]. */
export const LD_SIZE = 48;
/** sizeof(snp_mcmd_launch_update_page_info_t) == 0x70, also its LENGTH field [FW sev_mcmd.h]. */
export const PAGE_INFO_SIZE = 0x70;

/** Field offsets of PAGE_INFO [FW sev_mcmd.h]. */
export const PageInfoOffset = Object.freeze({
  DIGEST_CUR: 0x00,
  CONTENTS: 0x30,
  LENGTH: 0x60,
  PAGE_TYPE: 0x62,
  /** bit 0 IMI_PAGE, bits 7:1 reserved. */
  IMI_PAGE: 0x63,
  /** The four VMPL bytes 0x64..0x67; their order is PageInfoVmplOrder. */
  VMPL_PERMS: 0x64,
  GPA: 0x68,
} as const);

/**
 * GPA at which KVM places every VMSA page (RMP GPA of the VMSA) [LX arch/x86/kvm/svm/sev.c
 * INITIAL_VMSA_GPA]; the measurement tools use the same (`VMSA_GPA`).
 */
export const VMSA_GPA = 0xfffffffff000;

/** Largest GPA the RMP can hold: GFN field bits 50:12, 39 bits [LX struct rmpentry_raw; FW sev_rmp.h]. */
export const RMP_GPA_MAX = 2 ** (GFN_BITS + PAGE_SHIFT) - PAGE_SIZE;

/**
 * Byte order of the VMPL permission masks in PAGE_INFO 0x64..0x67 (firmware-rmp.md §E.1/§H.2):
 * - `firmware`: 0x64 reserved, 0x65 VMPL1, 0x66 VMPL2, 0x67 VMPL3 [FW sev_mcmd.h, Genoa 1.55.25];
 * - `tools`: 0x64 VMPL3, 0x65 VMPL2, 0x66 VMPL1, 0x67 0 (sev-snp-measure, sev-snp-measure-go,
 *   virtee/sev, citing "SNP spec 8.17.2 Table 67").
 * Both give the same bytes when every mask is 0, which is always the case under KVM.
 * Same values as `FirmwareProfile.pageInfoVmplOrder`.
 */
export const PageInfoVmplOrder = Object.freeze({ FIRMWARE: 'firmware', TOOLS: 'tools' } as const);
export type PageInfoVmplOrder = (typeof PageInfoVmplOrder)[keyof typeof PageInfoVmplOrder];

/** SNP_LAUNCH_UPDATE's VMPL1..3 permission masks and IMI_PAGE bit (all 0 / false by default). */
export interface PageInfoPerms {
  readonly vmpl1?: number;
  readonly vmpl2?: number;
  readonly vmpl3?: number;
  readonly imi?: boolean;
}

/** One PAGE_INFO step, reported when a trace is requested. Digests in lowercase hex. */
export interface MeasureStep {
  /** 0-based step number since the digest was created or reset. */
  readonly index: number;
  readonly pageType: SnpPageType;
  readonly gpa: number;
  /** CONTENTS for NORMAL and VMSA pages; null where the firmware measures 48 zero bytes. */
  readonly contents: string | null;
  /** The launch digest after this step. */
  readonly digest: string;
}

export interface LaunchDigestOptions {
  /** Default `firmware` (the AMD firmware source); `tools` reproduces sev-snp-measure for non-zero masks. */
  readonly vmplOrder?: PageInfoVmplOrder;
  /** Called after every step (tracing). Leave unset on the fast path. */
  readonly onStep?: (step: MeasureStep) => void;
}

const SHA384 = 'sha384';
/** node:crypto's digest as a latin1 ('binary') string is cheaper than a new Buffer; bytes are exact. */
const LATIN1 = 'binary';
const TWO_32 = 2 ** 32;

function isMeasuredType(pageType: number): boolean {
  return pageType === SnpPageType.NORMAL || pageType === SnpPageType.VMSA;
}

function checkPageType(pageType: number): MeasureError | undefined {
  if (Number.isInteger(pageType) && pageType >= SnpPageType.NORMAL && pageType <= SnpPageType.CPUID)
    return undefined;
  const what =
    pageType === 0 || pageType === 7
      ? `reserved PAGE_TYPE ${pageType}`
      : `PAGE_TYPE ${pageType} is not a 3-bit value`;
  return measureError(
    MeasureErrorCode.INVALID_PAGE_TYPE,
    `${what}: SNP_LAUNCH_UPDATE takes 1..6 (NORMAL..CPUID)`,
  );
}

function checkGpa(gpa: number, length: number, alignment: number): MeasureError | undefined {
  if (!Number.isSafeInteger(gpa) || gpa < 0 || gpa % alignment !== 0) {
    return measureError(
      MeasureErrorCode.INVALID_GPA,
      `GPA ${Number.isSafeInteger(gpa) && gpa >= 0 ? hex(gpa) : gpa} is not a ${hex(alignment)}-aligned guest address`,
    );
  }
  if (gpa + length - PAGE_SIZE > RMP_GPA_MAX) {
    return measureError(
      MeasureErrorCode.INVALID_GPA,
      `GPA range ${hex(gpa)}+${hex(length)} goes above ${hex(RMP_GPA_MAX)}, the largest GPA an RMP entry holds`,
    );
  }
  return undefined;
}

function checkPerms(perms: PageInfoPerms): MeasureError | undefined {
  for (const name of ['vmpl1', 'vmpl2', 'vmpl3'] as const) {
    const v = perms[name];
    if (v !== undefined && (!Number.isInteger(v) || v < 0 || v > 0xff)) {
      return measureError(
        MeasureErrorCode.INVALID_PERMS,
        `${name} permission mask ${v} is not a byte (0..0xff)`,
      );
    }
  }
  return undefined;
}

/**
 * A launch digest being built, as the firmware keeps it in the guest context. Usable directly by
 * SNP_LAUNCH_UPDATE: `updatePage(type, page, rmpGpa, { vmpl1, vmpl2, vmpl3, imi })` per 4 KiB page,
 * `update2M` for a 2 MB page, `copyDigestTo` to store the 48 bytes. Inputs are checked before any
 * state changes; a refused input returns a MeasureError and leaves the digest as it was.
 */
export class LaunchDigest {
  readonly #pageInfo = Buffer.alloc(PAGE_INFO_SIZE);
  readonly #view = new DataView(this.#pageInfo.buffer, this.#pageInfo.byteOffset, PAGE_INFO_SIZE);
  readonly #vmplOrder: PageInfoVmplOrder;
  readonly #onStep: ((step: MeasureStep) => void) | undefined;
  #vmsaScratch: Buffer | undefined;
  #steps = 0;

  constructor(options: LaunchDigestOptions = {}) {
    const order = options.vmplOrder ?? PageInfoVmplOrder.FIRMWARE;
    if (order !== PageInfoVmplOrder.FIRMWARE && order !== PageInfoVmplOrder.TOOLS) {
      throw new RangeError(`vmplOrder must be 'firmware' or 'tools', got '${String(order)}'`);
    }
    this.#vmplOrder = order;
    this.#onStep = options.onStep;
    this.#pageInfo.writeUInt16LE(PAGE_INFO_SIZE, PageInfoOffset.LENGTH);
  }

  /** PAGE_INFO steps taken since creation or the last reset. */
  get steps(): number {
    return this.#steps;
  }

  get vmplOrder(): PageInfoVmplOrder {
    return this.#vmplOrder;
  }

  /** Restarts from 48 zero bytes, or from `seed` (e.g. a precomputed OVMF hash). */
  reset(seed?: Uint8Array): MeasureError | undefined {
    if (seed !== undefined && seed.length !== LD_SIZE) {
      return measureError(
        MeasureErrorCode.INVALID_SEED,
        `a launch-digest seed is ${LD_SIZE} bytes, got ${seed.length}`,
      );
    }
    this.#pageInfo.fill(0, 0, LD_SIZE);
    if (seed !== undefined) this.#pageInfo.set(seed, 0);
    this.#steps = 0;
    return undefined;
  }

  /** A copy of the current 48-byte digest. */
  digest(): Buffer {
    return Buffer.from(this.#pageInfo.subarray(0, LD_SIZE));
  }

  digestHex(): string {
    return this.#pageInfo.toString('hex', 0, LD_SIZE);
  }

  /** Writes the 48-byte digest into `target` at `offset` without allocating. */
  copyDigestTo(target: Uint8Array, offset = 0): void {
    if (!Number.isInteger(offset) || offset < 0 || offset + LD_SIZE > target.length) {
      throw new RangeError(
        `no room for ${LD_SIZE} digest bytes at offset ${offset} of a ${target.length}-byte buffer`,
      );
    }
    target.set(this.#pageInfo.subarray(0, LD_SIZE), offset);
  }

  /**
   * One 4 KiB step. `contents` is the plaintext page for NORMAL and VMSA (required) and is ignored
   * for the other types (may be null); `gpa` is the RMP GPA (4 KiB aligned).
   */
  updatePage(
    pageType: number,
    contents: Uint8Array | null,
    gpa: number,
    perms: PageInfoPerms = {},
  ): MeasureError | undefined {
    return this.updatePages(pageType, contents, gpa, PAGE_SIZE, perms);
  }

  /**
   * A 2 MB LAUNCH_UPDATE: 512 steps from a 2 MB-aligned GPA, GPA += 0x1000 [FW]. VMSA, SECRETS and CPUID pages are
   * 4 KiB only [FW: INVALID_PAGE_SIZE]; an unaligned GPA is the firmware's INVALID_ADDRESS.
   */
  update2M(
    pageType: number,
    contents: Uint8Array | null,
    gpa: number,
    perms: PageInfoPerms = {},
  ): MeasureError | undefined {
    const bad = checkPageType(pageType) ?? checkGpa(gpa, PAGE_SIZE_2M, PAGE_SIZE_2M);
    if (bad !== undefined) return bad;
    if (pageType === SnpPageType.VMSA || pageType === SnpPageType.SECRETS || pageType === SnpPageType.CPUID) {
      return measureError(
        MeasureErrorCode.INVALID_PAGE_SIZE,
        `${SNP_PAGE_TYPE_NAMES[pageType]} pages are 4 KiB only; a 2 MB LAUNCH_UPDATE of them is refused`,
      );
    }
    return this.updatePages(pageType, contents, gpa, PAGE_SIZE_2M, perms);
  }

  /**
   * `length / 4096` consecutive steps from `gpa` (the tools' multi-page regions: an OVMF image, a
   * ZERO section). For NORMAL, `contents` holds all `length` bytes. VMSA, SECRETS and CPUID take
   * exactly one page.
   */
  updatePages(
    pageType: number,
    contents: Uint8Array | null,
    gpa: number,
    length: number,
    perms: PageInfoPerms = {},
  ): MeasureError | undefined {
    const bad =
      checkPageType(pageType) ??
      checkLength(pageType, length) ??
      checkGpa(gpa, length, PAGE_SIZE) ??
      checkPerms(perms);
    if (bad !== undefined) return bad;
    const measured = isMeasuredType(pageType);
    if (contents === null ? measured : contents.length !== length) {
      const got = contents === null ? 'none' : `${contents.length} bytes`;
      return measureError(
        MeasureErrorCode.INVALID_CONTENTS,
        `${SNP_PAGE_TYPE_NAMES[pageType]} update of ${hex(length)} bytes at ${hex(gpa)} needs ${measured ? '' : 'no contents or '}${length} bytes of contents, got ${got}`,
      );
    }
    this.#writeTail(pageType, perms);
    const pi = this.#pageInfo;
    if (!measured) pi.fill(0, PageInfoOffset.CONTENTS, PageInfoOffset.LENGTH);
    const source =
      pageType === SnpPageType.VMSA && contents !== null ? this.#vmsaForHash(contents) : contents;
    for (let offset = 0; offset < length; offset += PAGE_SIZE) {
      if (measured && source !== null) {
        pi.write(
          hash(SHA384, source.subarray(offset, offset + PAGE_SIZE), LATIN1),
          PageInfoOffset.CONTENTS,
          LATIN1,
        );
      }
      const pageGpa = gpa + offset;
      this.#view.setUint32(PageInfoOffset.GPA, pageGpa % TWO_32, true);
      this.#view.setUint32(PageInfoOffset.GPA + 4, Math.floor(pageGpa / TWO_32), true);
      pi.write(hash(SHA384, pi, LATIN1), PageInfoOffset.DIGEST_CUR, LATIN1);
      if (this.#onStep !== undefined) this.#report(pageType, pageGpa, measured);
      this.#steps++;
    }
    return undefined;
  }

  /** Bytes 0x62..0x67: PAGE_TYPE, IMI_PAGE and the VMPL masks in the configured order. */
  #writeTail(pageType: number, perms: PageInfoPerms): void {
    const pi = this.#pageInfo;
    const at = PageInfoOffset.VMPL_PERMS;
    pi[PageInfoOffset.PAGE_TYPE] = pageType;
    pi[PageInfoOffset.IMI_PAGE] = perms.imi === true ? 1 : 0;
    const v1 = perms.vmpl1 ?? 0;
    const v2 = perms.vmpl2 ?? 0;
    const v3 = perms.vmpl3 ?? 0;
    if (this.#vmplOrder === PageInfoVmplOrder.FIRMWARE) {
      pi[at] = 0;
      pi[at + 1] = v1;
      pi[at + 2] = v2;
      pi[at + 3] = v3;
    } else {
      pi[at] = v3;
      pi[at + 1] = v2;
      pi[at + 2] = v1;
      pi[at + 3] = 0;
    }
  }

  /** The VMSA as measured: GUEST_TSC_SCALE and GUEST_TSC_OFFSET read as 0 [FW]; the caller's page is untouched. */
  #vmsaForHash(vmsa: Uint8Array): Buffer {
    this.#vmsaScratch ??= Buffer.alloc(PAGE_SIZE);
    const scratch = this.#vmsaScratch;
    scratch.set(vmsa);
    scratch.fill(0, VmsaOffset.GUEST_TSC_SCALE, VmsaOffset.GUEST_TSC_OFFSET + 8);
    return scratch;
  }

  #report(pageType: number, gpa: number, measured: boolean): void {
    const pi = this.#pageInfo;
    this.#onStep?.({
      index: this.#steps,
      pageType: pageType as SnpPageType,
      gpa,
      contents: measured ? pi.toString('hex', PageInfoOffset.CONTENTS, PageInfoOffset.LENGTH) : null,
      digest: pi.toString('hex', 0, LD_SIZE),
    });
  }
}

function checkLength(pageType: number, length: number): MeasureError | undefined {
  if (!Number.isSafeInteger(length) || length <= 0 || length % PAGE_SIZE !== 0) {
    return measureError(
      MeasureErrorCode.INVALID_CONTENTS,
      `update length ${length} is not a positive multiple of 4 KiB`,
    );
  }
  const single =
    pageType === SnpPageType.VMSA || pageType === SnpPageType.SECRETS || pageType === SnpPageType.CPUID;
  if (single && length !== PAGE_SIZE) {
    return measureError(
      MeasureErrorCode.INVALID_PAGE_SIZE,
      `${SNP_PAGE_TYPE_NAMES[pageType]} is measured one 4 KiB page at a time, got ${hex(length)} bytes`,
    );
  }
  return undefined;
}
