/**
 * The host kernel's RMP helpers ([LX] arch/x86/virt/svm/sev.c rmp_make_private, rmp_make_shared,
 * rmp_mark_pages_firmware): RMPUPDATE with the `struct rmp_state` each one builds. Each returns
 * RMPUPDATE's EAX status (0 on success).
 */
import { type Platform, type RMP_PG_SIZE_2M, RMP_PG_SIZE_4K } from '../psp-firmware/index.js';

/** RMP page size of the update: RMP_PG_SIZE_4K (PG_LEVEL_4K) or RMP_PG_SIZE_2M (PG_LEVEL_2M). */
export type RmpPageSize = typeof RMP_PG_SIZE_4K | typeof RMP_PG_SIZE_2M;

/** rmp_make_private(pfn, gpa, level, asid, immutable): the page is assigned to `asid` at `gpa`. */
export function rmpMakePrivate(
  platform: Platform,
  spa: number,
  gpa: number,
  asid: number,
  immutable: boolean,
  pageSize: RmpPageSize = RMP_PG_SIZE_4K,
): number {
  return platform.rmpupdate(spa, { gpa, assigned: true, pageSize, immutable, asid });
}

/** rmp_make_shared(pfn, level): the page is hypervisor-owned again. */
export function rmpMakeShared(
  platform: Platform,
  spa: number,
  pageSize: RmpPageSize = RMP_PG_SIZE_4K,
): number {
  return platform.rmpupdate(spa, { gpa: 0, assigned: false, pageSize, immutable: false, asid: 0 });
}

/** rmp_mark_pages_firmware (one page) = rmp_make_private(pfn, 0, PG_LEVEL_4K, 0, true): Firmware state. */
export function rmpMarkFirmware(platform: Platform, spa: number): number {
  return rmpMakePrivate(platform, spa, 0, 0, true);
}
