/**
 * SNP page states as a pure function of an RMP entry (raw words w0/w1), in the order the Genoa
 * firmware evaluates them ([FW] sev_rmp.c `rmp_entry_get_state()`, SNP ABI "Page States").
 * Default = page not covered by the RMP; Invalid = no state matches.
 */
import {
  ASID_MASK,
  GFN_LO_BITS,
  GPA_STATE_FW_IOMMU,
  GPA_STATE_METADATA,
  GPA_STATE_SHIFT,
  W0_ASSIGNED,
  W0_GFN_SHIFT,
  W0_IMMUTABLE,
  W1_ASID_SHIFT,
  W1_GFN_HI_MASK,
  W1_LOCK,
  W1_VALIDATED,
  W1_VMSA,
} from './layout.js';

/** The GFN's state tag [38:36] sits in w1 bits 18:16 (w1 holds GFN bits 20-38); below it, w1 bits 15:0. */
const W1_TAG_SHIFT = GPA_STATE_SHIFT - GFN_LO_BITS;
const W1_BELOW_TAG_MASK = (1 << W1_TAG_SHIFT) - 1;

export const PageState = Object.freeze({
  INVALID: 'Invalid',
  DEFAULT: 'Default',
  HYPERVISOR: 'Hypervisor',
  HV_FIXED: 'HV-Fixed',
  FIRMWARE: 'Firmware',
  FIRMWARE_IOMMU: 'Firmware-IOMMU',
  RECLAIM: 'Reclaim',
  CONTEXT: 'Context',
  METADATA: 'Metadata',
  PRE_GUEST: 'Pre-Guest',
  PRE_SWAP: 'Pre-Swap',
  GUEST_INVALID: 'Guest-Invalid',
  GUEST_VALID: 'Guest-Valid',
} as const);
export type PageState = (typeof PageState)[keyof typeof PageState];

/** Every state, in the firmware's enum order (`snp_page_state_t`). */
export const PAGE_STATES: readonly PageState[] = Object.freeze(Object.values(PageState));

/**
 * The page state of the entry whose first two raw words are `w0`, `w1`.
 * The GPA field's bits [38:36] are the firmware's state tag (CSF-983): Metadata needs tag 1 and a
 * non-zero GFN below the tag; Firmware-IOMMU needs tag 2, GFN 1 and VMSA 0 ([FW] sev_rmp.h
 * RMP_GPA_STATE_*).
 */
export function pageStateOfWords(w0: number, w1: number): PageState {
  const assigned = (w0 & W0_ASSIGNED) !== 0;
  const immutable = (w0 & W0_IMMUTABLE) !== 0;
  const validated = (w1 & W1_VALIDATED) !== 0;
  const asid = (w1 >>> W1_ASID_SHIFT) & ASID_MASK;
  const vmsa = (w1 & W1_VMSA) !== 0;
  const lock = (w1 & W1_LOCK) !== 0;
  // GFN = w0[31:12] | w1[18:0] << 20. Bits [38:36] of the GFN are w1 bits 16-18.
  const gfnIsZero = w0 >>> W0_GFN_SHIFT === 0 && (w1 & W1_GFN_HI_MASK) === 0;
  const tag = (w1 >>> W1_TAG_SHIFT) & 0x7;
  const gfnBelowTagLo = w0 >>> W0_GFN_SHIFT;
  const gfnBelowTagHi = w1 & W1_BELOW_TAG_MASK; // GFN bits 20-35
  const gfnBelowTagIsZero = gfnBelowTagLo === 0 && gfnBelowTagHi === 0;
  const gfnBelowTagIsOne = gfnBelowTagLo === 1 && gfnBelowTagHi === 0;

  if (!assigned && !validated && asid === 0 && !immutable) return PageState.HYPERVISOR;
  if (!assigned && !validated && asid === 0 && immutable) return PageState.HV_FIXED;
  if (assigned && !validated && asid === 0 && immutable && gfnIsZero && !vmsa) return PageState.FIRMWARE;
  if (assigned && !validated && asid === 0 && !immutable && !lock) return PageState.RECLAIM;
  if (assigned && !validated && asid === 0 && immutable && gfnIsZero && vmsa) return PageState.CONTEXT;
  if (assigned && !validated && asid === 0 && immutable && !gfnBelowTagIsZero && tag === GPA_STATE_METADATA) {
    return PageState.METADATA;
  }
  if (assigned && !validated && asid > 0 && immutable) return PageState.PRE_GUEST;
  if (assigned && validated && asid > 0 && immutable) return PageState.PRE_SWAP;
  if (assigned && !validated && asid > 0 && !immutable) return PageState.GUEST_INVALID;
  if (assigned && validated && asid > 0 && !immutable) return PageState.GUEST_VALID;
  if (
    assigned &&
    !validated &&
    asid === 0 &&
    immutable &&
    gfnBelowTagIsOne &&
    tag === GPA_STATE_FW_IOMMU &&
    !vmsa
  ) {
    return PageState.FIRMWARE_IOMMU;
  }
  return PageState.INVALID;
}
