/**
 * Shared set-up for the firmware tests: a small initialised SNP system with a deterministic TRNG,
 * and the host steps KVM/Linux perform around the firmware commands (firmware pages, Pre-Guest pages,
 * a launched guest). Imports only the layer's public entry.
 */
import assert from 'node:assert/strict';
import {
  createSnpSystem,
  type Firmware,
  type Platform,
  type PlatformProfile,
  SevStatus,
  sevStatusName,
} from '../../psp-firmware/index.js';

export const MiB = 1 << 20;

/** A deterministic TRNG: bytes of an incrementing counter (so VMPCKs differ per call). */
export function counterRandom(): (n: number) => Uint8Array {
  let c = 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = (c * 31 + i) & 0xff;
    c++;
    return out;
  };
}

export interface Sys {
  readonly platform: Platform;
  readonly fw: Firmware;
}

/** 64 MiB, RMP over all of it, SNP initialised as Linux leaves it (SNP_INIT_EX + DF_FLUSH). */
export function initSystem(
  profile: PlatformProfile | 'genoa' | 'milan' = 'genoa',
  memoryBytes = 64 * MiB,
): Sys {
  const { platform, firmware } = createSnpSystem({
    profile,
    memoryBytes,
    init: true,
    firmwareOptions: { random: counterRandom() },
  });
  return { platform, fw: firmware };
}

/** An uninitialised system (SNP UNINIT). */
export function bareSystem(memoryBytes = 64 * MiB): Sys {
  const { platform, firmware } = createSnpSystem({
    memoryBytes,
    firmwareOptions: { random: counterRandom() },
  });
  return { platform, fw: firmware };
}

/** Asserts a firmware status, naming the statuses and the firmware's reason on failure. */
export function expectStatus(fw: Firmware, got: number, want: number, what = ''): void {
  assert.equal(
    got,
    want,
    `${what} expected ${sevStatusName(want)}, got ${sevStatusName(got)}: ${fw.lastError?.reason ?? ''}`,
  );
}

/** Linux `rmp_mark_pages_firmware`: RMPUPDATE {assigned, ASID 0, immutable} -> Firmware. */
export function markFirmware(platform: Platform, pa: number): void {
  assert.equal(platform.rmpupdate(pa, { assigned: true, asid: 0, immutable: true, gpa: 0, pageSize: 0 }), 0);
}

/** KVM `rmp_make_private(pfn, gpa, level, asid, immutable=true)`: -> Pre-Guest. */
export function makePreGuest(
  platform: Platform,
  pa: number,
  gpa: number,
  asid: number,
  pageSize: 0 | 1 = 0,
): void {
  assert.equal(platform.rmpupdate(pa, { assigned: true, asid, immutable: true, gpa, pageSize }), 0);
}

/** KVM `rmp_make_shared`. */
export function makeShared(platform: Platform, pa: number, pageSize: 0 | 1 = 0): number {
  return platform.rmpupdate(pa, { assigned: false, asid: 0, immutable: false, gpa: 0, pageSize });
}

export const GCTX = 0x10_0000;
export const POLICY = 0x30000n; // SMT | bit 17 (KVM's common default)

/** GCTX_CREATE + LAUNCH_START (+ ACTIVATE when `asid` is given): a guest in LAUNCH. */
export function startGuest(s: Sys, opts: { gctx?: number; asid?: number; policy?: bigint } = {}): number {
  const gctx = opts.gctx ?? GCTX;
  markFirmware(s.platform, gctx);
  expectStatus(s.fw, s.fw.gctxCreate(gctx), SevStatus.SUCCESS, 'GCTX_CREATE');
  expectStatus(
    s.fw,
    s.fw.launchStart({ gctxPaddr: gctx, policy: opts.policy ?? POLICY }),
    SevStatus.SUCCESS,
    'LAUNCH_START',
  );
  if (opts.asid !== undefined)
    expectStatus(s.fw, s.fw.activate(gctx, opts.asid), SevStatus.SUCCESS, 'ACTIVATE');
  return gctx;
}

/** A RUNNING guest with one NORMAL page measured at `pagePa` (GPA 0). */
export function runningGuest(
  s: Sys,
  opts: { gctx?: number; asid?: number; policy?: bigint; pagePa?: number } = {},
) {
  const asid = opts.asid ?? 1;
  const gctx = startGuest(s, { ...opts, asid });
  const pagePa = opts.pagePa ?? 0x20_0000;
  makePreGuest(s.platform, pagePa, 0, asid);
  expectStatus(s.fw, s.fw.launchUpdate({ gctxPaddr: gctx, address: pagePa, pageType: 1 }), SevStatus.SUCCESS);
  expectStatus(s.fw, s.fw.launchFinish({ gctxPaddr: gctx }), SevStatus.SUCCESS, 'LAUNCH_FINISH');
  return { gctx, asid, pagePa };
}
