/**
 * The SEV hashes table QEMU writes into the OVMF page reserved for it when a guest is started with
 * -kernel/-initrd/-append (QEMU target/i386/sev.c `SevHashTable`, reproduced by virtee/sev-snp-measure
 * `sev_hashes.py`, commit 8f2b337e). OVMF checks the kernel, initrd and command line it loads
 * against it; SNP measures the page holding it as a NORMAL page (SNP_KERNEL_HASHES section).
 *
 *   header GUID[16] | u16 length = 168 | 3 × { entry GUID[16] | u16 50 | SHA-256[32] }
 *   entries in the order cmdline, initrd, kernel; zero padding to a multiple of 16 (176 bytes)
 */
import { createHash } from 'node:crypto';
import { PAGE_SIZE } from '../rmp/layout.js';
import { guidToBytes } from './guid.js';
import { fail, hex, MeasureErrorCode, type MeasureResult, ok } from './result.js';

/** [QEMU sev.c SEV_HASH_TABLE_HEADER_GUID; P sev_hashes.py] */
export const SEV_HASH_TABLE_HEADER_GUID = '9438d606-4f22-4cc9-b479-a793d411fd21';
/** [QEMU sev.c SEV_CMDLINE_ENTRY_GUID] */
export const SEV_CMDLINE_ENTRY_GUID = '97d02dd8-bd20-4c94-aa78-e7714d36ab2a';
/** [QEMU sev.c SEV_INITRD_ENTRY_GUID] */
export const SEV_INITRD_ENTRY_GUID = '44baf731-3a2f-4bd7-9af1-41e29169781d';
/** [QEMU sev.c SEV_KERNEL_ENTRY_GUID] */
export const SEV_KERNEL_ENTRY_GUID = '4de79437-abd2-427f-b835-d5b172d2045b';

const GUID_SIZE = 16;
const SHA256_SIZE = 32;
/** One entry: GUID, u16 length, SHA-256. */
const ENTRY_SIZE = GUID_SIZE + 2 + SHA256_SIZE;
/** Header + 3 entries = 168: the table's own length field. */
export const SEV_HASH_TABLE_LENGTH = GUID_SIZE + 2 + 3 * ENTRY_SIZE;
/** The table as placed in guest memory, padded to 16 bytes (QEMU `PaddedSevHashTable`): 176. */
export const SEV_HASH_TABLE_SIZE = (SEV_HASH_TABLE_LENGTH + 15) & ~15;

/** SHA-256 digests of the three measured inputs. */
export interface SevHashes {
  readonly cmdline: Uint8Array;
  readonly initrd: Uint8Array;
  readonly kernel: Uint8Array;
}

/** The command line as QEMU hashes it: UTF-8 plus a terminating NUL ("" when absent, so just NUL). */
export function cmdlineBytes(append: string | undefined): Buffer {
  return Buffer.concat([Buffer.from(append ?? '', 'utf8'), Buffer.alloc(1)]);
}

export function sha256(data: Uint8Array): Buffer {
  return createHash('sha256').update(data).digest();
}

/** Hashes from the inputs' bytes; a missing initrd hashes as the empty string, as in QEMU. */
export function sevHashes(input: { kernel: Uint8Array; initrd?: Uint8Array; append?: string }): SevHashes {
  return {
    kernel: sha256(input.kernel),
    initrd: sha256(input.initrd ?? new Uint8Array(0)),
    cmdline: sha256(cmdlineBytes(input.append)),
  };
}

/** The 176-byte padded table. Throws RangeError if a digest is not 32 bytes (a programming error). */
export function buildSevHashesTable(hashes: SevHashes): Buffer {
  const table = Buffer.alloc(SEV_HASH_TABLE_SIZE);
  guidToBytes(SEV_HASH_TABLE_HEADER_GUID).copy(table, 0);
  table.writeUInt16LE(SEV_HASH_TABLE_LENGTH, GUID_SIZE);
  const entries: [string, Uint8Array][] = [
    [SEV_CMDLINE_ENTRY_GUID, hashes.cmdline],
    [SEV_INITRD_ENTRY_GUID, hashes.initrd],
    [SEV_KERNEL_ENTRY_GUID, hashes.kernel],
  ];
  let at = GUID_SIZE + 2;
  for (const [guid, digest] of entries) {
    if (digest.length !== SHA256_SIZE)
      throw new RangeError(`SEV hash entry ${guid} needs a SHA-256, got ${digest.length} bytes`);
    guidToBytes(guid).copy(table, at);
    table.writeUInt16LE(ENTRY_SIZE, at + GUID_SIZE);
    table.set(digest, at + GUID_SIZE + 2);
    at += ENTRY_SIZE;
  }
  return table;
}

/** The 4 KiB page holding `table` at `offset` (= hashes-table GPA & 0xFFF), zeros elsewhere. */
export function buildSevHashesPage(table: Uint8Array, offset: number): MeasureResult<Buffer> {
  if (!Number.isInteger(offset) || offset < 0 || offset + table.length > PAGE_SIZE) {
    return fail(
      MeasureErrorCode.INVALID_IMAGE,
      `the SEV hashes table (${table.length} bytes) does not fit in its page at offset ${Number.isInteger(offset) && offset >= 0 ? hex(offset) : offset}`,
    );
  }
  const page = Buffer.alloc(PAGE_SIZE);
  page.set(table, offset);
  return ok(page);
}
