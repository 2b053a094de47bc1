/**
 * The RMP table: raw 16-byte entries in `Uint32Array` words (hardware layout, `layout.ts`), allocated
 * on the first write. Two geometries, both read as `chunks[pfn >>> chunkShift][(pfn & chunkMask) << 2]`:
 * - flat (covered memory <= 1 TiB, i.e. <= 2^28 pages and <= 4 GiB of RMP): one chunk holding the whole
 *   table, also exposed as `flat`. It is one ArrayBuffer allocated with the Rmp and never replaced; the
 *   OS backs its pages lazily, so memory grows only with the 4 KiB pages of RMP actually written
 *   (untouched pages read as zero). The check path then indexes one typed array that never changes,
 *   which the JIT keeps in registers across a batch loop.
 * - chunked (above 1 TiB, up to 16 TiB): chunks of 2^18 entries (1 GiB covered, 4 MiB of RMP each),
 *   each allocated on the first write to it. Chunks never written share one zero array, so they read as
 *   Hypervisor entries with no "allocated?" branch on the check path.
 *
 * Coverage limit: 16 TiB (2^44 bytes, 2^32 pages: `pfn >>> chunkShift` needs pfn < 2^32); addresses
 * beyond the coverage are "not RMP-covered" (state Default, hypervisor-owned for the CPU), exactly as
 * pages beyond RMP_END.
 *
 * Counters kept exact on every write (`writeEntryWords`, used by RMPUPDATE, PSMASH and the firmware):
 * - per-ASID counters in the 16 KiB bookkeeping area (2048 little-endian u64, [FW]
 *   `rmp_asid_counters_t`): counter[a] = number of raw entries with Assigned = 1 and ASID = a (a 2 MB
 *   page counts once, as its head entry; after PSMASH it counts 512) [DER];
 * - the subpage count in bits 3-11 of each 2 MB-aligned (head) entry: the number of *assigned* entries
 *   among the 511 non-head entries of the 2 MB region. Derivation [DER]: the field is 9 bits wide
 *   (0..511), the Genoa firmware's `set_rmp_sub_page_count()` leaves the 2 MB-aligned page itself out of
 *   the count (at most 511 for a full region) [FW], and RMPREAD's
 *   2MB-region status bit means "any *other* page in the region is assigned". So "all 512 entries
 *   unassigned" = head unassigned && subpage count 0, and RMPREAD's region bit = subpage count > 0:
 *   both O(1).
 * The head's own subpage bits are never taken from a caller: every write keeps the stored count.
 */
import { decodeRmpEntry, encodeRmpEntryInto, entryBytes, type RmpEntry } from './entry.js';
import {
  ASID_MASK,
  PAGE_SIZE,
  PAGES_PER_2M,
  RMP_ASID_COUNTERS,
  RMP_BOOKKEEPING_SIZE,
  RMP_ENTRY_SIZE,
  TWO_POW_32,
  W0_ASSIGNED,
  W0_PAGESIZE,
  W0_SUBPAGE_MASK,
  W0_SUBPAGE_SHIFT,
  W1_ASID_SHIFT,
} from './layout.js';
import { PageState, pageStateOfWords } from './page-state.js';
import { rmpTableBytes } from './placement.js';

/** Entries per chunk of a chunked table: 2^18 entries = 1 GiB covered = 4 MiB of RMP. */
export const RMP_CHUNK_SHIFT = 18;
export const RMP_CHUNK_ENTRIES = 1 << RMP_CHUNK_SHIFT;
export const RMP_CHUNK_MASK = RMP_CHUNK_ENTRIES - 1;
/** Largest table kept flat (one chunk): 2^28 pages = 1 TiB covered = 4 GiB of RMP. */
export const RMP_FLAT_MAX_PAGES = 2 ** 28;
/** Largest coverage the chunk index supports: 2^32 pages = 16 TiB. */
export const RMP_MAX_COVERED_BYTES = 2 ** 44;

export interface RmpOptions {
  /** Bytes of system memory the RMP covers (multiple of 4 KiB, at most 16 TiB). */
  readonly coveredBytes: number;
}

export class Rmp {
  /** Covered 4K pages: entry n exists for n < coveredPages. */
  readonly coveredPages: number;
  readonly coveredBytes: number;
  /**
   * Entry storage, four words per entry. Hot-path field: read directly by the access checks.
   * Never write into it except through `writeEntryWords` (unallocated chunks share one zero array).
   */
  readonly chunks: Uint32Array[];
  /** `pfn >>> chunkShift` is the chunk index: 31 when flat (always 0), 18 when chunked. */
  readonly chunkShift: number;
  /** `pfn & chunkMask` is the entry index inside its chunk. */
  readonly chunkMask: number;
  /** Entries per chunk (the whole coverage when flat). */
  readonly chunkEntries: number;
  /**
   * The whole table when flat (`chunks[0]`, allocated once, never replaced), else null. Hot-path field,
   * read-only like `chunks`.
   */
  readonly flat: Uint32Array | null;
  /** The 16 KiB bookkeeping area: 2048 u64 per-ASID counters (lo, hi words). */
  readonly bookkeeping: Uint32Array;
  /** Shared zero array of the chunks never written (chunked geometry; unused when flat). */
  readonly #zero: Uint32Array;
  /** Chunks written at least once. */
  readonly #written: Uint8Array;
  #allocated = 0;

  constructor(options: RmpOptions) {
    const { coveredBytes } = options;
    if (!Number.isInteger(coveredBytes) || coveredBytes <= 0 || coveredBytes % PAGE_SIZE !== 0) {
      throw new RangeError(`Rmp: coveredBytes must be a positive multiple of 4096, got ${coveredBytes}`);
    }
    if (coveredBytes > RMP_MAX_COVERED_BYTES) {
      throw new RangeError(`Rmp: coveredBytes ${coveredBytes} exceeds the supported 16 TiB (2^44 bytes)`);
    }
    this.coveredBytes = coveredBytes;
    this.coveredPages = coveredBytes / PAGE_SIZE;
    const flat = this.coveredPages <= RMP_FLAT_MAX_PAGES;
    this.chunkShift = flat ? 31 : RMP_CHUNK_SHIFT;
    this.chunkMask = flat ? 0x7fffffff : RMP_CHUNK_MASK;
    this.chunkEntries = flat ? this.coveredPages : RMP_CHUNK_ENTRIES;
    const chunkCount = Math.ceil(this.coveredPages / this.chunkEntries);
    // Flat: the table itself (lazily backed by the OS); chunked: the shared zero chunk.
    this.#zero = new Uint32Array(Math.min(this.chunkEntries, this.coveredPages) * 4);
    this.flat = flat ? this.#zero : null;
    // A packed (not holey) array of one element kind: the check path indexes it without hole checks.
    this.chunks = [];
    for (let c = 0; c < chunkCount; c++) this.chunks.push(this.#zero);
    this.#written = new Uint8Array(chunkCount);
    this.bookkeeping = new Uint32Array(RMP_BOOKKEEPING_SIZE / 4);
  }

  /** Size in bytes of the whole table as hardware would lay it out (bookkeeping + entries). */
  get tableBytes(): number {
    return rmpTableBytes(this.coveredBytes);
  }

  /** Chunks written at least once (the rest read as zero). */
  get allocatedChunks(): number {
    return this.#allocated;
  }

  isCovered(pfn: number): boolean {
    return Number.isInteger(pfn) && pfn >= 0 && pfn < this.coveredPages;
  }

  /** Word `i` (0..3) of entry `pfn`; the caller guarantees coverage. */
  word(pfn: number, i: number): number {
    return this.chunks[pfn >>> this.chunkShift]![((pfn & this.chunkMask) << 2) + i]!;
  }

  /** Decoded entry, or undefined when the page is not RMP-covered. */
  entry(pfn: number): RmpEntry | undefined {
    if (!this.isCovered(pfn)) return undefined;
    return decodeRmpEntry(this.chunks[pfn >>> this.chunkShift]!, (pfn & this.chunkMask) << 2);
  }

  /** Page state of `pfn` (Default when not covered). */
  pageState(pfn: number): PageState {
    if (!this.isCovered(pfn)) return PageState.DEFAULT;
    return pageStateOfWords(this.word(pfn, 0), this.word(pfn, 1));
  }

  /** The 16 raw bytes of entry `pfn` exactly as in memory (throws if not covered). */
  dump(pfn: number): Uint8Array {
    this.#requireCovered(pfn, 'dump');
    return entryBytes(this.chunks[pfn >>> this.chunkShift]!, (pfn & this.chunkMask) << 2);
  }

  /** Raw table bytes [byteOffset, byteOffset + length) in hardware layout (bookkeeping then entries). */
  readTable(byteOffset: number, length: number): Uint8Array {
    if (!Number.isInteger(byteOffset) || !Number.isInteger(length) || byteOffset < 0 || length < 0) {
      throw new RangeError(`Rmp.readTable: bad range ${byteOffset}+${length}`);
    }
    if (byteOffset + length > this.tableBytes) {
      throw new RangeError(
        `Rmp.readTable: range ends at ${byteOffset + length}, table is ${this.tableBytes} bytes`,
      );
    }
    const out = new Uint8Array(length);
    const dv = new DataView(out.buffer);
    for (let i = 0; i < length; i++) {
      const at = byteOffset + i;
      let word: number;
      if (at < RMP_BOOKKEEPING_SIZE) word = this.bookkeeping[at >>> 2]!;
      else {
        const rel = at - RMP_BOOKKEEPING_SIZE;
        word = this.word(Math.floor(rel / RMP_ENTRY_SIZE), (rel % RMP_ENTRY_SIZE) >>> 2);
      }
      dv.setUint8(i, (word >>> ((at & 3) * 8)) & 0xff);
    }
    return out;
  }

  /** Per-ASID counter (bookkeeping u64 number `asid`). */
  asidCount(asid: number): number {
    if (!Number.isInteger(asid) || asid < 0 || asid >= RMP_ASID_COUNTERS) {
      throw new RangeError(`Rmp.asidCount: ASID must be 0..${RMP_ASID_COUNTERS - 1}, got ${asid}`);
    }
    return this.bookkeeping[asid * 2]! + this.bookkeeping[asid * 2 + 1]! * TWO_POW_32;
  }

  /** Subpage count of the 2 MB region containing `pfn` (from its head entry). */
  subpageCount(pfn: number): number {
    this.#requireCovered(pfn, 'subpageCount');
    return (this.word(pfn - (pfn % PAGES_PER_2M), 0) & W0_SUBPAGE_MASK) >>> W0_SUBPAGE_SHIFT;
  }

  /**
   * The entry that governs covered page `pfn` ([LX] `__snp_lookup_rmpentry`): its 2 MB-aligned entry
   * when that is an assigned 2 MB entry (the 511 others are "don't care"), else its own entry.
   */
  authoritativePfn(pfn: number): number {
    const head = pfn - (pfn % PAGES_PER_2M);
    return (this.word(head, 0) & (W0_ASSIGNED | W0_PAGESIZE)) === (W0_ASSIGNED | W0_PAGESIZE) ? head : pfn;
  }

  /** True when every covered 4K entry of the 2 MB region containing `pfn` is unassigned. O(1). */
  regionUnassigned(pfn: number): boolean {
    const head = pfn - (pfn % PAGES_PER_2M);
    const w0 = this.word(head, 0);
    return (w0 & (W0_ASSIGNED | W0_SUBPAGE_MASK)) === 0;
  }

  /**
   * Writes raw words for entry `pfn`, keeping the per-ASID counters and the head's subpage count
   * exact. The subpage bits of `w0` are ignored: a head entry keeps its stored count.
   */
  writeEntryWords(pfn: number, w0: number, w1: number, w2: number, w3: number): void {
    this.#requireCovered(pfn, 'write');
    const chunkIndex = pfn >>> this.chunkShift;
    const chunk = this.#writable(chunkIndex);
    const at = (pfn & this.chunkMask) << 2;
    const oldW0 = chunk[at]!;
    const oldW1 = chunk[at + 1]!;
    const oldAssigned = oldW0 & W0_ASSIGNED;
    const newAssigned = w0 & W0_ASSIGNED;
    const isHead = pfn % PAGES_PER_2M === 0;
    const keptCount = isHead ? oldW0 & W0_SUBPAGE_MASK : 0;
    chunk[at] = ((w0 & ~W0_SUBPAGE_MASK) | keptCount) >>> 0;
    chunk[at + 1] = w1 >>> 0;
    chunk[at + 2] = w2 >>> 0;
    chunk[at + 3] = w3 >>> 0;
    if (oldAssigned) this.#addAsid((oldW1 >>> W1_ASID_SHIFT) & ASID_MASK, -1);
    if (newAssigned) this.#addAsid((w1 >>> W1_ASID_SHIFT) & ASID_MASK, 1);
    if (!isHead && oldAssigned !== newAssigned) {
      // The head lies in the same chunk: 2 MB regions never straddle a chunk.
      const headAt = ((pfn - (pfn % PAGES_PER_2M)) & this.chunkMask) << 2;
      const hw0 = chunk[headAt]!;
      const count = ((hw0 & W0_SUBPAGE_MASK) >>> W0_SUBPAGE_SHIFT) + (newAssigned ? 1 : -1);
      chunk[headAt] = ((hw0 & ~W0_SUBPAGE_MASK) | (count << W0_SUBPAGE_SHIFT)) >>> 0;
    }
  }

  /** Writes a decoded entry (its `subpageCount` is ignored, see `writeEntryWords`). */
  writeEntry(pfn: number, entry: RmpEntry): void {
    const w = new Uint32Array(4);
    encodeRmpEntryInto(entry, w, 0);
    this.writeEntryWords(pfn, w[0]!, w[1]!, w[2]!, w[3]!);
  }

  /**
   * Full recount of both counters over the allocated chunks; returns one message per mismatch
   * (empty when the incremental counters are exact). O(table); for tests and debugging.
   */
  verifyCounters(): string[] {
    const problems: string[] = [];
    const asid = new Float64Array(RMP_ASID_COUNTERS);
    for (let c = 0; c < this.chunks.length; c++) {
      const chunk = this.chunks[c]!;
      if (this.#written[c] === 0) continue;
      const entries = chunk.length >>> 2;
      for (let head = 0; head < entries; head += PAGES_PER_2M) {
        let sub = 0;
        const end = Math.min(head + PAGES_PER_2M, entries);
        for (let i = head; i < end; i++) {
          const w0 = chunk[i << 2]!;
          if (w0 & W0_ASSIGNED) {
            const a = (chunk[(i << 2) + 1]! >>> W1_ASID_SHIFT) & ASID_MASK;
            asid[a] = asid[a]! + 1;
            if (i !== head) sub++;
          }
        }
        const stored = (chunk[head << 2]! & W0_SUBPAGE_MASK) >>> W0_SUBPAGE_SHIFT;
        if (stored !== sub) {
          const pfn = c * this.chunkEntries + head;
          problems.push(`subpage count of head pfn 0x${pfn.toString(16)}: stored ${stored}, recount ${sub}`);
        }
      }
    }
    for (let a = 0; a < RMP_ASID_COUNTERS; a++) {
      const stored = this.asidCount(a);
      if (stored !== asid[a]) problems.push(`ASID ${a} counter: stored ${stored}, recount ${asid[a]}`);
    }
    return problems;
  }

  #addAsid(asid: number, delta: number): void {
    const lo = asid * 2;
    const value = this.bookkeeping[lo]! + this.bookkeeping[lo + 1]! * TWO_POW_32 + delta;
    this.bookkeeping[lo] = value % TWO_POW_32;
    this.bookkeeping[lo + 1] = Math.floor(value / TWO_POW_32);
  }

  #writable(chunkIndex: number): Uint32Array {
    if (this.#written[chunkIndex] !== 0) return this.chunks[chunkIndex]!;
    this.#written[chunkIndex] = 1;
    this.#allocated++;
    if (this.flat !== null) return this.flat;
    const entries = Math.min(this.chunkEntries, this.coveredPages - chunkIndex * this.chunkEntries);
    const fresh = new Uint32Array(entries * 4);
    this.chunks[chunkIndex] = fresh;
    return fresh;
  }

  #requireCovered(pfn: number, what: string): void {
    if (!this.isCovered(pfn)) {
      throw new RangeError(
        `Rmp.${what}: pfn ${typeof pfn === 'number' ? `0x${pfn.toString(16)}` : String(pfn)} is not RMP-covered (covered pages: ${this.coveredPages})`,
      );
    }
  }
}
