/**
 * Where the RMP table sits in system memory (RMP_BASE / RMP_END, firmware-rmp.md §A.4) and which
 * coverage that implies. The hardware derives the coverage from RMP_END: entry n exists when
 * RMP_BASE + 0x4000 + 16n <= RMP_END, so covered bytes = (RMP_END + 1 - RMP_BASE - 0x4000) / 16 × 4 KiB.
 */
import { PAGE_SIZE, RMP_BOOKKEEPING_SIZE, RMP_ENTRY_SIZE } from './layout.js';

const MiB = 0x10_0000;
/** [APM] RMP_BASE and RMP_END + 1 must be 8 KiB aligned ([LX] checks GENMASK_ULL(51, 13)). */
export const RMP_BOUND_ALIGN = 0x2000;
/** [FW] get_rmp_bounds: RMP_BASE 1 MiB aligned and RMP_END - RMP_BASE + 1 a multiple of 1 MiB (Genoa). */
export const RMP_FW_ALIGN = MiB;

/** Bytes of the table (bookkeeping + one entry per covered page) for `coveredBytes`. */
export function rmpTableBytes(coveredBytes: number): number {
  return RMP_BOOKKEEPING_SIZE + (coveredBytes / PAGE_SIZE) * RMP_ENTRY_SIZE;
}

export interface RmpPlacement {
  /** RMP_BASE. */
  readonly rmpBase: number;
  /** The coverage RMP_END implies (may exceed system memory, as on real machines). */
  readonly coveredBytes: number;
}

/**
 * The default placement [DER]: the table at the top of system memory, RMP_BASE 1 MiB aligned and the
 * table a whole number of MiB, as the Genoa firmware requires ([FW] get_rmp_bounds). A table of k MiB
 * covers k × 256 MiB − 4 MiB (the 16 KiB bookkeeping costs 4 MiB of coverage), so the coverage is the
 * smallest such value >= memoryBytes: it covers all of memory, the RMP itself included (as Linux
 * requires), and runs past the end of memory (those pages exist only in the RMP; SNP_INIT makes them
 * HV-Fixed). Throws RangeError when memory cannot hold the table.
 */
export function rmpAtTopOfMemory(memoryBytes: number): RmpPlacement {
  if (!Number.isInteger(memoryBytes) || memoryBytes <= 0 || memoryBytes % PAGE_SIZE !== 0) {
    throw new RangeError(
      `rmpAtTopOfMemory: memoryBytes must be a positive multiple of 4096, got ${memoryBytes}`,
    );
  }
  const perMiB = (MiB / RMP_ENTRY_SIZE) * PAGE_SIZE; // 256 MiB of coverage per MiB of entries
  const bookkeepingCoverage = (RMP_BOOKKEEPING_SIZE / RMP_ENTRY_SIZE) * PAGE_SIZE; // 4 MiB
  const k = Math.ceil((memoryBytes + bookkeepingCoverage) / perMiB);
  const coveredBytes = k * perMiB - bookkeepingCoverage;
  const rmpBase = Math.floor((memoryBytes - k * MiB) / MiB) * MiB;
  if (rmpBase < 0) {
    throw new RangeError(
      `rmpAtTopOfMemory: ${memoryBytes} bytes of memory cannot hold a ${k} MiB RMP (at least ${k} MiB needed)`,
    );
  }
  return { rmpBase, coveredBytes };
}
