/**
 * `FirmwareProfile`: the version-dependent facts of one SNP firmware build and the open points of
 * firmware-rmp.md §E.1/§H that a user may want to flip, as data. Presets `genoa` (SEV FW 1.55.25,
 * the firmware source we read) and `milan` (the values of the real Milan report in virtee/sev
 * tests/certs_data/report_milan.hex). Users write their own as JSON, validated with TypeBox; every
 * error names the JSON path.
 */
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { InitExFlag } from './buffers.js';

/** A TCB_VERSION (firmware-rmp.md §D.5). `fmc` exists only in the Turin layout. */
export interface TcbVersion {
  readonly bootLoader: number;
  readonly tee: number;
  readonly snp: number;
  readonly microcode: number;
  readonly fmc?: number;
}

/** One register rule of the firmware's CPUID sanitizer (cpuid_lookup.c `CPUID_RULE_*`) [FW]. */
export interface CpuidRegisterRule {
  readonly rule: 'mask' | 'exact' | 'lessthan' | 'unchecked';
  /** The allowed mask / the exact value / the maximum, depending on `rule`. */
  readonly value: number;
  /** Bits that must be zero whatever the rule ("always check reserved bits"). */
  readonly reserved: number;
}
/** The rules of one CPUID leaf (EAX_IN, ECX_IN): EAX, EBX, ECX, EDX. */
export interface CpuidLeafRule {
  readonly eaxIn: number;
  readonly ecxIn: number;
  readonly regs: readonly [CpuidRegisterRule, CpuidRegisterRule, CpuidRegisterRule, CpuidRegisterRule];
}

export interface FirmwareProfile {
  readonly name: string;
  /** API version reported by SNP_PLATFORM_STATUS and in reports (e.g. 1.55 build 25). */
  readonly apiMajor: number;
  readonly apiMinor: number;
  readonly buildId: number;
  /** Version of the committed firmware (SNP_COMMIT copies the running one here). */
  readonly committedApiMajor: number;
  readonly committedApiMinor: number;
  readonly committedBuildId: number;
  /** Byte layout of TCB_VERSION: Milan/Genoa or Turin (Linux `sev_snp_tcb_version_*`). */
  readonly tcbLayout: 'milan-genoa' | 'turin';
  /** Installed / running TCB (PLATFORM_STATUS.tcb_version, report CURRENT_TCB). */
  readonly currentTcb: TcbVersion;
  /** Committed TCB (report COMMITTED_TCB, LAUNCH_TCB at GCTX_CREATE, default REPORTED_TCB). */
  readonly committedTcb: TcbVersion;
  /** ATTESTATION_REPORT.VERSION the firmware writes: 2 (FW 1.55.25), 3 (+CPUID FMS), 5 (+mitigation vectors). */
  readonly reportVersion: 2 | 3 | 5;
  /** CPUID Fn0000_0001_EAX of the part: secrets-page FMS and report v3 CPUID_FAM/MOD/STEP. */
  readonly cpuidSignature: number;
  /** Largest ASID the firmware accepts (GetMaxSEVASID, CPUID Fn8000_001F_ECX). */
  readonly maxAsid: number;
  /** First legacy-SEV ASID (CPUID Fn8000_001F_EDX); SNP guests use 1 .. minSevAsid-1 (KVM). Not checked by the firmware. */
  readonly minSevAsid: number;
  /**
   * Byte order of the VMPL masks in PAGE_INFO bytes 0x64-0x67 (§E.1/§H.2 conflict): `firmware` =
   * reserved, vmpl1, vmpl2, vmpl3 (Genoa FW source); `tools` = vmpl3, vmpl2, vmpl1, 0 (sev-snp-measure).
   */
  readonly pageInfoVmplOrder: 'firmware' | 'tools';
  /** Hex seed of the simulated chip: CHIP_ID and the VCEK derive from it (see attestation/vcek.ts). */
  readonly chipSeed: string;
  readonly smtEnabled: boolean;
  readonly tsmeEnabled: boolean;
  /** Populated sockets (POLICY.SINGLE_SOCKET fails ACTIVATE when > 1) [FW gTotalDieNum]. */
  readonly sockets: number;
  /** Core complexes: granularity of the WBINVD_DONE flags and the ASID dirty/clean masks [FW]. */
  readonly ccxCount: number;
  /** Guest-policy bits LAUNCH_START rejects with POLICY_FAILURE (FW 1.55.25: bits 63:21). */
  readonly policyReservedMask: bigint;
  /** SNP_INIT_EX flag bits this firmware knows; any other bit of the first dword is reserved (FW 1.55.25: 0x3). */
  readonly initExFlagsMask: number;
  /** SNP_SHUTDOWN_EX x86_snp_shutdown support (FW: SMU "set MSR" support). */
  readonly x86SnpShutdown: boolean;
  /** Secrets page VERSION field [FW SNP_LAUNCH_UPDATE_SECRETS_PAGE_VERSION = 3]. */
  readonly secretsPageVersion: number;
  /** Secrets page / TSC_INFO TSC_FACTOR [FW TSC_FACTOR_GENOA = (100000 - 99600) / 2 = 200]. */
  readonly tscFactor: number;
  /** PSP reference clock in kHz for GUEST_TSC_SCALE (SecureTSC) [FW REF_CLK_GENOA = 99800]. */
  readonly refClkKhz: number;
  /** C-bit position: the firmware clears it from command addresses before RMP lookups [FW CLEAR_CBIT]. */
  readonly cbitPosition: number;
  /** SNP_FEATURE_INFO words for ECX_IN 0 and 1: [eax, ebx, ecx, edx] [FW SEV_FEATURE_INFO_x0*]. */
  readonly featureInfo: readonly [readonly number[], readonly number[]];
  /**
   * CPUID page validation: `structure` checks count <= 64, reserved fields and the per-entry reserved
   * field; `rules` also applies `cpuidRules` as the firmware's sanitizer does (an architectural leaf
   * without a rule must be all zero). The per-leaf values of AMD's table are CPU specific and not copied.
   */
  readonly cpuidValidation: 'structure' | 'rules';
  readonly cpuidRules: readonly CpuidLeafRule[];
}

// ---- JSON schema ----------------------------------------------------------------------------

const U8 = Type.Integer({ minimum: 0, maximum: 0xff });

const U32 = Type.Integer({ minimum: 0, maximum: 0xffffffff });
const Hex64 = Type.String({ pattern: '^0x[0-9a-fA-F]{1,16}$' });
const Tcb = Type.Object(
  { bootLoader: U8, tee: U8, snp: U8, microcode: U8, fmc: Type.Optional(U8) },
  { additionalProperties: false },
);
const RegRule = Type.Object(
  {
    rule: Type.Union([
      Type.Literal('mask'),
      Type.Literal('exact'),
      Type.Literal('lessthan'),
      Type.Literal('unchecked'),
    ]),
    value: U32,
    reserved: U32,
  },
  { additionalProperties: false },
);
const Words = Type.Array(U32, { minItems: 4, maxItems: 4 });

/** JSON form of a firmware profile: every field optional, merged over `extends` (a preset name). */
export const FirmwareProfileJson = Type.Object(
  {
    extends: Type.Optional(Type.Union([Type.Literal('genoa'), Type.Literal('milan')])),
    name: Type.Optional(Type.String({ minLength: 1 })),
    apiMajor: Type.Optional(U8),
    apiMinor: Type.Optional(U8),
    buildId: Type.Optional(U8),
    committedApiMajor: Type.Optional(U8),
    committedApiMinor: Type.Optional(U8),
    committedBuildId: Type.Optional(U8),
    tcbLayout: Type.Optional(Type.Union([Type.Literal('milan-genoa'), Type.Literal('turin')])),
    currentTcb: Type.Optional(Tcb),
    committedTcb: Type.Optional(Tcb),
    reportVersion: Type.Optional(Type.Union([Type.Literal(2), Type.Literal(3), Type.Literal(5)])),
    cpuidSignature: Type.Optional(U32),
    maxAsid: Type.Optional(Type.Integer({ minimum: 1, maximum: 2047 })),
    minSevAsid: Type.Optional(Type.Integer({ minimum: 1, maximum: 2048 })),
    pageInfoVmplOrder: Type.Optional(Type.Union([Type.Literal('firmware'), Type.Literal('tools')])),
    chipSeed: Type.Optional(Type.String({ pattern: '^([0-9a-fA-F]{2}){1,64}$' })),
    smtEnabled: Type.Optional(Type.Boolean()),
    tsmeEnabled: Type.Optional(Type.Boolean()),
    sockets: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 })),
    ccxCount: Type.Optional(Type.Integer({ minimum: 1, maximum: 32 })),
    policyReservedMask: Type.Optional(Hex64),
    initExFlagsMask: Type.Optional(U32),
    x86SnpShutdown: Type.Optional(Type.Boolean()),
    secretsPageVersion: Type.Optional(U32),
    tscFactor: Type.Optional(U32),
    refClkKhz: Type.Optional(Type.Integer({ minimum: 1, maximum: 0xffffffff })),
    cbitPosition: Type.Optional(Type.Integer({ minimum: 32, maximum: 63 })),
    featureInfo: Type.Optional(Type.Tuple([Words, Words])),
    cpuidValidation: Type.Optional(Type.Union([Type.Literal('structure'), Type.Literal('rules')])),
    cpuidRules: Type.Optional(
      Type.Array(
        Type.Object(
          { eaxIn: U32, ecxIn: U32, regs: Type.Tuple([RegRule, RegRule, RegRule, RegRule]) },
          { additionalProperties: false },
        ),
        { maxItems: 256 },
      ),
    ),
  },
  { additionalProperties: false },
);
export type FirmwareProfileJson = Static<typeof FirmwareProfileJson>;

/** One problem in a profile: JSON pointer of the offending value and what is wrong. */
export interface FirmwareProfileProblem {
  readonly path: string;
  readonly message: string;
}

export type FirmwareProfileResult =
  | { readonly ok: true; readonly profile: FirmwareProfile }
  | { readonly ok: false; readonly errors: readonly FirmwareProfileProblem[] };

// ---- presets --------------------------------------------------------------------------------

/** FEATURE_INFO ECX_IN=0: max sub-function 1, legacy SEV supported, VLEK b0 | X86_SNP_SHUTDOWN b1 [FW sev_mcmd.h]. */
const FEATURE_INFO_X00 = [1, 1, 0b11, 0] as const;
/** FEATURE_INFO ECX_IN=1: guest messages supported, bits 8:0 (CPUID ... TSC_INFO) [FW sev_mcmd.h]. */
const FEATURE_INFO_X01 = [0x1ff, 0, 0, 0] as const;

/**
 * Genoa, SEV FW 1.55.25 (amd/AMD-ASPFW 3ca6650, "Genoa SEV FW version 1.55.25 [hex 1.37.19]").
 * The TCB SVNs of that build are not in the source we read: the values below are illustrative.
 */
export const GENOA_FIRMWARE: FirmwareProfile = Object.freeze({
  name: 'genoa',
  apiMajor: 1,
  apiMinor: 55,
  buildId: 25,
  committedApiMajor: 1,
  committedApiMinor: 55,
  committedBuildId: 25,
  tcbLayout: 'milan-genoa',
  currentTcb: Object.freeze({ bootLoader: 9, tee: 0, snp: 23, microcode: 72 }),
  committedTcb: Object.freeze({ bootLoader: 9, tee: 0, snp: 23, microcode: 72 }),
  reportVersion: 2, // [FW] SNP_GMSG_MAX_REPORT_VERSION 2
  cpuidSignature: 0x00a10f10, // EPYC-Genoa, family 19h model 11h stepping 0 (firmware-rmp.md §E.3)
  maxAsid: 1006, // Genoa: 1006 encryption-capable ASIDs (CPUID Fn8000_001F_ECX)
  minSevAsid: 100,
  pageInfoVmplOrder: 'firmware',
  chipSeed: '67656e6f612d736e7073696d2d63686970',
  smtEnabled: true,
  tsmeEnabled: false,
  sockets: 1,
  ccxCount: 12,
  policyReservedMask: 0xffff_ffff_ffe0_0000n, // [FW 1.55.25] bits 63:21 reserved (firmware-rmp.md §E.5)
  initExFlagsMask: InitExFlag.INIT_RMP | InitExFlag.LIST_PADDR_EN, // [FW snp_mcmd_init_ex_t] bits 31:2 reserved
  x86SnpShutdown: true,
  secretsPageVersion: 3, // [FW] SNP_LAUNCH_UPDATE_SECRETS_PAGE_VERSION
  tscFactor: (100000 - 99600) / 2, // [FW] TSC_FACTOR_GENOA
  refClkKhz: 99800, // [FW] REF_CLK_GENOA, 100 MHz - 0.2 %
  cbitPosition: 51, // CPUID Fn8000_001F_EBX[5:0] on Milan and Genoa
  featureInfo: Object.freeze([FEATURE_INFO_X00, FEATURE_INFO_X01]) as FirmwareProfile['featureInfo'],
  cpuidValidation: 'structure',
  cpuidRules: Object.freeze([]),
});

/**
 * Milan: the platform of the real report in virtee/sev tests/certs_data/report_milan.hex
 * (CURRENT/COMMITTED 1.52 build 4, TCB bl 3 tee 0 snp 8 microcode 0x73, SMT on, report version 2).
 */
export const MILAN_FIRMWARE: FirmwareProfile = Object.freeze({
  ...GENOA_FIRMWARE,
  name: 'milan',
  apiMajor: 1,
  apiMinor: 52,
  buildId: 4,
  committedApiMajor: 1,
  committedApiMinor: 52,
  committedBuildId: 4,
  currentTcb: Object.freeze({ bootLoader: 3, tee: 0, snp: 8, microcode: 0x73 }),
  committedTcb: Object.freeze({ bootLoader: 3, tee: 0, snp: 8, microcode: 0x73 }),
  cpuidSignature: 0x00a00f11, // EPYC-Milan, family 19h model 01h stepping 1
  maxAsid: 509, // Milan: 509 encryption-capable ASIDs
  chipSeed: '6d696c616e2d736e7073696d2d63686970',
  ccxCount: 8,
});

export const FIRMWARE_PRESETS: Readonly<Record<'genoa' | 'milan', FirmwareProfile>> = Object.freeze({
  genoa: GENOA_FIRMWARE,
  milan: MILAN_FIRMWARE,
});

/**
 * Validate a JSON firmware profile and merge it over its base (`extends`, else `base`, else genoa).
 * Never throws; every error names its JSON path (prefixed with `pathPrefix`).
 */
export function parseFirmwareProfile(
  json: unknown,
  base?: FirmwareProfile,
  pathPrefix = '',
): FirmwareProfileResult {
  const errors = [...Value.Errors(FirmwareProfileJson, json)].map((e) => ({
    path: pathPrefix + e.path,
    message: e.message,
  }));
  if (errors.length > 0) return { ok: false, errors };
  const j = json as FirmwareProfileJson;
  const from = j.extends ? FIRMWARE_PRESETS[j.extends] : (base ?? GENOA_FIRMWARE);
  const { extends: _ext, policyReservedMask, ...rest } = j;
  const merged: FirmwareProfile = {
    ...from,
    ...(rest as Partial<FirmwareProfile>),
    name:
      rest.name ??
      (Object.keys(rest).length > 0 || policyReservedMask !== undefined ? `${from.name}+custom` : from.name),
    policyReservedMask:
      policyReservedMask === undefined ? from.policyReservedMask : BigInt(policyReservedMask),
  };
  if (merged.minSevAsid > merged.maxAsid + 1) {
    errors.push({
      path: `${pathPrefix}/minSevAsid`,
      message: `must be at most maxAsid + 1 (${merged.maxAsid + 1})`,
    });
  }
  if ((merged.policyReservedMask & 0x20000n) !== 0n) {
    errors.push({
      path: `${pathPrefix}/policyReservedMask`,
      message: 'bit 17 is the must-be-one policy bit and cannot be reserved',
    });
  }
  return errors.length > 0 ? { ok: false, errors } : { ok: true, profile: Object.freeze(merged) };
}

/** The JSON form of a profile (inverse of `parseFirmwareProfile`). */
export function firmwareProfileToJson(p: FirmwareProfile): FirmwareProfileJson {
  const { policyReservedMask, ...rest } = p;
  return {
    ...rest,
    policyReservedMask: `0x${policyReservedMask.toString(16)}`,
    featureInfo: [[...p.featureInfo[0]], [...p.featureInfo[1]]],
    cpuidRules: p.cpuidRules.map((r) => ({ ...r, regs: [...r.regs] as never })),
  } as FirmwareProfileJson;
}

/** TCB_VERSION as the u64 the firmware writes, in the profile's layout (firmware-rmp.md §D.5). */
export function encodeTcb(t: TcbVersion, layout: FirmwareProfile['tcbLayout']): bigint {
  const bytes =
    layout === 'turin'
      ? [t.fmc ?? 0, t.bootLoader, t.tee, t.snp, 0, 0, 0, t.microcode]
      : [t.bootLoader, t.tee, 0, 0, 0, 0, t.snp, t.microcode];
  let v = 0n;
  for (let i = 7; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i] ?? 0);
  return v;
}

/** Decode a TCB_VERSION u64; `reservedZero` says whether the reserved bytes are zero. */
export function decodeTcb(
  v: bigint,
  layout: FirmwareProfile['tcbLayout'],
): TcbVersion & { reservedZero: boolean } {
  const b = (i: number) => Number((v >> BigInt(8 * i)) & 0xffn);
  if (layout === 'turin') {
    return {
      fmc: b(0),
      bootLoader: b(1),
      tee: b(2),
      snp: b(3),
      microcode: b(7),
      reservedZero: b(4) === 0 && b(5) === 0 && b(6) === 0,
    };
  }
  return {
    bootLoader: b(0),
    tee: b(1),
    snp: b(6),
    microcode: b(7),
    reservedZero: b(2) === 0 && b(3) === 0 && b(4) === 0 && b(5) === 0,
  };
}

/**
 * Component-wise "a > b" as the firmware's `tcb_compare_versions(...) > 0` is used by SNP_CONFIG:
 * true when any SVN of `a` exceeds the same SVN of `b` (an SVN can only be lowered, never raised).
 */
export function tcbExceeds(a: TcbVersion, b: TcbVersion): boolean {
  return (
    a.bootLoader > b.bootLoader ||
    a.tee > b.tee ||
    a.snp > b.snp ||
    a.microcode > b.microcode ||
    (a.fmc ?? 0) > (b.fmc ?? 0)
  );
}
