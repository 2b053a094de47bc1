/**
 * The per-CPU MSR state SNP depends on: SYSCFG (MFDM, MemEncryptionModEn, SNP_EN, VMPL_EN), HWCR
 * (SmmLock), VM_HSAVE_PA, and the RMP_BASE / RMP_END the platform fixed at construction. SNP_INIT reads
 * them on every core and refuses an inconsistent platform with INVALID_CONFIG ([FW] sev_mcmd.c
 * `snp_mcmd_init_common`); VMRUN needs SNP_EN for an SNP-active guest; SNP_SHUTDOWN_EX's
 * X86_SNP_SHUTDOWN clears SNP_EN on every core through the SMU. Only these MSRs are modelled; every
 * other SYSCFG/HWCR bit is stored as written and means nothing to the model.
 */

/** MSR indices. [LX] arch/x86/include/asm/msr-index.h; [APM] 15.36.2, 15.36.4 */
export const Msr = Object.freeze({
  /** MSR_AMD64_SYSCFG. */
  SYSCFG: 0xc0010010,
  /** MSR_K7_HWCR. */
  HWCR: 0xc0010015,
  /** MSR_VM_HSAVE_PA: host save area of VMRUN. */
  VM_HSAVE_PA: 0xc0010117,
  /** MSR_AMD64_RMP_BASE: first byte of the RMP. */
  RMP_BASE: 0xc0010132,
  /** MSR_AMD64_RMP_END: last byte of the RMP (inclusive). */
  RMP_END: 0xc0010133,
} as const);

/** SYSCFG bits. [LX] MSR_AMD64_SYSCFG_*_BIT; firmware-rmp.md §A.4 */
export const Syscfg = Object.freeze({
  /** bit 19 MtrrFixDramModEn (MFDM). */
  MFDM: 1n << 19n,
  /** bit 23 MemEncryptionModEn (SME). */
  MEM_ENCRYPT: 1n << 23n,
  /** bit 24 SecureNestedPagingEn. */
  SNP_EN: 1n << 24n,
  /** bit 25 VMPLEn. */
  VMPL_EN: 1n << 25n,
} as const);

/** HWCR bit 0 SmmLock: once set, cleared only by reset. [LX] MSR_K7_HWCR_SMMLOCK_BIT 0 */
export const HWCR_SMM_LOCK = 1n;

/**
 * Linux's state on an SNP host when it issues SNP_INIT: MFDM, SME, SNP_EN and VMPL_EN on every CPU
 * (`snp_rmptable_init`: MFDM, then SNP_EN | VMPL_EN on all CPUs; SME from the BIOS), SmmLock set by
 * the BIOS, VM_HSAVE_PA cleared on every CPU (`__sev_snp_init_locked`) [LX].
 */
export const LINUX_SNP_SYSCFG = Syscfg.MFDM | Syscfg.MEM_ENCRYPT | Syscfg.SNP_EN | Syscfg.VMPL_EN;
export const LINUX_SNP_HWCR = HWCR_SMM_LOCK;

/** Largest PA + 1 (bits 51:0). */
const PA_LIMIT = 1n << 52n;
const U64_MAX = (1n << 64n) - 1n;

export type WrmsrResult =
  | { readonly kind: 'ok' }
  /** The CPU dropped the write (SYSCFG once SNP_EN = 1, [APM] 15.36.2). */
  | { readonly kind: 'ignored'; readonly reason: string }
  /** #GP(0). */
  | { readonly kind: 'gp'; readonly reason: string };

export interface CpuMsrsOptions {
  /** Logical CPUs (default 4). */
  readonly cpuCount?: number;
  /** Initial SYSCFG on every CPU (default `LINUX_SNP_SYSCFG`). */
  readonly syscfg?: bigint;
  /** Initial HWCR on every CPU (default `LINUX_SNP_HWCR`). */
  readonly hwcr?: bigint;
  /** Initial VM_HSAVE_PA on every CPU (default 0). */
  readonly vmHsavePa?: bigint;
  /** RMP_BASE / RMP_END (0 when the RMP is not placed in system memory). */
  readonly rmpBase?: bigint;
  readonly rmpEnd?: bigint;
}

function u64(what: string, v: unknown): bigint {
  if (typeof v !== 'bigint' || v < 0n || v > U64_MAX) {
    throw new RangeError(`${what} must be a u64 bigint, got ${String(v)}`);
  }
  return v;
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/** SYSCFG, HWCR and VM_HSAVE_PA of every logical CPU, plus the platform-wide RMP_BASE / RMP_END. */
export class CpuMsrs {
  readonly cpuCount: number;
  readonly rmpBase: bigint;
  readonly rmpEnd: bigint;
  readonly #syscfg: bigint[];
  readonly #hwcr: bigint[];
  readonly #hsave: bigint[];

  constructor(options: CpuMsrsOptions = {}) {
    const n = options.cpuCount ?? 4;
    if (!Number.isInteger(n) || n < 1 || n > 4096) {
      throw new RangeError(`CpuMsrs: cpuCount must be an integer in 1..4096, got ${n}`);
    }
    this.cpuCount = n;
    this.#syscfg = new Array<bigint>(n).fill(u64('syscfg', options.syscfg ?? LINUX_SNP_SYSCFG));
    this.#hwcr = new Array<bigint>(n).fill(u64('hwcr', options.hwcr ?? LINUX_SNP_HWCR));
    this.#hsave = new Array<bigint>(n).fill(u64('vmHsavePa', options.vmHsavePa ?? 0n));
    this.rmpBase = u64('rmpBase', options.rmpBase ?? 0n);
    this.rmpEnd = u64('rmpEnd', options.rmpEnd ?? 0n);
  }

  /** RDMSR on `cpu`. Throws RangeError for a CPU that does not exist or an MSR the model lacks. */
  rdmsr(cpu: number, index: number): bigint {
    this.#cpu(cpu);
    switch (index) {
      case Msr.SYSCFG:
        return this.#syscfg[cpu]!;
      case Msr.HWCR:
        return this.#hwcr[cpu]!;
      case Msr.VM_HSAVE_PA:
        return this.#hsave[cpu]!;
      case Msr.RMP_BASE:
        return this.rmpBase;
      case Msr.RMP_END:
        return this.rmpEnd;
      default:
        return unknownMsr(index);
    }
  }

  /**
   * WRMSR on `cpu`: SYSCFG writes are ignored once SNP_EN = 1 ([APM] 15.36.2: only the AMD-SP clears
   * it); HWCR.SmmLock cannot be cleared once set; VM_HSAVE_PA #GPs with bits 11:0 set or beyond the
   * 52-bit PA [APM 15.30.4; LX KVM svm_set_msr: page_address_valid]. RMP_BASE / RMP_END are fixed
   * when the platform is built (RangeError).
   */
  wrmsr(cpu: number, index: number, value: bigint): WrmsrResult {
    this.#cpu(cpu);
    const v = u64(`wrmsr ${hex(index)} value`, value);
    switch (index) {
      case Msr.SYSCFG:
        if ((this.#syscfg[cpu]! & Syscfg.SNP_EN) !== 0n) {
          return { kind: 'ignored', reason: `SYSCFG write ignored on CPU ${cpu}: SNP_EN is set` };
        }
        this.#syscfg[cpu] = v;
        return { kind: 'ok' };
      case Msr.HWCR:
        this.#hwcr[cpu] = v | (this.#hwcr[cpu]! & HWCR_SMM_LOCK);
        return { kind: 'ok' };
      case Msr.VM_HSAVE_PA:
        if ((v & 0xfffn) !== 0n || v >= PA_LIMIT) {
          return { kind: 'gp', reason: `VM_HSAVE_PA ${hex(v)}: bits 11:0 set or beyond the 52-bit PA` };
        }
        this.#hsave[cpu] = v;
        return { kind: 'ok' };
      case Msr.RMP_BASE:
      case Msr.RMP_END:
        throw new RangeError(
          `wrmsr ${hex(index)}: RMP_BASE/RMP_END are fixed when the Platform is built (option rmpBase)`,
        );
      default:
        return unknownMsr(index);
    }
  }

  /** True when every CPU has all of `bits` set in SYSCFG. */
  syscfgAll(bits: bigint): boolean {
    return this.#syscfg.every((v) => (v & bits) === bits);
  }

  /**
   * The AMD-SP clearing SYSCFG.SNP_EN on every CPU through the SMU (SNP_SHUTDOWN_EX with
   * X86_SNP_SHUTDOWN) [FW `snp_mcmd_shutdown_common`]: not an x86 write, so not ignored.
   */
  smuClearSnpEn(): void {
    for (let c = 0; c < this.cpuCount; c++) this.#syscfg[c] = this.#syscfg[c]! & ~Syscfg.SNP_EN;
  }

  #cpu(cpu: number): void {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.cpuCount) {
      throw new RangeError(`MSR access: CPU ${cpu} does not exist (0..${this.cpuCount - 1})`);
    }
  }
}

function unknownMsr(index: number): never {
  throw new RangeError(
    `MSR ${typeof index === 'number' ? hex(index) : String(index)} is not modelled (SYSCFG, HWCR, VM_HSAVE_PA, RMP_BASE, RMP_END)`,
  );
}
