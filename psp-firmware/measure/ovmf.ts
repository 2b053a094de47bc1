/**
 * OVMF (and COCONUT-SVSM) image parser: the GUIDed footer table that edk2's reset vector keeps just
 * before the last 32 bytes of the image (OvmfPkg/ResetVector/Ia16/ResetVectorVtf0.asm, read by QEMU
 * hw/i386/pc_sysfw_ovmf.c), and the SEV metadata it points to (OvmfPkg/ResetVector/X64/
 * OvmfSevMetadata.asm). Layouts as read by virtee/sev-snp-measure `ovmf.py` (commit 8f2b337e):
 *
 *   image end − 32 − 18: footer entry { u16 size (whole table incl. footer), GUID OVMF_TABLE_FOOTER }
 *   entries before it, walked backwards from the footer: { data[size − 18] | u16 size | GUID }
 *   SEV metadata (offset from image end in its entry): "ASEV" | u32 size | u32 version = 1
 *     | u32 count | count × { u32 gpa | u32 size | u32 section type }
 *
 * Every malformation is a MeasureError naming the image, the offset and what is wrong.
 */
import { u16, u32 } from '../firmware/buffers.js';
import { PAGE_SIZE } from '../rmp/layout.js';
import { guidFromBytes } from './guid.js';
import { fail, hex, MeasureErrorCode, type MeasureResult, ok } from './result.js';

/** Footer of the GUIDed table [edk2 ResetVectorVtf0.asm; QEMU pc_sysfw_ovmf.c OVMF_TABLE_FOOTER_GUID]. */
export const OVMF_TABLE_FOOTER_GUID = '96b582de-1fb2-45f7-baea-a366c55a082d';
/** SEV-ES reset block: u32 AP reset EIP [QEMU target/i386/sev.c SEV_INFO_BLOCK_GUID]. */
export const SEV_ES_RESET_BLOCK_GUID = '00f771de-1a7e-4fcb-890e-68c77e2fb44e';
/** SEV metadata: u32 offset of the "ASEV" header from the image end [edk2 OvmfSevMetadata.asm]. */
export const OVMF_SEV_METADATA_GUID = 'dc886566-984a-4798-a75e-5585a7bf67cc';
/** SEV hashes table: u32 GPA, u32 size of the area QEMU fills [QEMU sev.c SEV_HASH_TABLE_RV_GUID]. */
export const SEV_HASH_TABLE_RV_GUID = '7255371f-3a3b-4b04-927b-1da6efa8d454';
/** SEV launch-secret block: u32 GPA, u32 size [QEMU sev.c SEV_SECRET_GUID]; not measured separately. */
export const SEV_SECRET_BLOCK_GUID = '4c2eb361-7d9b-4cc3-8081-127c90d3d294';
/** COCONUT-SVSM info: u32 offset of the SVSM entry point from the image start [sev-snp-measure ovmf.py]. */
export const SVSM_INFO_GUID = 'a789a612-0597-4c4b-a49f-cbb1fe9d1ddd';

/** The table ends 32 bytes before the end of the image (reset vector + padding) [edk2; QEMU]. */
export const FOOTER_TABLE_END_FROM_IMAGE_END = 32;
/** Every table entry ends with u16 size + GUID. */
const ENTRY_TAIL_SIZE = 2 + 16;
const METADATA_HEADER_SIZE = 16;
const METADATA_DESC_SIZE = 12;
/** "ASEV" [edk2 OvmfSevMetadata.asm SEV_METADATA_SIGNATURE]. */
const METADATA_SIGNATURE = 0x56455341;
const METADATA_VERSION = 1;
/** The firmware is mapped below 4 GiB (QEMU maps it to end at 0xFFFFFFFF). */
export const FOUR_GIB = 0x1_0000_0000;

/** SEV metadata section types [edk2 OvmfSevMetadata.asm; virtee/sev ovmf.rs]. */
export const SevMetadataSectionType = Object.freeze({
  SNP_SEC_MEM: 0x1,
  SNP_SECRETS: 0x2,
  CPUID: 0x3,
  SVSM_CAA: 0x4,
  SNP_KERNEL_HASHES: 0x10,
} as const);
export type SevMetadataSectionType = (typeof SevMetadataSectionType)[keyof typeof SevMetadataSectionType];

const SECTION_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(SevMetadataSectionType).map(([name, value]) => [value, name]),
);

export function sectionTypeName(type: number): string {
  return SECTION_NAMES.get(type) ?? `unknown (${hex(type)})`;
}

export interface SevMetadataSection {
  readonly type: SevMetadataSectionType;
  readonly gpa: number;
  readonly size: number;
}

export interface OvmfImage {
  /** How messages name the image, e.g. "OVMF image 'OVMF.fd'". */
  readonly name: string;
  readonly bytes: Uint8Array;
  /** Data of every footer-table entry by GUID (canonical lowercase text). */
  readonly footerTable: ReadonlyMap<string, Uint8Array>;
  /** AP reset EIP from the SEV-ES reset block; undefined without that entry. */
  readonly sevEsResetEip: number | undefined;
  /** Where QEMU puts the SEV hashes table; undefined without that entry (or with GPA 0). */
  readonly sevHashesTable: { readonly gpa: number; readonly size: number | undefined } | undefined;
  /** SEV metadata sections in table order; undefined when the image has no SEV metadata entry. */
  readonly sevMetadata: readonly SevMetadataSection[] | undefined;
  /** SVSM entry point offset (SVSM images); undefined without that entry. */
  readonly svsmInfoOffset: number | undefined;
}

export function hasMetadataSection(image: OvmfImage, type: SevMetadataSectionType): boolean {
  return image.sevMetadata?.some((s) => s.type === type) ?? false;
}

/** Parses the footer table and SEV metadata of an OVMF or SVSM image. `name` prefixes every message. */
export function parseOvmf(bytes: Uint8Array, name = 'OVMF image'): MeasureResult<OvmfImage> {
  const bad = (message: string) => fail<OvmfImage>(MeasureErrorCode.INVALID_IMAGE, `${name}: ${message}`);
  const size = bytes.length;
  if (size === 0 || size % PAGE_SIZE !== 0 || size > FOUR_GIB) {
    return bad(
      `size ${size} bytes is not a multiple of 4 KiB between 4 KiB and 4 GiB (it is measured as 4 KiB pages)`,
    );
  }
  const footerAt = size - FOOTER_TABLE_END_FROM_IMAGE_END - ENTRY_TAIL_SIZE;
  const footerGuid = guidFromBytes(bytes, footerAt + 2);
  if (footerGuid !== OVMF_TABLE_FOOTER_GUID) {
    return bad(
      `no GUIDed footer table: expected GUID ${OVMF_TABLE_FOOTER_GUID} at offset ${hex(footerAt + 2)} ` +
        `(${FOOTER_TABLE_END_FROM_IMAGE_END + 16} bytes before the end), found ${footerGuid}; is this an OVMF/SVSM firmware image?`,
    );
  }
  const tableSize = u16(bytes, footerAt);
  if (tableSize < ENTRY_TAIL_SIZE || tableSize - ENTRY_TAIL_SIZE > footerAt) {
    return bad(
      `footer table size ${tableSize} at offset ${hex(footerAt)} is impossible (truncated or garbled table)`,
    );
  }
  const tableStart = footerAt - (tableSize - ENTRY_TAIL_SIZE);
  const footerTable = new Map<string, Uint8Array>();
  let end = footerAt;
  while (end > tableStart) {
    if (end - tableStart < ENTRY_TAIL_SIZE) {
      return bad(
        `${end - tableStart} stray bytes at offset ${hex(tableStart)}, the start of the footer table (garbled table)`,
      );
    }
    const entrySize = u16(bytes, end - ENTRY_TAIL_SIZE);
    const guid = guidFromBytes(bytes, end - 16);
    if (entrySize < ENTRY_TAIL_SIZE || entrySize > end - tableStart) {
      return bad(
        `footer entry ${guid} ending at offset ${hex(end)} declares size ${entrySize}, outside 18..${end - tableStart} (garbled table)`,
      );
    }
    if (footerTable.has(guid)) return bad(`footer entry ${guid} appears twice (garbled table)`);
    footerTable.set(guid, bytes.subarray(end - entrySize, end - ENTRY_TAIL_SIZE));
    end -= entrySize;
  }

  const dataOf = (guid: string, what: string, minLength: number): MeasureResult<Uint8Array | undefined> => {
    const data = footerTable.get(guid);
    if (data !== undefined && data.length < minLength) {
      return fail(
        MeasureErrorCode.INVALID_IMAGE,
        `${name}: ${what} entry ${guid} holds ${data.length} bytes, needs ${minLength}`,
      );
    }
    return ok(data);
  };
  const reset = dataOf(SEV_ES_RESET_BLOCK_GUID, 'SEV-ES reset block', 4);
  if (!reset.ok) return reset;
  const hashes = dataOf(SEV_HASH_TABLE_RV_GUID, 'SEV hashes table', 4);
  if (!hashes.ok) return hashes;
  const svsmInfo = dataOf(SVSM_INFO_GUID, 'SVSM info', 4);
  if (!svsmInfo.ok) return svsmInfo;
  const metaEntry = dataOf(OVMF_SEV_METADATA_GUID, 'SEV metadata', 4);
  if (!metaEntry.ok) return metaEntry;

  let sevMetadata: SevMetadataSection[] | undefined;
  if (metaEntry.value !== undefined) {
    const parsed = parseSevMetadata(bytes, u32(metaEntry.value, 0), name);
    if (!parsed.ok) return parsed;
    sevMetadata = parsed.value;
  }
  const hashesGpa = hashes.value === undefined ? 0 : u32(hashes.value, 0);
  return ok(
    Object.freeze({
      name,
      bytes,
      footerTable,
      sevEsResetEip: reset.value === undefined ? undefined : u32(reset.value, 0),
      sevHashesTable:
        hashes.value === undefined || hashesGpa === 0
          ? undefined
          : { gpa: hashesGpa, size: hashes.value.length >= 8 ? u32(hashes.value, 4) : undefined },
      sevMetadata,
      svsmInfoOffset: svsmInfo.value === undefined ? undefined : u32(svsmInfo.value, 0),
    }),
  );
}

function parseSevMetadata(
  bytes: Uint8Array,
  offsetFromEnd: number,
  name: string,
): MeasureResult<SevMetadataSection[]> {
  const bad = (message: string) =>
    fail<SevMetadataSection[]>(MeasureErrorCode.INVALID_IMAGE, `${name}: SEV metadata ${message}`);
  const size = bytes.length;
  if (offsetFromEnd < METADATA_HEADER_SIZE || offsetFromEnd > size) {
    return bad(
      `offset ${hex(offsetFromEnd)} from the image end points outside the ${hex(size)}-byte image (truncated image?)`,
    );
  }
  const start = size - offsetFromEnd;
  if (u32(bytes, start) !== METADATA_SIGNATURE) {
    return bad(
      `at offset ${hex(start)} does not start with "ASEV" (found ${Buffer.from(bytes.subarray(start, start + 4)).toString('hex')})`,
    );
  }
  const length = u32(bytes, start + 4);
  const version = u32(bytes, start + 8);
  const count = u32(bytes, start + 12);
  if (version !== METADATA_VERSION) return bad(`version ${version} is not ${METADATA_VERSION}`);
  if (length < METADATA_HEADER_SIZE + count * METADATA_DESC_SIZE || start + length > size) {
    return bad(
      `header at ${hex(start)} declares ${length} bytes for ${count} sections, which does not fit (garbled or truncated)`,
    );
  }
  const sections: SevMetadataSection[] = [];
  for (let i = 0; i < count; i++) {
    const at = start + METADATA_HEADER_SIZE + i * METADATA_DESC_SIZE;
    const gpa = u32(bytes, at);
    const sectionSize = u32(bytes, at + 4);
    const type = u32(bytes, at + 8);
    const where = `section ${i} (${sectionTypeName(type)}, GPA ${hex(gpa)}, size ${hex(sectionSize)})`;
    if (!SECTION_NAMES.has(type)) return bad(`${where}: unknown section type ${hex(type)}`);
    if (gpa % PAGE_SIZE !== 0) return bad(`${where}: GPA is not 4 KiB aligned`);
    if (sectionSize === 0 || sectionSize % PAGE_SIZE !== 0 || gpa + sectionSize > FOUR_GIB) {
      return bad(`${where}: size is not a non-zero multiple of 4 KiB below 4 GiB`);
    }
    sections.push(Object.freeze({ type: type as SevMetadataSectionType, gpa, size: sectionSize }));
  }
  return ok(sections);
}
