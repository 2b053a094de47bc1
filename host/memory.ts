/**
 * Host physical pages and guest memory slots.
 *
 * `PhysAllocator` hands out system-physical pages for KVM's own use (launch VMSAs, the guest context
 * page) and for guest memory. `GuestMemory` is the VM's memslot table: a GPA range maps linearly to
 * an SPA range. Model choice: one SPA per GPA, whose RMP state says whether it is private or shared
 * (KVM with guest_memfd keeps separate private and shared backing pages; the RMP checks a guest or
 * the host meets are the same).
 */
import { PAGE_SIZE, PMD_SIZE } from './kvm-constants.js';

/** A page allocator over [start, end) of system physical memory. */
export class PhysAllocator {
  readonly start: number;
  readonly end: number;
  #next: number;
  readonly #free: number[] = [];

  constructor(start: number, end: number) {
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(end) ||
      start % PAGE_SIZE !== 0 ||
      end % PAGE_SIZE !== 0
    ) {
      throw new RangeError(`PhysAllocator: bounds must be page aligned, got [${start}, ${end})`);
    }
    if (start < 0 || end <= start) throw new RangeError(`PhysAllocator: empty range [${start}, ${end})`);
    this.start = start;
    this.end = end;
    this.#next = start;
  }

  /** One page; undefined when memory is exhausted. */
  allocPage(): number | undefined {
    const reused = this.#free.pop();
    if (reused !== undefined) return reused;
    return this.allocContiguous(PAGE_SIZE, PAGE_SIZE);
  }

  /**
   * `snp_safe_alloc_page`: a page that is not 2 MiB aligned (SNP erratum: the CPU may raise a
   * spurious RMP #PF when a huge page collides with the RMP entry of a 2M-aligned VMSA/VMCB) [LX].
   */
  allocSafePage(): number | undefined {
    const pa = this.allocPage();
    if (pa === undefined || pa % PMD_SIZE !== 0) return pa;
    const other = this.allocPage();
    this.free(pa);
    return other;
  }

  /**
   * `bytes` of contiguous memory starting at an address ≡ `phase` (mod `align`); undefined when it
   * does not fit.
   */
  allocContiguous(bytes: number, align: number, phase = 0): number | undefined {
    if (!Number.isInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE !== 0) {
      throw new RangeError(`PhysAllocator: size must be a positive multiple of 4096, got ${bytes}`);
    }
    if (!Number.isInteger(phase) || phase < 0 || phase >= align || phase % PAGE_SIZE !== 0) {
      throw new RangeError(`PhysAllocator: phase must be a page-aligned offset below ${align}, got ${phase}`);
    }
    const base = Math.ceil((this.#next - phase) / align) * align + phase;
    if (base + bytes > this.end) return undefined;
    for (let pa = this.#next; pa < base; pa += PAGE_SIZE) this.#free.push(pa);
    this.#next = base + bytes;
    return base;
  }

  free(pa: number): void {
    this.#free.push(pa);
  }
}

const isPageAddress = (v: number): boolean => Number.isSafeInteger(v) && v >= 0 && v % PAGE_SIZE === 0;

/** A memslot: `bytes` of guest memory from `gpa` backed by system memory from `spa`. */
export interface MemSlot {
  readonly gpa: number;
  readonly bytes: number;
  readonly spa: number;
}

/** The VM's memslots (KVM_SET_USER_MEMORY_REGION2 + guest_memfd in one, see the module note). */
export class GuestMemory {
  readonly #slots: MemSlot[] = [];

  get slots(): readonly MemSlot[] {
    return this.#slots;
  }

  /** Why guest range [gpa, gpa + bytes) cannot be a new slot (misaligned, empty, overlapping), or undefined. */
  slotProblem(gpa: number, bytes: number): string | undefined {
    for (const [name, v] of [
      ['gpa', gpa],
      ['bytes', bytes],
    ] as const) {
      if (!isPageAddress(v)) return `memslot ${name} must be a page-aligned non-negative integer, got ${v}`;
    }
    if (bytes === 0) return 'memslot size must not be zero';
    const clash = this.#slots.find((s) => gpa < s.gpa + s.bytes && s.gpa < gpa + bytes);
    if (clash === undefined) return undefined;
    return `memslot at GPA 0x${gpa.toString(16)} overlaps the one at 0x${clash.gpa.toString(16)}`;
  }

  /** Adds a slot; throws RangeError on misalignment or overlap (VMM programming errors). */
  addSlot(slot: MemSlot): void {
    const { gpa, bytes, spa } = slot;
    const problem =
      this.slotProblem(gpa, bytes) ??
      (isPageAddress(spa)
        ? undefined
        : `memslot spa must be a page-aligned non-negative integer, got ${spa}`);
    if (problem !== undefined) throw new RangeError(problem);
    this.#slots.push(Object.freeze({ gpa, bytes, spa }));
  }

  /** `gfn_to_memslot`: the slot holding `gpa`, undefined if none. */
  slotOf(gpa: number): MemSlot | undefined {
    for (const s of this.#slots) if (gpa >= s.gpa && gpa < s.gpa + s.bytes) return s;
    return undefined;
  }

  /** Nested translation: the SPA of `gpa`, or -1 when no slot maps it. */
  translate(gpa: number): number {
    const s = this.slotOf(gpa);
    return s === undefined ? -1 : s.spa + (gpa - s.gpa);
  }

  /** `translate` for a 64-bit GPA (a value beyond 2^53 is never mapped). */
  translateBig(gpa: bigint): number {
    return gpa < 0n || gpa > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : this.translate(Number(gpa));
  }
}
