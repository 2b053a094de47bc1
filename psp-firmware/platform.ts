/**
 * The platform: one RMP, the system memory, the CPU profile and the CPU's in-use marks, with the
 * host and guest RMP instructions, the access checks and VMRUN/#VMEXIT as methods. The host model
 * (`host/`) and the firmware (`psp-firmware/firmware/`) build on this API.
 */
import {
  guestAccessBatch,
  guestAccessCheck,
  hostAccessBatch,
  hostAccessBatchPfn,
  hostAccessCheck,
  hostFaultCode,
} from './cpu/access.js';
import { AccessKind, type MappingSize } from './cpu/codes.js';

// Module constants, read once: the JIT folds them into the inlined hot path (an imported binding would
// cost a load and a check per call).
const MAPPING_4K = 0; // MappingSize.SIZE_4K
const KIND_WRITE = AccessKind.WRITE;
const NO_TABLE = new Uint32Array(0);
/** A host write's RMP #PF error code (X86_PF_RMP | P | W) as an int32 bit pattern. */
const HOST_WRITE_FAULT = hostFaultCode(AccessKind.WRITE) | 0;

import type { PvalidateResult, RmpadjustResult, RmpqueryResult } from './cpu/fault.js';
import type { GuestContext } from './cpu/guest-context.js';
import { pvalidate, rmpadjust, rmpquery } from './cpu/guest-instructions.js';
import {
  gfnModulusOf,
  psmash,
  type RmpreadResult,
  type RmpUpdateState,
  rmpread,
  rmpupdate,
} from './cpu/host-instructions.js';
import { InUseMarks, type Machine } from './cpu/machine.js';
import { CpuMsrs, LINUX_SNP_SYSCFG, Syscfg, type WrmsrResult } from './cpu/msrs.js';
import { type VmrunRequest, type VmrunResult, vmexit, vmrun } from './cpu/vmrun.js';
import { SystemMemory } from './memory.js';
import { type CpuProfile, DEFAULT_CPU_PROFILE } from './profile.js';
import type { RmpEntry } from './rmp/entry.js';
import { PAGE_SIZE_2M } from './rmp/layout.js';
import { RMP_BOUND_ALIGN, rmpTableBytes } from './rmp/placement.js';
import { Rmp } from './rmp/table.js';

/** RMP_END for a table at `base` covering `covered` bytes; RangeError when it cannot be placed. */
function checkedRmpEnd(base: number, covered: number, memoryBytes: number): number {
  if (!Number.isInteger(base) || base < 0 || base % RMP_BOUND_ALIGN !== 0) {
    throw new RangeError(`Platform: rmpBase must be a non-negative multiple of 8 KiB, got ${base}`);
  }
  if (!Number.isInteger(covered) || covered <= 0 || covered % PAGE_SIZE_2M !== 0) {
    throw new RangeError(
      `Platform: with rmpBase, coveredBytes must be a positive multiple of 2 MiB (RMP_END + 1 8 KiB aligned), got ${covered}`,
    );
  }
  const end = base + rmpTableBytes(covered) - 1;
  if (end >= memoryBytes) {
    throw new RangeError(
      `Platform: the RMP [0x${base.toString(16)}, 0x${end.toString(16)}] does not fit in memory (0x${memoryBytes.toString(16)} bytes)`,
    );
  }
  return end;
}

export interface PlatformOptions {
  /** CPU profile (default: the `genoa` preset). */
  readonly profile?: CpuProfile;
  /** Bytes of system memory (multiple of 4 KiB). */
  readonly memoryBytes: number;
  /**
   * Bytes the RMP covers (default: all of memory); pages above are not RMP-covered (Default). With
   * `rmpBase` it may exceed memory: the coverage is what RMP_END implies.
   */
  readonly coveredBytes?: number;
  /**
   * RMP_BASE: the table lies in system memory at [rmpBase, rmpEnd], rmpEnd = rmpBase + 0x4000 +
   * 16 × covered pages − 1 (8 KiB aligned [APM], so the coverage is a multiple of 2 MiB). Default:
   * no placement (rmpBase/rmpEnd undefined; the firmware's RMP-location checks are then skipped).
   * `rmpAtTopOfMemory(memoryBytes)` gives the default placement `createSnpSystem` uses.
   */
  readonly rmpBase?: number;
  /** Logical CPUs with their own MSRs (default 4). */
  readonly cpuCount?: number;
  /** Initial SYSCFG / HWCR / VM_HSAVE_PA of every CPU (default: Linux's, see `cpu/msrs.ts`). */
  readonly msrs?: { readonly syscfg?: bigint; readonly hwcr?: bigint; readonly vmHsavePa?: bigint };
  /** Shorthand for the initial SYSCFG.SNP_EN of every CPU (default true). */
  readonly snpEnabled?: boolean;
}

export class Platform implements Machine {
  readonly profile: CpuProfile;
  readonly rmp: Rmp;
  readonly memory: SystemMemory;
  readonly inUse = new InUseMarks();
  /** Per-CPU SYSCFG, HWCR, VM_HSAVE_PA and the RMP_BASE / RMP_END values. */
  readonly msrs: CpuMsrs;
  /** RMP_BASE / RMP_END (inclusive) as byte addresses, or undefined when the RMP is not placed. */
  readonly rmpBase: number | undefined;
  readonly rmpEnd: number | undefined;
  /** 2^(min(physAddrBits, 51) - 12): GFNs wrap at the stored GPA width. */
  readonly gfnModulus: number;
  readonly #wbinvdListeners: (() => void)[] = [];
  /**
   * The hot path's view of the table, fixed for the platform's life: `rmp.flat` and its covered pages
   * (< 2^28: a small integer), or an empty array and 0 for a chunked table (never taken). Initialised
   * here with values of their final types (class fields start as undefined otherwise), so the JIT
   * records a Uint32Array field and a small-integer field and checks neither on the hot path.
   */
  readonly #flat: Uint32Array = NO_TABLE;
  readonly #flatPages: number = 0;

  constructor(options: PlatformOptions) {
    this.profile = options.profile ?? DEFAULT_CPU_PROFILE;
    this.memory = new SystemMemory({ memoryBytes: options.memoryBytes });
    const covered = options.coveredBytes ?? options.memoryBytes;
    const base = options.rmpBase;
    if (base === undefined) {
      if (covered > options.memoryBytes) {
        throw new RangeError(`Platform: coveredBytes ${covered} exceeds memoryBytes ${options.memoryBytes}`);
      }
      this.rmpBase = undefined;
      this.rmpEnd = undefined;
    } else {
      this.rmpBase = base;
      this.rmpEnd = checkedRmpEnd(base, covered, options.memoryBytes);
    }
    this.rmp = new Rmp({ coveredBytes: covered });
    if (this.rmp.flat !== null) {
      this.#flat = this.rmp.flat;
      this.#flatPages = this.rmp.coveredPages;
    }
    const m = options.msrs ?? {};
    let syscfg = m.syscfg ?? LINUX_SNP_SYSCFG;
    if (options.snpEnabled !== undefined) {
      syscfg = options.snpEnabled ? syscfg | Syscfg.SNP_EN : syscfg & ~Syscfg.SNP_EN;
    }
    this.msrs = new CpuMsrs({
      ...(options.cpuCount === undefined ? {} : { cpuCount: options.cpuCount }),
      syscfg,
      ...(m.hwcr === undefined ? {} : { hwcr: m.hwcr }),
      ...(m.vmHsavePa === undefined ? {} : { vmHsavePa: m.vmHsavePa }),
      rmpBase: BigInt(this.rmpBase ?? 0),
      rmpEnd: BigInt(this.rmpEnd ?? 0),
    });
    this.gfnModulus = gfnModulusOf(this.profile.physAddrBits);
  }

  // --- MSRs, WBINVD ------------------------------------------------------------------------------

  /**
   * SYSCFG.SNP_EN on every CPU. VMRUN of an SNP-active VMSA needs it; the model does not bind vCPU
   * slots to physical CPUs, so it asks all of them [DER].
   */
  get snpEnabled(): boolean {
    return this.msrs.syscfgAll(Syscfg.SNP_EN);
  }

  /** RDMSR on `cpu` (SYSCFG, HWCR, VM_HSAVE_PA, RMP_BASE, RMP_END). */
  rdmsr(cpu: number, index: number): bigint {
    return this.msrs.rdmsr(cpu, index);
  }

  /** WRMSR on `cpu`: `ok`, `ignored` (SYSCFG once SNP_EN = 1) or `gp`. */
  wrmsr(cpu: number, index: number, value: bigint): WrmsrResult {
    return this.msrs.wrmsr(cpu, index, value);
  }

  /** WBINVD on every CPU (Linux `wbinvd_on_all_cpus`): every WBINVD_DONE flag the firmware reads is set. */
  wbinvd(): void {
    for (const listener of this.#wbinvdListeners) listener();
  }

  /** Registers an observer of `wbinvd()` (the firmware's WBINVD_DONE flags). */
  onWbinvd(listener: () => void): void {
    this.#wbinvdListeners.push(listener);
  }

  // --- host instructions -------------------------------------------------------------------------

  /** RMPUPDATE: EAX status (0 SUCCESS, 1 FAIL_INPUT, 2 FAIL_PERMISSION, 3 FAIL_INUSE, 4 FAIL_OVERLAP). */
  rmpupdate(spa: number, state: RmpUpdateState | Uint8Array): number {
    return rmpupdate(this, spa, state);
  }

  /** PSMASH: EAX status (0, 1, 3, or the profile's bad-address code). */
  psmash(spa: number): number {
    return psmash(this, spa);
  }

  /** RMPREAD: EAX and the architectural 16-byte output, or #UD when the profile lacks RMPREAD. */
  rmpread(spa: number): RmpreadResult {
    return rmpread(this, spa);
  }

  // --- guest instructions ------------------------------------------------------------------------

  pvalidate(ctx: GuestContext, gpa: number, size: number, validate: number): PvalidateResult {
    return pvalidate(this, ctx, gpa, size, validate);
  }

  rmpadjust(ctx: GuestContext, gpa: number, size: number, rdx: bigint | number): RmpadjustResult {
    return rmpadjust(this, ctx, gpa, size, rdx);
  }

  rmpquery(ctx: GuestContext, gpa: number, targetVmpl: number): RmpqueryResult {
    return rmpquery(this, ctx, gpa, targetVmpl);
  }

  // --- access checks (hot path: numbers in, a number out) ----------------------------------------

  /** Host access: 0 or the #PF error code (bit 31 RMP). */
  hostAccess(spa: number, kind: AccessKind, mapping?: MappingSize): number {
    // The hot case, a write through a 4 KB mapping to a covered page of a flat table, inline: its test
    // is a few compares a monomorphic call site always answers the same way. Anything else (other
    // kinds and mappings, bad arguments, uncovered or invalid addresses, chunked tables) takes the
    // validating path, so the guarantees are the same. Same result as `hostAccessCheck`: the page's
    // entry assigned, or its 2 MB-aligned entry an assigned 2 MB entry, gives the #PF code.
    const page = spa * (1 / 4096);
    if (
      kind === KIND_WRITE &&
      (mapping === MAPPING_4K || mapping === undefined) &&
      page >= 0 &&
      page < this.#flatPages
    ) {
      const t = this.#flat;
      const pfn = page >>> 0;
      const hw0 = t[(pfn & ~511) << 2]!;
      return (HOST_WRITE_FAULT & -((t[pfn << 2]! | (hw0 & (hw0 >>> 1))) & 1)) >>> 0;
    }
    // Not a default parameter: that would re-read MappingSize.SIZE_4K on every call of the hot path.
    return hostAccessCheck(this.rmp, spa, kind, mapping === undefined ? MAPPING_4K : mapping);
  }

  /** Guest access with effective C-bit `cbit`: 0, 0x404 (#VC) or the NPF EXITINFO1. */
  guestAccess(ctx: GuestContext, gpa: number, kind: AccessKind, cbit: number): number {
    return guestAccessCheck(this.rmp, this.gfnModulus, ctx, gpa, kind, cbit);
  }

  /** `hostAccess` of spas[0..count); results into `out`; returns the number of faults. */
  hostAccessBatch(
    spas: Float64Array,
    count: number,
    kind: AccessKind,
    mapping: MappingSize,
    out: Float64Array,
  ): number {
    return hostAccessBatch(this.rmp, spas, count, kind, mapping, out);
  }

  /**
   * `hostAccess` by pfn, the fastest API: pfns[0..count) → one bit per address in `outBits` (1 = RMP
   * fault with error code `hostFaultCode(kind)`); returns the number of faults.
   */
  hostAccessBatchPfn(
    pfns: Uint32Array,
    count: number,
    kind: AccessKind,
    mapping: MappingSize,
    outBits: Uint32Array,
  ): number {
    return hostAccessBatchPfn(this.rmp, pfns, count, kind, mapping, outBits);
  }

  /** `guestAccess` of gpas[0..count); results into `out`; returns the number of non-zero results. */
  guestAccessBatch(
    ctx: GuestContext,
    gpas: Float64Array,
    count: number,
    kind: AccessKind,
    cbit: number,
    out: Float64Array,
  ): number {
    return guestAccessBatch(this.rmp, this.gfnModulus, ctx, gpas, count, kind, cbit, out);
  }

  // --- VMRUN ------------------------------------------------------------------------------------

  /** VMRUN's VMSA checks; success marks the VMSA in use by `req.cpu` until `vmexit(req.cpu)`. */
  vmrun(req: VmrunRequest): VmrunResult {
    return vmrun(this, req, this.snpEnabled);
  }

  /** #VMEXIT of `cpu`: releases its in-use pages; returns their pfns. */
  vmexit(cpu: number): number[] {
    return vmexit(this, cpu);
  }

  // --- firmware access ---------------------------------------------------------------------------

  /**
   * The AMD-SP writing an RMP entry directly (no x86 checks), keeping the per-ASID counters and
   * subpage counts exact. `entry.subpageCount` is ignored: a head entry keeps its derived count.
   * Throws RangeError for a pfn outside the RMP or a field that does not fit (programming errors).
   */
  firmwareWrite(pfn: number, entry: RmpEntry): void {
    this.rmp.writeEntry(pfn, entry);
  }

  /** The decoded entry of `pfn`, undefined when not RMP-covered. */
  firmwareRead(pfn: number): RmpEntry | undefined {
    return this.rmp.entry(pfn);
  }
}
