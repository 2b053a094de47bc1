/**
 * Named platform profiles: a CPU profile (`profile.ts`) plus a firmware profile
 * (`firmware/profile.ts`), presets `genoa` and `milan`, loadable from JSON for the CLI's `--profile`,
 * and `createSnpSystem` — a Platform with its Firmware, optionally brought to the state Linux leaves
 * after `__sev_snp_init_locked` (drivers/crypto/ccp/sev-dev.c) [LX].
 */
import { readFileSync } from 'node:fs';
import { Msr } from './cpu/msrs.js';
import { Firmware, type FirmwareOptions } from './firmware/firmware.js';
import {
  FIRMWARE_PRESETS,
  type FirmwareProfile,
  type FirmwareProfileProblem,
  parseFirmwareProfile,
} from './firmware/profile.js';
import { SevStatus, sevStatusName } from './firmware/status.js';
import { Platform, type PlatformOptions } from './platform.js';
import { CPU_PROFILES, type CpuProfile, parseCpuProfile } from './profile.js';
import { RMP_FW_ALIGN, rmpAtTopOfMemory, rmpTableBytes } from './rmp/placement.js';

export interface PlatformProfile {
  readonly name: string;
  readonly cpu: CpuProfile;
  readonly firmware: FirmwareProfile;
}

export const PLATFORM_PROFILES: Readonly<Record<'genoa' | 'milan', PlatformProfile>> = Object.freeze({
  genoa: Object.freeze({ name: 'genoa', cpu: CPU_PROFILES.genoa, firmware: FIRMWARE_PRESETS.genoa }),
  milan: Object.freeze({ name: 'milan', cpu: CPU_PROFILES.milan, firmware: FIRMWARE_PRESETS.milan }),
});

export type PlatformProfileResult =
  | { readonly ok: true; readonly profile: PlatformProfile }
  | { readonly ok: false; readonly errors: readonly FirmwareProfileProblem[] };

const TOP_KEYS = new Set(['name', 'extends', 'cpu', 'firmware']);

/**
 * Parse a combined profile `{ "name"?, "extends"?: "genoa" | "milan", "cpu"?: {...}, "firmware"?: {...} }`:
 * each part is merged over the `extends` preset (default genoa). Never throws; errors name the path.
 */
export function parsePlatformProfile(json: unknown): PlatformProfileResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, errors: [{ path: '', message: 'a platform profile must be a JSON object' }] };
  }
  const j = json as Record<string, unknown>;
  const errors: FirmwareProfileProblem[] = [];
  for (const k of Object.keys(j))
    if (!TOP_KEYS.has(k)) errors.push({ path: `/${k}`, message: 'unknown profile field' });
  const ext = j.extends ?? 'genoa';
  if (ext !== 'genoa' && ext !== 'milan') {
    errors.push({
      path: '/extends',
      message: `unknown preset ${JSON.stringify(ext)}; presets: genoa, milan`,
    });
  }
  if (j.name !== undefined && (typeof j.name !== 'string' || j.name.length === 0)) {
    errors.push({ path: '/name', message: 'must be a non-empty string' });
  }
  if (errors.length > 0) return { ok: false, errors };
  const base = PLATFORM_PROFILES[ext as 'genoa' | 'milan'];
  const cpuJson = j.cpu ?? {};
  const cpu =
    typeof cpuJson === 'object' && cpuJson !== null && !Array.isArray(cpuJson)
      ? parseCpuProfile({ extends: ext, ...(cpuJson as object) })
      : ({ ok: false, errors: [{ path: '', message: 'must be an object' }] } as const);
  if (!cpu.ok) errors.push(...cpu.errors.map((e) => ({ path: `/cpu${e.path}`, message: e.message })));
  const fw = parseFirmwareProfile(j.firmware ?? {}, base.firmware, '/firmware');
  if (!fw.ok) errors.push(...fw.errors);
  if (!cpu.ok || !fw.ok) return { ok: false, errors };
  return {
    ok: true,
    profile: Object.freeze({
      name: (j.name as string | undefined) ?? (j.cpu || j.firmware ? `${base.name}+custom` : base.name),
      cpu: cpu.profile,
      firmware: fw.profile,
    }),
  };
}

/**
 * The `--profile` argument: a preset name (`genoa`, `milan`) or the path of a JSON profile file.
 * Never throws; a missing file or bad JSON is an error at path ''.
 */
export function loadProfile(nameOrJsonPath: string): PlatformProfileResult {
  if (nameOrJsonPath === 'genoa' || nameOrJsonPath === 'milan') {
    return { ok: true, profile: PLATFORM_PROFILES[nameOrJsonPath] };
  }
  let text: string;
  try {
    text = readFileSync(nameOrJsonPath, 'utf8');
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return {
      ok: false,
      errors: [
        {
          path: '',
          message: `"${nameOrJsonPath}" is neither a preset (genoa, milan) nor a readable file: ${msg}`,
        },
      ],
    };
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    return {
      ok: false,
      errors: [{ path: '', message: `${nameOrJsonPath}: invalid JSON: ${(e as Error).message}` }],
    };
  }
  return parsePlatformProfile(json);
}

export interface SnpSystemOptions {
  /** A profile, or a preset name (default `genoa`). */
  readonly profile?: PlatformProfile | 'genoa' | 'milan';
  readonly memoryBytes: number;
  /**
   * Bytes the RMP covers. Default: what the default placement implies (all of memory and more, see
   * `rmpAtTopOfMemory`); giving it selects no placement unless `rmpPlacement` says otherwise.
   */
  readonly coveredBytes?: number;
  /**
   * Where the RMP table lies in system memory (RMP_BASE/RMP_END): `top` = `rmpAtTopOfMemory` (with an
   * explicit `coveredBytes`: that table, 1 MiB aligned at the top of memory), a number = RMP_BASE,
   * `none` = not in system memory. Default `top`, or `none` when `coveredBytes` is given.
   */
  readonly rmpPlacement?: 'top' | 'none' | number;
  /** Logical CPUs (default 4) and their initial MSRs (default: Linux's); see `PlatformOptions`. */
  readonly cpuCount?: number;
  readonly msrs?: PlatformOptions['msrs'];
  /**
   * Bring the platform to the state Linux leaves after `__sev_snp_init_locked`: VM_HSAVE_PA = 0 and
   * WBINVD on all CPUs, SNP_INIT_EX with INIT_RMP=1 (SNP_INIT before API 1.52), WBINVD, SNP_DF_FLUSH.
   * Default false.
   */
  readonly init?: boolean;
  readonly firmwareOptions?: FirmwareOptions;
}

/** The Platform options of `createSnpSystem`: the RMP placement and coverage it resolves to. */
export function snpPlatformOptions(options: SnpSystemOptions, cpu: CpuProfile): PlatformOptions {
  const { memoryBytes, coveredBytes } = options;
  const placement = options.rmpPlacement ?? (coveredBytes === undefined ? 'top' : 'none');
  let rmp: { coveredBytes?: number; rmpBase?: number } = {};
  if (placement === 'top') {
    if (coveredBytes === undefined) rmp = rmpAtTopOfMemory(memoryBytes);
    else {
      const table = Math.ceil(rmpTableBytes(coveredBytes) / RMP_FW_ALIGN) * RMP_FW_ALIGN;
      rmp = { coveredBytes, rmpBase: Math.floor((memoryBytes - table) / RMP_FW_ALIGN) * RMP_FW_ALIGN };
    }
  } else if (placement === 'none') {
    if (coveredBytes !== undefined) rmp = { coveredBytes };
  } else {
    rmp = { rmpBase: placement, ...(coveredBytes === undefined ? {} : { coveredBytes }) };
  }
  return {
    profile: cpu,
    memoryBytes,
    ...rmp,
    ...(options.cpuCount === undefined ? {} : { cpuCount: options.cpuCount }),
    ...(options.msrs === undefined ? {} : { msrs: options.msrs }),
  };
}

export interface SnpSystem {
  readonly profile: PlatformProfile;
  readonly platform: Platform;
  readonly firmware: Firmware;
}

/** A Platform and its Firmware. Throws only on a programming error (bad sizes) or a failing init. */
export function createSnpSystem(options: SnpSystemOptions): SnpSystem {
  const profile =
    typeof options.profile === 'object' ? options.profile : PLATFORM_PROFILES[options.profile ?? 'genoa'];
  const platform = new Platform(snpPlatformOptions(options, profile.cpu));
  const firmware = new Firmware(platform, profile.firmware, options.firmwareOptions);
  if (options.init) {
    const fp = profile.firmware;
    // [LX] SNP_INIT_EX needs API >= 1.52; older firmware gets SNP_INIT.
    const useEx = fp.apiMajor > 1 || (fp.apiMajor === 1 && fp.apiMinor >= 52);
    // [LX] __sev_snp_init_locked: VM_HSAVE_PA = 0 on every CPU, then WBINVD on all CPUs.
    for (let cpu = 0; cpu < platform.msrs.cpuCount; cpu++) platform.wrmsr(cpu, Msr.VM_HSAVE_PA, 0n);
    platform.wbinvd();
    const st = useEx ? firmware.snpInitEx({ initRmp: true }) : firmware.snpInit();
    platform.wbinvd();
    const fl = st === SevStatus.SUCCESS ? firmware.dfFlush() : st;
    if (fl !== SevStatus.SUCCESS) {
      throw new Error(
        `createSnpSystem: SNP init failed with ${sevStatusName(fl)} (${firmware.lastError?.reason ?? ''})`,
      );
    }
  }
  return { profile, platform, firmware };
}
