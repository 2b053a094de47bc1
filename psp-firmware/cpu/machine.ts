/**
 * What the CPU instructions operate on: the RMP, system memory, the CPU profile and the
 * microarchitectural in-use marks of running VMSAs. `Platform` implements it.
 */
import type { SystemMemory } from '../memory.js';
import type { CpuProfile } from '../profile.js';
import type { Rmp } from '../rmp/table.js';

/**
 * Pages marked in use by a successful VMRUN (the VMSA page), released by #VMEXIT. Not stored in the
 * RMP entry: the CPU keeps this state internally (APM 15.36.12: RMPUPDATE → FAIL_INUSE meanwhile).
 */
export class InUseMarks {
  readonly #byPfn = new Map<number, Set<number>>();

  /** A CPU other than `cpu` running with page `pfn` as its VMSA, or undefined. */
  otherUser(pfn: number, cpu: number): number | undefined {
    const users = this.#byPfn.get(pfn);
    if (users === undefined) return undefined;
    for (const u of users) if (u !== cpu) return u;
    return undefined;
  }

  isInUse(pfn: number): boolean {
    return this.#byPfn.has(pfn);
  }

  /** Any page of [firstPfn, firstPfn + count) in use. */
  anyInUse(firstPfn: number, count: number): boolean {
    if (this.#byPfn.size === 0) return false;
    for (const pfn of this.#byPfn.keys()) if (pfn >= firstPfn && pfn < firstPfn + count) return true;
    return false;
  }

  mark(pfn: number, cpu: number): void {
    let users = this.#byPfn.get(pfn);
    if (users === undefined) {
      users = new Set();
      this.#byPfn.set(pfn, users);
    }
    users.add(cpu);
  }

  /** Releases every page `cpu` marked; returns their pfns. */
  releaseCpu(cpu: number): number[] {
    const released: number[] = [];
    for (const [pfn, users] of this.#byPfn) {
      if (users.delete(cpu)) {
        released.push(pfn);
        if (users.size === 0) this.#byPfn.delete(pfn);
      }
    }
    return released;
  }

  /** Every in-use page with the CPUs using it. */
  entries(): [pfn: number, cpus: number[]][] {
    return [...this.#byPfn].map(([pfn, users]) => [pfn, [...users]]);
  }
}

export interface Machine {
  readonly rmp: Rmp;
  readonly memory: SystemMemory;
  readonly profile: CpuProfile;
  readonly inUse: InUseMarks;
}
