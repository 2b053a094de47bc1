/**
 * The raw RMP entry as it sits in memory, viewed as four little-endian u32 words (no BigInt on the
 * check path). Bit positions: Linux `struct rmpentry_raw` (arch/x86/virt/svm/sev.c) and the Genoa
 * firmware `rmp_entry_t` (sev_rmp.h) for quadword 0; the firmware's `rmp_quadword2_t` for quadword 1.
 *
 *   w0 = q0[31:0]   assigned b0, pagesize b1, immutable b2, subpage_count b3-11, GFN[19:0] b12-31
 *   w1 = q0[63:32]  GFN[38:20] b0-18, ASID b19-28, VMSA b29, Validated b30, lock b31
 *   w2 = q1[31:0]   VMPL0..VMPL3 permission masks, one byte each
 *   w3 = q1[63:32]  implicit_key_select b0, reserved b1-16, root_port_id b17-21,
 *                   pcie_ide_stream_id b22-29, page_migration b30-31
 */

/** Bytes per RMP entry. [LX] `struct rmpentry_raw` is 16 bytes. */
export const RMP_ENTRY_SIZE = 16;
/** u32 words per entry. */
export const RMP_ENTRY_WORDS = 4;
/** Processor bookkeeping before entry 0. [LX] RMPTABLE_CPU_BOOKKEEPING_SZ = 0x4000. */
export const RMP_BOOKKEEPING_SIZE = 0x4000;
/** Per-ASID u64 counters in the bookkeeping area. [FW] sev_rmp.h RMP_NUM_ASID_COUNTERS = 2048. */
export const RMP_ASID_COUNTERS = 2048;

/** 4 KiB page. [APM] */
export const PAGE_SHIFT = 12;
export const PAGE_SIZE = 0x1000;
/** 4K entries per 2 MB region. */
export const PAGES_PER_2M = 512;
export const PAGE_SIZE_2M = 0x200000;
/** RMP page size encodings. [LX] arch/x86/include/asm/sev.h RMP_PG_SIZE_4K 0, RMP_PG_SIZE_2M 1. */
export const RMP_PG_SIZE_4K = 0;
export const RMP_PG_SIZE_2M = 1;

// --- w0 (q0 bits 0-31) ---
/** [LX] rmpentry_raw.assigned, q0 bit 0. */
export const W0_ASSIGNED = 0x1;
/** [LX] rmpentry_raw.pagesize, q0 bit 1. */
export const W0_PAGESIZE = 0x2;
/** [LX] rmpentry_raw.immutable, q0 bit 2. */
export const W0_IMMUTABLE = 0x4;
/** [FW] rmp_fields_t.subpage_count, q0 bits 3-11 (9 bits). */
export const W0_SUBPAGE_SHIFT = 3;
export const W0_SUBPAGE_MASK = 0x1ff << W0_SUBPAGE_SHIFT;
/** [LX] rmpentry_raw.gpa, q0 bits 12-50 (39 bits, a GFN); the low 20 GFN bits live in w0. */
export const W0_GFN_SHIFT = 12;
export const GFN_LO_BITS = 20;
export const GFN_LO_MASK = 0xfffff;

// --- w1 (q0 bits 32-63) ---
/** GFN bits 20-38 (q0 bits 32-50). */
export const W1_GFN_HI_MASK = 0x7ffff;
/** [LX] rmpentry_raw.asid, q0 bits 51-60 → w1 bits 19-28. */
export const W1_ASID_SHIFT = 19;
export const ASID_MASK = 0x3ff;
/** [LX] rmpentry_raw.vmsa, q0 bit 61. */
export const W1_VMSA = 0x20000000;
/** [LX] rmpentry_raw.validated, q0 bit 62. */
export const W1_VALIDATED = 0x40000000;
/** [FW] rmp_fields_t.lock, q0 bit 63 (Linux: rsvd2). */
export const W1_LOCK = 0x80000000;

// --- w3 (q1 bits 32-63) ---
/** [FW] rmp_quadword2_t.implicit_key_select, q1 bit 32. */
export const W3_IMPLICIT_KEY_SELECT = 0x1;
/** [FW] root_port_id q1 bits 49-53. */
export const W3_ROOT_PORT_SHIFT = 17;
export const W3_ROOT_PORT_MASK = 0x1f;
/** [FW] pcie_ide_stream_id q1 bits 54-61. */
export const W3_IDE_STREAM_SHIFT = 22;
export const W3_IDE_STREAM_MASK = 0xff;
/** [FW] page_migration q1 bits 62-63. */
export const W3_PAGE_MIGRATION_SHIFT = 30;
export const W3_PAGE_MIGRATION_MASK = 0x3;
/** q1 bits 33-48, reserved. */
export const W3_RESERVED_MASK = 0x1fffe;

/** GFN field width: 39 bits (q0 bits 12-50). */
export const GFN_BITS = 39;
/** 2^20, to combine the two GFN halves without 32-bit overflow. */
export const TWO_POW_20 = 0x100000;
export const TWO_POW_32 = 0x100000000;

/** VMPL permission mask bits. [APM Table 15-36; FW vmpl_perm_mask_t] */
export const VMPL_PERM = Object.freeze({
  READ: 0x01,
  WRITE: 0x02,
  EXECUTE_USER: 0x04,
  EXECUTE_SUPERVISOR: 0x08,
  SUPERVISOR_SHADOW_STACK: 0x10,
} as const);
/** Bits 5-7 of a permission mask are reserved, SBZ. [APM Table 15-36] */
export const VMPL_PERM_RESERVED = 0xe0;
export const VMPL_PERM_ALL = 0x1f;

/** Firmware GPA-field tag bits [38:36] (CSF-983): 0 Firmware, 1 Metadata, 2 Firmware-IOMMU. [FW sev_rmp.h] */
export const GPA_STATE_SHIFT = 36;
export const GPA_STATE_FIRMWARE = 0;
export const GPA_STATE_METADATA = 1;
export const GPA_STATE_FW_IOMMU = 2;
