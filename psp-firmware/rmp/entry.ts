/**
 * Decoded RMP entry (not a hot-path type) and its lossless codec to/from the raw four-word layout of
 * `layout.ts`. `decode(encode(e))` equals `e` for every valid entry; `encode(decode(w))` equals `w`
 * for every 16-byte raw value.
 */
import {
  ASID_MASK,
  GFN_BITS,
  PAGE_SIZE,
  TWO_POW_20,
  W0_ASSIGNED,
  W0_GFN_SHIFT,
  W0_IMMUTABLE,
  W0_PAGESIZE,
  W0_SUBPAGE_MASK,
  W0_SUBPAGE_SHIFT,
  W1_ASID_SHIFT,
  W1_GFN_HI_MASK,
  W1_LOCK,
  W1_VALIDATED,
  W1_VMSA,
  W3_IDE_STREAM_MASK,
  W3_IDE_STREAM_SHIFT,
  W3_IMPLICIT_KEY_SELECT,
  W3_PAGE_MIGRATION_MASK,
  W3_PAGE_MIGRATION_SHIFT,
  W3_RESERVED_MASK,
  W3_ROOT_PORT_MASK,
  W3_ROOT_PORT_SHIFT,
} from './layout.js';

/** One RMP entry, every field of the raw layout. */
export interface RmpEntry {
  readonly assigned: boolean;
  /** 0 = 4 KB, 1 = 2 MB. */
  readonly pageSize: 0 | 1;
  readonly immutable: boolean;
  /** Assigned 4K entries among the 511 non-head entries of the 2 MB region (head entries only). */
  readonly subpageCount: number;
  /** Full page-aligned GPA (the stored GFN << 12, up to 2^51 - 4096). */
  readonly gpa: number;
  readonly asid: number;
  readonly vmsa: boolean;
  readonly validated: boolean;
  /** Firmware lock bit (q0 bit 63; Linux calls it reserved). */
  readonly lock: boolean;
  /** VMPL0..VMPL3 permission masks (bits 0-4: R, W, X_USER, X_SUPER, SSS). */
  readonly vmplPerms: readonly [number, number, number, number];
  readonly implicitKeySelect: boolean;
  readonly rootPortId: number;
  readonly pcieIdeStreamId: number;
  readonly pageMigration: number;
  /** q1 bits 33-48 (reserved), kept so the codec is lossless. */
  readonly q1Reserved: number;
}

const GFN_LIMIT = 2 ** GFN_BITS;

/** The all-zero entry: a Hypervisor page. */
export const ZERO_RMP_ENTRY: RmpEntry = Object.freeze({
  assigned: false,
  pageSize: 0,
  immutable: false,
  subpageCount: 0,
  gpa: 0,
  asid: 0,
  vmsa: false,
  validated: false,
  lock: false,
  vmplPerms: Object.freeze([0, 0, 0, 0]) as unknown as readonly [number, number, number, number],
  implicitKeySelect: false,
  rootPortId: 0,
  pcieIdeStreamId: 0,
  pageMigration: 0,
  q1Reserved: 0,
});

/** An entry with the given fields and zero elsewhere. */
export function makeRmpEntry(fields: Partial<RmpEntry>): RmpEntry {
  return { ...ZERO_RMP_ENTRY, ...fields };
}

function checkUint(name: string, value: number, max: number): void {
  if (!Number.isInteger(value) || value < 0 || value > max) {
    throw new RangeError(`RmpEntry.${name} must be an integer in 0..${max}, got ${value}`);
  }
}

/** Throws a RangeError naming the first field that does not fit its bit width. */
export function validateRmpEntry(e: RmpEntry): void {
  if (e.pageSize !== 0 && e.pageSize !== 1)
    throw new RangeError(`RmpEntry.pageSize must be 0 or 1, got ${e.pageSize}`);
  checkUint('subpageCount', e.subpageCount, 0x1ff);
  if (!Number.isInteger(e.gpa) || e.gpa < 0 || e.gpa % PAGE_SIZE !== 0 || e.gpa / PAGE_SIZE >= GFN_LIMIT) {
    throw new RangeError(`RmpEntry.gpa must be a page-aligned GPA below 2^51, got ${e.gpa}`);
  }
  checkUint('asid', e.asid, ASID_MASK);
  if (e.vmplPerms.length !== 4) throw new RangeError('RmpEntry.vmplPerms must hold 4 masks');
  e.vmplPerms.forEach((p, i) => {
    checkUint(`vmplPerms[${i}]`, p, 0xff);
  });
  checkUint('rootPortId', e.rootPortId, W3_ROOT_PORT_MASK);
  checkUint('pcieIdeStreamId', e.pcieIdeStreamId, W3_IDE_STREAM_MASK);
  checkUint('pageMigration', e.pageMigration, W3_PAGE_MIGRATION_MASK);
  checkUint('q1Reserved', e.q1Reserved, 0xffff);
}

/** Writes `e` as four raw words at `words[offset..offset+3]`. */
export function encodeRmpEntryInto(e: RmpEntry, words: Uint32Array, offset: number): void {
  validateRmpEntry(e);
  const gfn = e.gpa / PAGE_SIZE;
  const gfnLo = gfn % TWO_POW_20;
  const gfnHi = Math.floor(gfn / TWO_POW_20);
  words[offset] =
    ((e.assigned ? W0_ASSIGNED : 0) |
      (e.pageSize === 1 ? W0_PAGESIZE : 0) |
      (e.immutable ? W0_IMMUTABLE : 0) |
      (e.subpageCount << W0_SUBPAGE_SHIFT) |
      (gfnLo << W0_GFN_SHIFT)) >>>
    0;
  words[offset + 1] =
    ((gfnHi & W1_GFN_HI_MASK) |
      (e.asid << W1_ASID_SHIFT) |
      (e.vmsa ? W1_VMSA : 0) |
      (e.validated ? W1_VALIDATED : 0) |
      (e.lock ? W1_LOCK : 0)) >>>
    0;
  const [p0, p1, p2, p3] = e.vmplPerms;
  words[offset + 2] = (p0 | (p1 << 8) | (p2 << 16) | (p3 << 24)) >>> 0;
  words[offset + 3] =
    ((e.implicitKeySelect ? W3_IMPLICIT_KEY_SELECT : 0) |
      (e.q1Reserved << 1) |
      (e.rootPortId << W3_ROOT_PORT_SHIFT) |
      (e.pcieIdeStreamId << W3_IDE_STREAM_SHIFT) |
      (e.pageMigration << W3_PAGE_MIGRATION_SHIFT)) >>>
    0;
}

/** The four raw words of `e`. */
export function encodeRmpEntry(e: RmpEntry): Uint32Array {
  const w = new Uint32Array(4);
  encodeRmpEntryInto(e, w, 0);
  return w;
}

/** Decodes the four raw words at `words[offset..offset+3]`. */
export function decodeRmpEntry(words: ArrayLike<number>, offset = 0): RmpEntry {
  const w0 = words[offset] ?? 0;
  const w1 = words[offset + 1] ?? 0;
  const w2 = words[offset + 2] ?? 0;
  const w3 = words[offset + 3] ?? 0;
  const gfn = (w0 >>> W0_GFN_SHIFT) + (w1 & W1_GFN_HI_MASK) * TWO_POW_20;
  return {
    assigned: (w0 & W0_ASSIGNED) !== 0,
    pageSize: (w0 & W0_PAGESIZE) !== 0 ? 1 : 0,
    immutable: (w0 & W0_IMMUTABLE) !== 0,
    subpageCount: (w0 & W0_SUBPAGE_MASK) >>> W0_SUBPAGE_SHIFT,
    gpa: gfn * PAGE_SIZE,
    asid: (w1 >>> W1_ASID_SHIFT) & ASID_MASK,
    vmsa: (w1 & W1_VMSA) !== 0,
    validated: (w1 & W1_VALIDATED) !== 0,
    lock: (w1 & W1_LOCK) !== 0,
    vmplPerms: [w2 & 0xff, (w2 >>> 8) & 0xff, (w2 >>> 16) & 0xff, w2 >>> 24],
    implicitKeySelect: (w3 & W3_IMPLICIT_KEY_SELECT) !== 0,
    rootPortId: (w3 >>> W3_ROOT_PORT_SHIFT) & W3_ROOT_PORT_MASK,
    pcieIdeStreamId: (w3 >>> W3_IDE_STREAM_SHIFT) & W3_IDE_STREAM_MASK,
    pageMigration: (w3 >>> W3_PAGE_MIGRATION_SHIFT) & W3_PAGE_MIGRATION_MASK,
    q1Reserved: (w3 & W3_RESERVED_MASK) >>> 1,
  };
}

/** The GFN stored in an entry's first two words. */
export function entryGfn(w0: number, w1: number): number {
  return (w0 >>> W0_GFN_SHIFT) + (w1 & W1_GFN_HI_MASK) * TWO_POW_20;
}

/** Splits a GFN into the w0 (bits 12-31) and w1 (bits 0-18) parts. */
export function gfnWords(gfn: number): readonly [number, number] {
  return [((gfn % TWO_POW_20) << W0_GFN_SHIFT) >>> 0, Math.floor(gfn / TWO_POW_20) & W1_GFN_HI_MASK];
}

/** 16 raw bytes (little-endian) of an entry's four words. */
export function entryBytes(words: ArrayLike<number>, offset = 0): Uint8Array {
  const out = new Uint8Array(16);
  const dv = new DataView(out.buffer);
  for (let i = 0; i < 4; i++) dv.setUint32(i * 4, words[offset + i] ?? 0, true);
  return out;
}

/** The two quadwords (lo = q0, hi = q1) of 16 raw bytes. */
export function entryQuadwords(bytes: Uint8Array): { lo: bigint; hi: bigint } {
  if (bytes.length !== 16) throw new RangeError(`an RMP entry is 16 bytes, got ${bytes.length}`);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, 16);
  return { lo: dv.getBigUint64(0, true), hi: dv.getBigUint64(8, true) };
}

/**
 * Linux `dump_rmpentry()` format of 16 raw bytes: `[0x%016llx - 0x%016llx]` with (lo, hi)
 * ([LX] arch/x86/virt/svm/sev.c).
 */
export function formatRmpEntryLinux(bytes: Uint8Array): string {
  const { lo, hi } = entryQuadwords(bytes);
  return `[0x${lo.toString(16).padStart(16, '0')} - 0x${hi.toString(16).padStart(16, '0')}]`;
}
