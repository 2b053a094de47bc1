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
} from './cpu/access.js';
import type { AccessKind, MappingSize } from './cpu/codes.js';

const MAPPING_4K = 0; // MappingSize.SIZE_4K

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
import { type VmrunRequest, type VmrunResult, vmexit, vmrun } from './cpu/vmrun.js';
import { SystemMemory } from './memory.js';
import { type CpuProfile, DEFAULT_CPU_PROFILE } from './profile.js';
import { encodeRmpEntry, type RmpEntry } from './rmp/entry.js';
import { Rmp } from './rmp/table.js';

export interface PlatformOptions {
  /** CPU profile (default: the `genoa` preset). */
  readonly profile?: CpuProfile;
  /** Bytes of system memory (multiple of 4 KiB). */
  readonly memoryBytes: number;
  /** Bytes the RMP covers (default: all of memory); pages above are not RMP-covered (Default). */
  readonly coveredBytes?: number;
  /** SYSCFG.SNP_EN: VMRUN of an SNP-active VMSA needs it (default true). */
  readonly snpEnabled?: boolean;
}

export class Platform implements Machine {
  readonly profile: CpuProfile;
  readonly rmp: Rmp;
  readonly memory: SystemMemory;
  readonly inUse = new InUseMarks();
  readonly snpEnabled: boolean;
  /** 2^(min(physAddrBits, 51) - 12): GFNs wrap at the stored GPA width. */
  readonly gfnModulus: number;

  constructor(options: PlatformOptions) {
    this.profile = options.profile ?? DEFAULT_CPU_PROFILE;
    this.memory = new SystemMemory({ memoryBytes: options.memoryBytes });
    const covered = options.coveredBytes ?? options.memoryBytes;
    if (covered > options.memoryBytes) {
      throw new RangeError(`Platform: coveredBytes ${covered} exceeds memoryBytes ${options.memoryBytes}`);
    }
    this.rmp = new Rmp({ coveredBytes: covered });
    this.snpEnabled = options.snpEnabled ?? true;
    this.gfnModulus = gfnModulusOf(this.profile.physAddrBits);
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
    const w = encodeRmpEntry(entry);
    this.rmp.writeEntryWords(pfn, w[0]!, w[1]!, w[2]!, w[3]!);
  }

  /** The decoded entry of `pfn`, undefined when not RMP-covered. */
  firmwareRead(pfn: number): RmpEntry | undefined {
    return this.rmp.entry(pfn);
  }
}
