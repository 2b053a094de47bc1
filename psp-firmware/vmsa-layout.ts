/**
 * The VMSA layout, defined once: the byte offsets of `struct sev_es_save_area` every layer reads or
 * writes, `struct vmcb_seg`, the SEV_FEATURES bits (VMSA 0x3B0) and EFER.SVME.
 *
 * Offsets: [LX] arch/x86/include/asm/svm.h `struct sev_es_save_area` (its static_asserts pin them),
 * confirmed by the firmware's `sev_es.h` [FW] and ap-creation.md §A.6. SEV_FEATURES bits: [APM]
 * Table 15-34 / B-4 names (firmware-rmp.md §E.5); the Linux names are the host's `SVM_SEV_FEAT_*`
 * ([LX] asm/svm.h) where KVM defines one, else the guest's `MSR_AMD64_SNP_*` (SEV_STATUS bit n + 2,
 * [LX] asm/msr-index.h).
 */

/** A VMSA is one 4 KiB page. [APM 15.35.2] */
export const VMSA_SIZE = 0x1000;

/** Byte offsets in `struct sev_es_save_area`. [LX] arch/x86/include/asm/svm.h; [FW] sev_es.h */
export const VmsaOffset = Object.freeze({
  /** Segments: each a 16-byte `struct vmcb_seg` (see `VmcbSeg`). */
  ES: 0x000,
  CS: 0x010,
  SS: 0x020,
  DS: 0x030,
  FS: 0x040,
  GS: 0x050,
  GDTR: 0x060,
  LDTR: 0x070,
  IDTR: 0x080,
  TR: 0x090,
  /** u8 vmpl: the VMPL the VMSA runs at. */
  VMPL: 0x0ca,
  /** u8 cpl. */
  CPL: 0x0cb,
  /** u64 efer (bit 12 SVME, `EFER_SVME`). */
  EFER: 0x0d0,
  CR4: 0x148,
  CR3: 0x150,
  CR0: 0x158,
  DR7: 0x160,
  DR6: 0x168,
  RFLAGS: 0x170,
  RIP: 0x178,
  RSP: 0x1d8,
  RAX: 0x1f8,
  G_PAT: 0x268,
  /** Linux `tsc_scale` (older headers `reserved_0x2f0`); firmware GUEST_TSC_SCALE, measured as 0. [FW sev_es.h] */
  GUEST_TSC_SCALE: 0x2f0,
  /** Linux `tsc_offset`; firmware GUEST_TSC_OFFSET, measured as 0. [FW sev_es.h] */
  GUEST_TSC_OFFSET: 0x2f8,
  RDX: 0x310,
  /** u64 sev_features (`SevFeature` bits). */
  SEV_FEATURES: 0x3b0,
  XCR0: 0x3e8,
  /** u32 mxcsr. */
  MXCSR: 0x408,
  /** u16 x87_ftw. */
  X87_FTW: 0x40c,
  /** u16 x87_fcw. */
  X87_FCW: 0x410,
} as const);

/** `struct vmcb_seg` (16 bytes): u16 selector, u16 attrib, u32 limit, u64 base. [LX] asm/svm.h */
export const VmcbSeg = Object.freeze({ SELECTOR: 0, ATTRIB: 2, LIMIT: 4, BASE: 8 } as const);

/**
 * SEV_FEATURES bits (VMSA 0x3B0; = SEV_STATUS >> 2). Each: [APM] name / Linux name. Bits 17–20 and
 * 22–63 are reserved.
 */
export const SevFeature = Object.freeze({
  /** 0 SNPActive / SVM_SEV_FEAT_SNP_ACTIVE. */
  SNP_ACTIVE: 1n << 0n,
  /** 1 vTOM / MSR_AMD64_SNP_VTOM. */
  VTOM: 1n << 1n,
  /** 2 ReflectVC / MSR_AMD64_SNP_REFLECT_VC. */
  REFLECT_VC: 1n << 2n,
  /** 3 RestrictedInjection / SVM_SEV_FEAT_RESTRICTED_INJECTION. */
  RESTRICTED_INJECTION: 1n << 3n,
  /** 4 AlternateInjection / SVM_SEV_FEAT_ALTERNATE_INJECTION. */
  ALTERNATE_INJECTION: 1n << 4n,
  /** 5 DebugVirtualization / SVM_SEV_FEAT_DEBUG_SWAP. */
  DEBUG_SWAP: 1n << 5n,
  /** 6 PreventHostIBS / MSR_AMD64_SNP_PREVENT_HOST_IBS. */
  PREVENT_HOST_IBS: 1n << 6n,
  /** 7 BTBIsolation / MSR_AMD64_SNP_BTB_ISOLATION. */
  BTB_ISOLATION: 1n << 7n,
  /** 8 VmplSSS / MSR_AMD64_SNP_VMPL_SSS. */
  VMPL_SSS: 1n << 8n,
  /** 9 SecureTSC / SVM_SEV_FEAT_SECURE_TSC. */
  SECURE_TSC: 1n << 9n,
  /** 10 VmgexitParameter / MSR_AMD64_SNP_VMGEXIT_PARAM. */
  VMGEXIT_PARAMETER: 1n << 10n,
  /** 11 PmcVirtualization (Linux: MSR_AMD64_SNP_RESERVED_BIT13). [APM Table B-4, K. Phillips' ALLOWED_SEV_FEATURES series] */
  PMC_VIRTUALIZATION: 1n << 11n,
  /** 12 IbsVirtualization / MSR_AMD64_SNP_IBS_VIRT. */
  IBS_VIRTUALIZATION: 1n << 12n,
  /** 13 GuestInterceptControl (Linux: MSR_AMD64_SNP_RESERVED_BIT15). [firmware-rmp.md §E.5 GuestInterceptCtl] */
  GUEST_INTERCEPT_CONTROL: 1n << 13n,
  /** 14 VmsaRegProt / MSR_AMD64_SNP_VMSA_REG_PROT. */
  VMSA_REG_PROT: 1n << 14n,
  /** 15 SmtProtection / MSR_AMD64_SNP_SMT_PROT. */
  SMT_PROTECTION: 1n << 15n,
  /** 16 SecureAVIC / MSR_AMD64_SNP_SECURE_AVIC. */
  SECURE_AVIC: 1n << 16n,
  /** 21 IbpbOnEntry / SVM_SEV_FEAT_IBPB_ON_ENTRY (MSR_AMD64_SNP_IBPB_ON_ENTRY, SEV_STATUS bit 23). */
  IBPB_ON_ENTRY: 1n << 21n,
} as const);

/** RestrictedInjection | AlternateInjection = 0x18. [LX] SVM_SEV_FEAT_INT_INJ_MODES, asm/svm.h */
export const SEV_FEATURES_INT_INJ_MODES = SevFeature.RESTRICTED_INJECTION | SevFeature.ALTERNATE_INJECTION;

/** EFER.SVME (bit 12): VMRUN of a VMSA without it fails. [APM] EFER; [LX] EFER_SVME, asm/msr-index.h */
export const EFER_SVME = 1n << 12n;
