/**
 * The context a guest instruction or access runs in: who is executing (ASID, VMPL, CPL), whether the
 * guest is SNP-active, its SEV_FEATURES, and its nested translation. `translate` and `nptPageSize`
 * are plain functions returning numbers, so the check path allocates nothing.
 */
import type { MappingSize } from './codes.js';

export interface GuestContext {
  /** Guest ASID (VMCB). */
  readonly asid: number;
  /** Current VMPL (0..3). */
  readonly vmpl: number;
  /** Current CPL (0..3): PVALIDATE/RMPADJUST need CPL 0; instruction fetches at CPL 3 need Execute-User. */
  readonly cpl: number;
  /** SEV_FEATURES.SNPActive of the running VMSA. */
  readonly snpActive: boolean;
  /** SEV_FEATURES of the running VMSA (VmplSSS, vTOM ...). */
  readonly sevFeatures: bigint;
  /** The physical CPU / vCPU slot executing (for "in use by another vCPU" decisions). */
  readonly cpu: number;
  /** Nested translation: the sPA of the byte at `gpa`, or -1 when the NPT has no mapping. */
  translate(gpa: number): number;
  /** NPT leaf size mapping `gpa` (0 = 4K, 1 = 2M, 2 = 1G). */
  nptPageSize(gpa: number): MappingSize;
}

export interface SimpleGuestContextOptions {
  readonly asid: number;
  readonly vmpl?: number;
  readonly cpl?: number;
  readonly snpActive?: boolean;
  readonly sevFeatures?: bigint;
  readonly cpu?: number;
  /** sPA = gpa + offset (default 0: identity). */
  readonly offset?: number;
  /** NPT leaf size for every GPA (default 4K). */
  readonly nptPageSize?: MappingSize;
}

/** A GuestContext with a linear NPT (sPA = gPA + offset) and one NPT page size: for tests and benches. */
export function makeGuestContext(options: SimpleGuestContextOptions): GuestContext {
  const offset = options.offset ?? 0;
  const size = options.nptPageSize ?? 0;
  return {
    asid: options.asid,
    vmpl: options.vmpl ?? 0,
    cpl: options.cpl ?? 0,
    snpActive: options.snpActive ?? true,
    sevFeatures: options.sevFeatures ?? (options.snpActive === false ? 0n : 1n),
    cpu: options.cpu ?? 0,
    translate: (gpa: number) => gpa + offset,
    nptPageSize: () => size,
  };
}
