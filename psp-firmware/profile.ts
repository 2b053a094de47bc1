/**
 * The CPU/RMP profile: version-dependent values and every open point of `firmware-rmp.md` §H (1, 3-9)
 * and `ap-creation.md` §G.4 that touches the CPU, as named, documented fields. Plain frozen data;
 * users can write one as JSON (`{ "extends": "genoa", ... }`) validated with TypeBox.
 * (Firmware-side fields live in `psp-firmware/firmware/`.)
 */
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';

const Literals = <T extends readonly string[]>(values: T) =>
  Type.Union(values.map((v) => Type.Literal(v)) as never as [ReturnType<typeof Type.Literal<T[number]>>]);

/** TypeBox schema of a complete profile (every field required). */
export const CpuProfileSchema = Type.Object(
  {
    /** Preset or user name, shown in reports. */
    name: Type.String({ minLength: 1 }),
    /**
     * System physical-address width the RMP GPA field is masked with: the RMP stores
     * GPA[50:12] & the system PA mask; 48 bits on Milan, 52 on Genoa (T. Lendacky, coconut-svsm #22,
     * `firmware-rmp.md` §A.2).
     */
    physAddrBits: Type.Integer({ minimum: 40, maximum: 52 }),
    /** Implemented VMPLs, CPUID Fn8000_001F_EBX[15:12] (4 on Milan and Genoa) [APM 15.36.3]. */
    vmplCount: Type.Integer({ minimum: 1, maximum: 4 }),
    /**
     * §H1: PSMASH status when the page does not meet the requirements for expansion (the 2 MB-aligned
     * entry is not an assigned 2 MB entry, or another entry of its region is assigned; see
     * `cpu/host-instructions.ts`): 4 = `PSMASH_FAIL_BADADDR` of the 2021 Linux RFC (AMD authors),
     * 7 = Microsoft `__psmash` docs. Default 4; decide by a hardware run.
     */
    psmashBadAddressCode: Type.Union([Type.Literal(4), Type.Literal(7)]),
    /**
     * §H3: PVALIDATE executed at VMPL > 0. 'fail-permission' = EAX 2 (VeriSMo's model; default);
     * 'allowed' = no VMPL restriction (the Microsoft table lists only 0/1/6).
     */
    pvalidateBelowVmpl0: Literals(['fail-permission', 'allowed'] as const),
    /**
     * §H4: RMPADJUST setting the VMSA bit (at VMPL0) on a 2 MB RMP page. Unknown in every source
     * read; the firmware insists on 4K for VMSA pages. Default 'fail-input'; 'fail-sizemismatch'
     * (EAX 6) or 'allowed' are the alternatives.
     */
    rmpadjustVmsaOn2M: Literals(['fail-input', 'fail-sizemismatch', 'allowed'] as const),
    /**
     * ap-creation.md §C.5/§G.4: RMPADJUST on a guest-owned page that is not validated. VeriSMo reports
     * a "NotValidated" error after the ownership checks; what the CPU raises is unknown. Default 'vc'
     * (#VC 0x404, as for memory accesses, Table 15-39); 'npf', 'fail-input' (EAX 1) or 'allowed'.
     */
    rmpadjustNotValidated: Literals(['vc', 'npf', 'fail-input', 'allowed'] as const),
    /**
     * RMPADJUST of a VMSA page that is in use by a running vCPU (another VMRUN): #VMEXIT(NPF) per Tom
     * Lendacky (ap-creation.md §C.5) = 'npf' (default); 'fail-inuse' (EAX 3) as alternative.
     */
    rmpadjustInUseVmsa: Literals(['npf', 'fail-inuse'] as const),
    /**
     * §H5: RMPUPDATE with GPA bits 11:0 set in the new state. The RMP stores only GPA[50:12];
     * whether the CPU ignores the low bits or fails is not established. Default 'ignore'.
     */
    rmpupdateGpaLowBits: Literals(['ignore', 'fail-input'] as const),
    /**
     * VMPL0 mask an assigning RMPUPDATE writes ("full permissions", APM 15.36.7). Default 0x1F
     * (R|W|X_USER|X_SUPER|SSS, VeriSMo's `PagePerm::full()`); 0x0F if SSS is not part of "full".
     */
    rmpupdateVmpl0Mask: Type.Integer({ minimum: 0, maximum: 0x1f }),
    /**
     * §H6: RMPQUERY for a target VMPL numerically below the current one (more privileged). The
     * meaning of its FAIL_PERMISSION is unclear (the MS text looks copied). Default 'fail-permission'.
     */
    rmpqueryTargetBelowCurrent: Literals(['fail-permission', 'allowed'] as const),
    /**
     * RMPREAD exists (CPUID Fn8000_001F_EAX[21], [LX] X86_FEATURE_RMPREAD; Zen 5). Without it the
     * instruction raises #UD. False on Milan and Genoa.
     */
    rmpreadSupported: Type.Boolean(),
    /**
     * §H7: VMRUN's Reverse-Map check of an SNP-active VMSA (listed in Table 15-41, target unknown).
     * When true (default) the entry's GPA must equal the VMSA GPA the caller passes to `vmrun`.
     */
    vmrunReverseMapCheck: Type.Boolean(),
    /**
     * ap-creation.md §G.4: whether VMRUN requires Validated = 1 on an SNP-active VMSA (not in the
     * Table 15-41 we could read). Default false.
     */
    vmrunRequiresValidated: Type.Boolean(),
    /**
     * The SNP erratum on 2 MB-aligned VMSA pages (KVM refuses them, `sev_snp_ap_creation`); its
     * observable symptom is unknown (§G.4). When true, VMRUN of a 2 MB-aligned VMSA fails with
     * VMEXIT_INVALID. Default false.
     */
    vmsa2MAlignedErratum: Type.Boolean(),
    /**
     * VMRUN of a VMSA already in use by another running vCPU (§G.4, exit code unknown). Default
     * 'vmexit-invalid'; 'allowed' lets both run.
     */
    vmrunInUseVmsa: Literals(['vmexit-invalid', 'allowed'] as const),
    /**
     * ALLOWED_SEV_FEATURES (CPUID Fn8000_001F_EAX[27], [LX] X86_FEATURE_ALLOWED_SEV_FEATURES; EPYC 5th
     * generation, [APM] 15.36.20): VMRUN honours VMCB 0x138. With its bit 63 set, an SEV_FEATURES bit
     * (0-62) outside the mask is VMEXIT_INVALID; with bit 63 clear, the opt-in features
     * PmcVirtualization (11) and SecureAvic (16) are unavailable. Without the feature the field is
     * ignored. False on Milan and Genoa, true on Turin.
     */
    allowedSevFeatures: Type.Boolean(),
  },
  { additionalProperties: false },
);

export type CpuProfile = Readonly<Static<typeof CpuProfileSchema>>;

const genoa: CpuProfile = Object.freeze({
  name: 'genoa',
  physAddrBits: 52,
  vmplCount: 4,
  psmashBadAddressCode: 4,
  pvalidateBelowVmpl0: 'fail-permission',
  rmpadjustVmsaOn2M: 'fail-input',
  rmpadjustNotValidated: 'vc',
  rmpadjustInUseVmsa: 'npf',
  rmpupdateGpaLowBits: 'ignore',
  rmpupdateVmpl0Mask: 0x1f,
  rmpqueryTargetBelowCurrent: 'fail-permission',
  rmpreadSupported: false,
  vmrunReverseMapCheck: true,
  vmrunRequiresValidated: false,
  vmsa2MAlignedErratum: false,
  vmrunInUseVmsa: 'vmexit-invalid',
  allowedSevFeatures: false,
} as const);

/**
 * Built-in presets: `genoa` (default), `milan` (48-bit GPA mask), `turin` (Genoa + RMPREAD and
 * ALLOWED_SEV_FEATURES).
 */
export const CPU_PROFILES: Readonly<Record<'genoa' | 'milan' | 'turin', CpuProfile>> = Object.freeze({
  genoa,
  milan: Object.freeze({ ...genoa, name: 'milan', physAddrBits: 48 }),
  turin: Object.freeze({ ...genoa, name: 'turin', rmpreadSupported: true, allowedSevFeatures: true }),
});

export const DEFAULT_CPU_PROFILE: CpuProfile = genoa;

export interface ProfileError {
  /** JSON pointer of the offending value, e.g. `/psmashBadAddressCode`. */
  readonly path: string;
  readonly message: string;
}

export type CpuProfileResult =
  | { readonly ok: true; readonly profile: CpuProfile }
  | { readonly ok: false; readonly errors: readonly ProfileError[] };

/**
 * Validates a user profile: a JSON object with optional `extends` (a preset name, default `genoa`)
 * and any profile fields overriding the preset. Never throws; errors name the JSON path.
 */
export function parseCpuProfile(json: unknown): CpuProfileResult {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    return { ok: false, errors: [{ path: '', message: 'a CPU profile must be a JSON object' }] };
  }
  const { extends: base = 'genoa', ...fields } = json as Record<string, unknown>;
  if (typeof base !== 'string' || !Object.hasOwn(CPU_PROFILES, base)) {
    return {
      ok: false,
      errors: [
        {
          path: '/extends',
          message: `unknown preset ${JSON.stringify(base)}; presets: ${Object.keys(CPU_PROFILES).join(', ')}`,
        },
      ],
    };
  }
  const preset = CPU_PROFILES[base as keyof typeof CPU_PROFILES];
  const merged: Record<string, unknown> = { ...preset, name: `${base}+custom`, ...fields };
  const errors = [...Value.Errors(CpuProfileSchema, merged)].map((e) => ({
    path: e.path,
    message:
      e.path !== '' && !Object.hasOwn(CpuProfileSchema.properties, e.path.slice(1).split('/')[0] ?? '')
        ? 'unknown profile field'
        : e.message,
  }));
  if (errors.length > 0) return { ok: false, errors };
  return { ok: true, profile: Object.freeze(merged as CpuProfile) };
}

/** `parseCpuProfile` of a JSON text; a syntax error is reported at path ''. */
export function parseCpuProfileText(text: string): CpuProfileResult {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    return { ok: false, errors: [{ path: '', message: `invalid JSON: ${(err as Error).message}` }] };
  }
  return parseCpuProfile(json);
}
