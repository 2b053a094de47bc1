/**
 * Platform profile variants for experiments: named documents in the profile loader's JSON form
 * (`{ "extends": "genoa", "cpu": { ... } }`, psp-firmware/profiles.ts `parsePlatformProfile`), each
 * flipping one firmware/CPU behaviour switch whose real value is not established (firmware-rmp.md
 * §H, ap-creation.md §G.4). They are data: a user writes the same document as a file and passes its
 * path to `--profile(s)`, or flips any switch inline (`genoa+vmrunInUseVmsa=allowed`).
 */

/** A platform profile document as the loader reads it from JSON. */
export interface ProfileDocument {
  readonly extends: 'genoa' | 'milan';
  readonly cpu?: Readonly<Record<string, unknown>>;
  readonly firmware?: Readonly<Record<string, unknown>>;
}

export interface ProfileVariant {
  readonly name: string;
  /** What the variant asks, one line. */
  readonly summary: string;
  readonly doc: ProfileDocument;
}

const variant = (name: string, summary: string, doc: ProfileDocument): ProfileVariant =>
  Object.freeze({ name, summary, doc: Object.freeze(doc) });

/** Every variant by name. */
export const PROFILE_VARIANTS: Readonly<Record<string, ProfileVariant>> = Object.freeze(
  Object.fromEntries(
    [
      variant(
        'genoa-vmsa-2m-erratum',
        'VMRUN of a 2 MB-aligned VMSA fails (VMEXIT_INVALID): the erratum KVM and Linux avoid, symptom not established (ap-creation.md G.4)',
        { extends: 'genoa', cpu: { vmsa2MAlignedErratum: true } },
      ),
      variant(
        'genoa-vmrun-needs-validated',
        'VMRUN also requires Validated = 1 on the VMSA page (not in the Table 15-41 read; ap-creation.md G.4)',
        { extends: 'genoa', cpu: { vmrunRequiresValidated: true } },
      ),
      variant(
        'genoa-rmpadjust-unvalidated-allowed',
        'RMPADJUST on an unvalidated guest page succeeds instead of raising #VC (ap-creation.md C.5, G.4)',
        { extends: 'genoa', cpu: { rmpadjustNotValidated: 'allowed' } },
      ),
      variant(
        'genoa-vmrun-in-use-allowed',
        'VMRUN of a VMSA already running on another CPU is not refused (ap-creation.md G.4)',
        { extends: 'genoa', cpu: { vmrunInUseVmsa: 'allowed' } },
      ),
      variant(
        'genoa-psmash-code-7',
        'PSMASH of a non-2 MB entry returns 7 (Microsoft __psmash docs) instead of 4 (firmware-rmp.md H1)',
        { extends: 'genoa', cpu: { psmashBadAddressCode: 7 } },
      ),
      variant(
        'genoa-no-reverse-map-check',
        "VMRUN does not compare the VMSA's RMP GPA with the GPA KVM expects (firmware-rmp.md H7)",
        { extends: 'genoa', cpu: { vmrunReverseMapCheck: false } },
      ),
    ].map((v) => [v.name, v]),
  ),
);

export const PROFILE_VARIANT_NAMES: readonly string[] = Object.freeze(Object.keys(PROFILE_VARIANTS));
