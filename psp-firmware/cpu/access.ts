/**
 * RMP checks on memory accesses ([APM 15.36.10] Table 15-39, `firmware-rmp.md` §B.4). Hot path: reads
 * `Uint32Array` words, returns one number, allocates nothing.
 *
 * Result encoding (one number, ranges never overlap):
 *   0                      allowed
 *   0x404                  #VC, PAGE_NOT_VALIDATED (SNP guest, Validated = 0)
 *   [2^31, 2^32)           host #PF error code (bit 31 RMP | P | W)
 *   >= 2^32                #VMEXIT(NPF) EXITINFO1 (bit 32 GUEST_FINAL or 33 GUEST_PAGE always set;
 *                          bit 31 RMP for RMP faults; 34 ENC, 36 VMPL, 37 SSS as applicable)
 *
 * Which entry is authoritative [LX `__snp_lookup_rmpentry`]: when the 2 MB-aligned entry of the region
 * is an assigned 2 MB entry it governs all 512 pages (its GPA + page offset is the reverse map);
 * otherwise the page's own 4K entry does. Tail entries under a 2 MB entry are "don't care" (§H9).
 */
import { W0_ASSIGNED, W0_PAGESIZE, W0_SUBPAGE_MASK } from '../rmp/layout.js';
import type { Rmp } from '../rmp/table.js';
import { SevFeature } from '../vmsa-layout.js';
import { AccessKind, type MappingSize, PfErr, VC_PAGE_NOT_VALIDATED } from './codes.js';
import type { GuestContext } from './guest-context.js';

// Module constants (not import bindings): the JIT folds them into the check path.
const ASSIGNED_2M = W0_ASSIGNED | W0_PAGESIZE; // 0x3
const ASSIGNED_OR_SUBPAGES = W0_ASSIGNED | W0_SUBPAGE_MASK; // 0xff9: bits 0 and 3-11

function badAddress(what: string, value: number): never {
  throw new RangeError(`${what} must be a non-negative number, got ${value}`);
}

function badArguments(kind: number, mapping: number, cbit: number): never {
  throw new RangeError(
    `access check: kind must be 0..5, mapping 0..2, cbit 0|1; got ${kind}, ${mapping}, ${cbit}`,
  );
}

/** #PF error code of an RMP violation by a host write, as an int32 (bit 31 set). [LX] X86_PF_RMP | P | W */
const HOST_WRITE_FAULT = PfErr.RMP | PfErr.PRESENT | PfErr.WRITE | 0;

/**
 * Host #PF error code of an RMP violation, by access kind, as int32 bit patterns (`>>> 0` gives the
 * code). Reads and fetches are not RMP-checked for the host (code 0: the result is `code & -fails`).
 * The lookup also validates `kind`: an out-of-range or non-integer kind reads as undefined.
 * [LX] X86_PF_RMP bit 31 | P | W
 */
const HOST_FAULT_BY_KIND = Int32Array.of(
  0, // READ
  HOST_WRITE_FAULT, // WRITE
  0, // EXECUTE
  PfErr.RMP | PfErr.PRESENT | 0, // PAGE_TABLE_READ
  HOST_WRITE_FAULT, // PAGE_TABLE_WRITE (A/D update)
  HOST_WRITE_FAULT, // SHADOW_STACK
);

/** 0, 1 or 2 (a MappingSize), integer. */
function validMapping(mapping: number): boolean {
  return mapping >= 0 && mapping <= 2 && (mapping | 0) === mapping;
}

/**
 * Hypervisor-Owned check of covered page `pfn`: 1 if it fails, else 0. 4K mapping: the page's entry,
 * or its 2 MB-aligned entry if that is an assigned 2 MB entry; 2M/1G mapping: all 512 entries of the
 * region (head Assigned or subpage count != 0). Branch-free: data-dependent branches would serialize the
 * cache misses of independent checks.
 */
function hypervisorOwnedFails(rmp: Rmp, pfn: number, mapping: number): number {
  const chunk = rmp.chunks[pfn >>> rmp.chunkShift]!;
  const idx = pfn & rmp.chunkMask;
  const hw0 = chunk[(idx & ~511) << 2]!;
  if (mapping !== 0) return ((hw0 & ASSIGNED_OR_SUBPAGES) + 0xfff) >>> 12; // 1 iff any of bits 0, 3-11
  return (chunk[idx << 2]! | (hw0 & (hw0 >>> 1))) & 1; // entry assigned | (head assigned & 2 MB)
}

/**
 * Host access to system physical address `spa`. Host reads and fetches are not RMP-checked; writes,
 * page-table accesses and shadow-stack accesses need Hypervisor-Owned: the page's entry (4K mapping) or
 * all 512 entries of its 2 MB region (2 MB or 1 GB mapping). Not covered = hypervisor-owned.
 * Returns 0 or the #PF error code.
 */
export function hostAccessCheck(rmp: Rmp, spa: number, kind: AccessKind, mapping: MappingSize): number {
  const code = HOST_FAULT_BY_KIND[kind];
  if (code === undefined || !validMapping(mapping)) badArguments(kind, mapping, 0);
  // Within the coverage (< 2^32 pages) the page number fits a uint32: one float-to-int conversion.
  const page = spa * (1 / 4096);
  if (page >= 0 && page < rmp.coveredPages) {
    // Integer only: `code & -fails` is the code or 0, `>>> 0` its uint32 value (no float multiply).
    return (code & -hypervisorOwnedFails(rmp, page >>> 0, mapping)) >>> 0;
  }
  if (!(spa >= 0)) badAddress('hostAccess: spa', spa);
  return 0;
}

/** The #PF error code a host access of `kind` gets on an RMP violation (0: not RMP-checked). */
export function hostFaultCode(kind: AccessKind): number {
  const code = HOST_FAULT_BY_KIND[kind];
  if (code === undefined) badArguments(kind, 0, 0);
  return code >>> 0;
}

/**
 * `hostAccessCheck` for spas[0..count); results (0 or the #PF code) into `out`; returns the number of
 * faults.
 */
export function hostAccessBatch(
  rmp: Rmp,
  spas: Float64Array,
  count: number,
  kind: AccessKind,
  mapping: MappingSize,
  out: Float64Array,
): number {
  const code = HOST_FAULT_BY_KIND[kind];
  if (code === undefined || !validMapping(mapping)) badArguments(kind, mapping, 0);
  if (!(count >= 0 && count <= spas.length && count <= out.length)) {
    throw new RangeError(
      `hostAccessBatch: count ${count} exceeds spas (${spas.length}) or out (${out.length})`,
    );
  }
  const coveredBytes = rmp.coveredBytes;
  let faults = 0;
  for (let i = 0; i < count; i++) {
    const spa = spas[i]!;
    let bad = 0;
    if (spa >= 0 && spa < coveredBytes) bad = hypervisorOwnedFails(rmp, (spa * (1 / 4096)) >>> 0, mapping);
    else if (!(spa >= 0)) badAddress(`hostAccessBatch: spas[${i}]`, spa);
    faults += bad;
    out[i] = (code & -bad) >>> 0;
  }
  return code === 0 ? 0 : faults;
}

/** 4K-mapping Hypervisor-Owned failure (0/1) of `pfn` in a flat table `t`; not covered → 0. */
function flat4k(t: Uint32Array, covered: number, pfn: number): number {
  if (pfn >= covered) return 0;
  const hw0 = t[(pfn & ~511) << 2]!;
  return (t[pfn << 2]! | (hw0 & (hw0 >>> 1))) & 1;
}

/** Set bits of a 32-bit word. */
function popcount32(v: number): number {
  v -= (v >>> 1) & 0x55555555;
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (Math.imul((v + (v >>> 4)) & 0x0f0f0f0f, 0x01010101) >>> 24) & 0xff;
}

/**
 * The fastest host check: by page frame number, pfns[0..count) (a Uint32Array: every covered pfn fits),
 * one result bit per address into `outBits` (bit i % 32 of word i >>> 5; 1 = RMP fault; every fault
 * of a host access of one kind has the same error code, `hostFaultCode(kind)`). Returns the number of
 * faults. Results are packed 32 to a word so the loop body stores nothing and the JIT keeps the table
 * and the input in registers; a flat table gets its own loop with no chunk lookup.
 */
export function hostAccessBatchPfn(
  rmp: Rmp,
  pfns: Uint32Array,
  count: number,
  kind: AccessKind,
  mapping: MappingSize,
  outBits: Uint32Array,
): number {
  const code = HOST_FAULT_BY_KIND[kind];
  if (code === undefined || !validMapping(mapping)) badArguments(kind, mapping, 0);
  const words = Math.ceil(count / 32);
  if (!(count >= 0 && count <= pfns.length && words <= outBits.length)) {
    throw new RangeError(
      `hostAccessBatchPfn: count ${count} exceeds pfns (${pfns.length}) or outBits (${outBits.length} words)`,
    );
  }
  if (code === 0) {
    outBits.fill(0, 0, words);
    return 0;
  }
  const covered = rmp.coveredPages;
  const chunks = rmp.chunks;
  let faults = 0;
  for (let base = 0; base < count; base += 32) {
    const end = Math.min(base + 32, count);
    let bits = 0;
    if (chunks.length === 1 && mapping === 0) {
      const t = chunks[0]!;
      if (end - base === 32) {
        // Unrolled by 8: V8 re-checks a typed array's map and reloads its length and data pointer on
        // each loop iteration, but only once per straight-line block.
        for (let j = 0; j < 32; j += 8) {
          const i = base + j;
          bits |=
            (flat4k(t, covered, pfns[i]!) |
              (flat4k(t, covered, pfns[i + 1]!) << 1) |
              (flat4k(t, covered, pfns[i + 2]!) << 2) |
              (flat4k(t, covered, pfns[i + 3]!) << 3) |
              (flat4k(t, covered, pfns[i + 4]!) << 4) |
              (flat4k(t, covered, pfns[i + 5]!) << 5) |
              (flat4k(t, covered, pfns[i + 6]!) << 6) |
              (flat4k(t, covered, pfns[i + 7]!) << 7)) <<
            j;
        }
      } else {
        for (let i = base; i < end; i++) bits |= flat4k(t, covered, pfns[i]!) << (i - base);
      }
    } else {
      for (let i = base; i < end; i++) {
        const pfn = pfns[i]!;
        if (pfn < covered) bits |= hypervisorOwnedFails(rmp, pfn, mapping) << (i - base);
      }
    }
    outBits[base >>> 5] = bits;
    faults += popcount32(bits);
  }
  return faults;
}

/** EXITINFO1 low bits (#PF error-code part) of a guest access. */
function npfLowBits(ctx: GuestContext, kind: number): number {
  let bits = PfErr.PRESENT;
  if (kind === AccessKind.WRITE || kind === AccessKind.PAGE_TABLE_WRITE) bits |= PfErr.WRITE;
  if (kind === AccessKind.EXECUTE) bits |= PfErr.FETCH;
  if (ctx.cpl === 3 && kind !== AccessKind.PAGE_TABLE_READ && kind !== AccessKind.PAGE_TABLE_WRITE) {
    bits |= PfErr.USER;
  }
  return bits;
}

function isPageTable(kind: number): boolean {
  return kind === AccessKind.PAGE_TABLE_READ || kind === AccessKind.PAGE_TABLE_WRITE;
}

/** #VMEXIT(NPF) EXITINFO1 of an RMP fault. */
function rmpNpf(ctx: GuestContext, kind: number, enc: boolean, vmpl: boolean, sss: boolean): number {
  return (
    npfLowBits(ctx, kind) +
    PfErr.RMP +
    (isPageTable(kind) ? PfErr.GUEST_PAGE : PfErr.GUEST_FINAL) +
    (enc ? PfErr.ENC : 0) +
    (vmpl ? PfErr.VMPL : 0) +
    (sss ? PfErr.SSS : 0)
  );
}

/** Permission bits a VMPL mask must hold for `kind`; write implies read (write-without-read is illegal). */
function neededPerms(ctx: GuestContext, kind: number): number {
  switch (kind) {
    case AccessKind.READ:
    case AccessKind.PAGE_TABLE_READ:
      return 0x1;
    case AccessKind.WRITE:
    case AccessKind.PAGE_TABLE_WRITE:
      return 0x3;
    case AccessKind.EXECUTE:
      return ctx.cpl === 3 ? 0x4 : 0x8;
    default:
      // SHADOW_STACK: the SSS bit when VmplSSS is on, else an ordinary read/write.
      return (ctx.sevFeatures & SevFeature.VMPL_SSS) !== 0n ? 0x10 : 0x3;
  }
}

/**
 * Guest access to `gpa` of kind `kind` with effective C-bit `cbit` (the caller applies vTOM).
 * `gfnModulus` = 2^(min(physAddrBits, 51) - 12): the RMP stores GPA[50:12] & the system PA mask.
 * Returns 0, 0x404 (#VC) or an NPF EXITINFO1 (see the file comment).
 */
export function guestAccessCheck(
  rmp: Rmp,
  gfnModulus: number,
  ctx: GuestContext,
  gpa: number,
  kind: AccessKind,
  cbit: number,
): number {
  if (!(gpa >= 0)) badAddress('guestAccess: gpa', gpa);
  if (!(kind >= 0 && kind <= 5 && (cbit === 0 || cbit === 1))) badArguments(kind, 0, cbit);
  const spa = ctx.translate(gpa);
  if (!(spa >= 0)) {
    // NPT not present: an ordinary nested page fault, not an RMP one.
    return npfLowBits(ctx, kind) - PfErr.PRESENT + (isPageTable(kind) ? PfErr.GUEST_PAGE : PfErr.GUEST_FINAL);
  }
  const pfn = Math.floor(spa / 4096);
  const priv = cbit !== 0 || kind === AccessKind.EXECUTE || isPageTable(kind);
  if (!ctx.snpActive || !priv) {
    // Not SNP-active, or a shared (C=0) data access: only writes need Hypervisor-Owned.
    if (kind === AccessKind.READ || kind === AccessKind.EXECUTE) return 0;
    if (pfn >= rmp.coveredPages || hypervisorOwnedFails(rmp, pfn, ctx.nptPageSize(gpa)) === 0) return 0;
    return rmpNpf(ctx, kind, false, false, false);
  }
  // SNP-active private access: RMP-Covered, Guest-Owned, Reverse-Map, Mutable, Page-Size → NPF.
  if (pfn >= rmp.coveredPages) return rmpNpf(ctx, kind, true, false, false);
  const chunk = rmp.chunks[pfn >>> rmp.chunkShift]!;
  const idx = pfn & rmp.chunkMask;
  const headAt = (idx & ~511) << 2;
  const is2M = (chunk[headAt]! & ASSIGNED_2M) === ASSIGNED_2M;
  const at = is2M ? headAt : idx << 2;
  const w0 = chunk[at]!;
  const w1 = chunk[at + 1]!;
  let gfn = Math.floor(gpa / 4096);
  if (gfn >= gfnModulus) gfn %= gfnModulus;
  // Raw fields (rmp/layout.ts): GFN = w0[31:12] | w1[18:0] << 20, ASID = w1[28:19], Validated = w1 bit 30.
  const entryGfn = (w0 >>> 12) + (w1 & 0x7ffff) * 0x100000 + (is2M ? idx & 511 : 0);
  if (
    (w0 & 1) === 0 ||
    ((w1 >>> 19) & 0x3ff) !== ctx.asid ||
    entryGfn !== gfn ||
    (w0 & 4) !== 0 ||
    (ctx.nptPageSize(gpa) !== 0) !== is2M
  ) {
    return rmpNpf(ctx, kind, true, false, false);
  }
  // Validated → #VC 0x404.
  if ((w1 & 0x40000000) === 0) return VC_PAGE_NOT_VALIDATED;
  // VMPL permission mask of the current VMPL.
  const perm = (chunk[at + 2]! >>> (ctx.vmpl << 3)) & 0xff;
  const need = neededPerms(ctx, kind);
  const dataWithoutRead = kind !== AccessKind.EXECUTE && (perm & 0x3) === 0x2;
  if ((perm & need) !== need || dataWithoutRead) {
    const sss = (ctx.sevFeatures & SevFeature.VMPL_SSS) !== 0n && (perm & 0x10) !== 0;
    return rmpNpf(ctx, kind, true, true, sss);
  }
  return 0;
}

/** `guestAccessCheck` for `count` GPAs; results into `out`; returns the number of non-zero results. */
export function guestAccessBatch(
  rmp: Rmp,
  gfnModulus: number,
  ctx: GuestContext,
  gpas: Float64Array,
  count: number,
  kind: AccessKind,
  cbit: number,
  out: Float64Array,
): number {
  if (count > gpas.length || count > out.length) {
    throw new RangeError(
      `guestAccessBatch: count ${count} exceeds gpas (${gpas.length}) or out (${out.length})`,
    );
  }
  let faults = 0;
  for (let i = 0; i < count; i++) {
    const r = guestAccessCheck(rmp, gfnModulus, ctx, gpas[i]!, kind, cbit);
    out[i] = r;
    if (r !== 0) faults++;
  }
  return faults;
}
