/**
 * VMRUN's checks of the VMSA page (and optionally the VMCB page) for SEV-ES/SNP guests
 * ([APM 15.35.8, 15.36.12 Table 15-41]; `firmware-rmp.md` §C), the in-use marking a successful VMRUN
 * makes and #VMEXIT releases.
 */
import { entryGfn } from '../rmp/entry.js';
import {
  ASID_MASK,
  PAGE_SIZE,
  PAGE_SIZE_2M,
  W0_ASSIGNED,
  W0_IMMUTABLE,
  W1_ASID_SHIFT,
  W1_VALIDATED,
  W1_VMSA,
} from '../rmp/layout.js';
import { EFER_SVME, SEV_FEATURES_INT_INJ_MODES, SevFeature, VmsaOffset } from '../vmsa-layout.js';
import { hostAccessCheck } from './access.js';
import {
  AccessKind,
  ALLOWED_SEV_FEATURES_ENABLE,
  MappingSize,
  SEV_FEATURES_OPT_IN,
  VmexitCode,
} from './codes.js';
import { gfnModulusOf } from './host-instructions.js';
import type { Machine } from './machine.js';

/** Why a VMRUN failed: stable codes for reports. */
export const VmrunFailure = Object.freeze({
  VMCB_NOT_HYPERVISOR_OWNED: 'VMCB_NOT_HYPERVISOR_OWNED',
  VMSA_ADDRESS_INVALID: 'VMSA_ADDRESS_INVALID',
  SNP_NOT_ENABLED: 'SNP_NOT_ENABLED',
  EFER_SVME_CLEAR: 'EFER_SVME_CLEAR',
  INJECTION_MODES_BOTH: 'INJECTION_MODES_BOTH',
  ALTERNATE_INJECTION_WITH_AVIC: 'ALTERNATE_INJECTION_WITH_AVIC',
  SEV_FEATURES_NOT_ALLOWED: 'SEV_FEATURES_NOT_ALLOWED',
  SEV_FEATURES_OPT_IN_NOT_ENABLED: 'SEV_FEATURES_OPT_IN_NOT_ENABLED',
  VMSA_NOT_HYPERVISOR_OWNED: 'VMSA_NOT_HYPERVISOR_OWNED',
  VMSA_NOT_RMP_COVERED: 'VMSA_NOT_RMP_COVERED',
  VMSA_NOT_GUEST_OWNED: 'VMSA_NOT_GUEST_OWNED',
  VMSA_REVERSE_MAP: 'VMSA_REVERSE_MAP',
  VMSA_IMMUTABLE: 'VMSA_IMMUTABLE',
  VMSA_BIT_CLEAR: 'VMSA_BIT_CLEAR',
  VMSA_NOT_VALIDATED: 'VMSA_NOT_VALIDATED',
  VMSA_IN_USE: 'VMSA_IN_USE',
  VMSA_2M_ALIGNED_ERRATUM: 'VMSA_2M_ALIGNED_ERRATUM',
} as const);
export type VmrunFailure = (typeof VmrunFailure)[keyof typeof VmrunFailure];

export interface VmrunRequest {
  /** The physical CPU (vCPU slot) executing VMRUN; in-use marks belong to it until `vmexit(cpu)`. */
  readonly cpu: number;
  /** Guest ASID (VMCB). */
  readonly asid: number;
  /** VMCB 0x108: host physical address of the VMSA. */
  readonly vmsaPa: number;
  /**
   * GPA the VMSA is expected at, the Reverse-Map target for an SNP-active VMSA (§H7 choice: the
   * caller passes it, e.g. KVM's INITIAL_VMSA_GPA 0xFFFFFFFFF000 or the AP Creation GPA). Required
   * when profile.vmrunReverseMapCheck is true and the VMSA is SNP-active.
   */
  readonly vmsaGpa?: number;
  /**
   * VMCB 0x138 ALLOWED_SEV_FEATURES (bit 63 enables the mask). Default 0 (disabled). Honoured only
   * when profile.allowedSevFeatures (the CPU has the feature); otherwise the field is ignored.
   */
  readonly allowedSevFeatures?: bigint;
  /** VMCB AVIC enable. Default false. */
  readonly avicEnabled?: boolean;
  /** VMCB page sPA: when given it must be Hypervisor-Owned, else #GP(0). */
  readonly vmcbPa?: number;
}

export type VmrunResult =
  | { readonly kind: 'entered'; readonly sevFeatures: bigint; readonly snpActive: boolean }
  | {
      readonly kind: 'vmexit';
      readonly exitCode: number;
      readonly reason: VmrunFailure;
      readonly detail: string;
    }
  | { readonly kind: 'gp'; readonly errorCode: 0; readonly reason: VmrunFailure; readonly detail: string };

function invalid(reason: VmrunFailure, detail: string): VmrunResult {
  return { kind: 'vmexit', exitCode: VmexitCode.INVALID, reason, detail };
}

const hex = (n: number | bigint) => `0x${n.toString(16)}`;

/**
 * VMRUN of an SEV-ES/SNP guest whose VMSA is at `req.vmsaPa`. Order [DER where the APM gives none]:
 * VMCB Hypervisor-Owned (#GP); VMSA address valid; SEV_FEATURES and EFER read from the VMSA;
 * SNP-active while SNP is disabled; EFER.SVME; RestrictedInjection + AlternateInjection;
 * AlternateInjection with AVIC; ALLOWED_SEV_FEATURES (profile); then the page checks: not SNP-active →
 * Hypervisor-Owned; SNP-active → RMP-Covered, Guest-Owned (ASID), Reverse-Map (profile), Mutable,
 * VMSA = 1, Validated (profile); in use by another CPU (profile); 2 MB-aligned erratum (profile).
 * Success marks the VMSA page in use by `req.cpu`. Failures are VMEXIT_INVALID (-1).
 */
export function vmrun(m: Machine, req: VmrunRequest, snpEnabled: boolean): VmrunResult {
  const { rmp, memory, profile } = m;
  if (req.vmcbPa !== undefined) {
    if (
      !Number.isInteger(req.vmcbPa) ||
      req.vmcbPa < 0 ||
      req.vmcbPa % PAGE_SIZE !== 0 ||
      hostAccessCheck(rmp, req.vmcbPa, AccessKind.WRITE, MappingSize.SIZE_4K) !== 0
    ) {
      return {
        kind: 'gp',
        errorCode: 0,
        reason: VmrunFailure.VMCB_NOT_HYPERVISOR_OWNED,
        detail: `VMCB ${String(req.vmcbPa)} is not a Hypervisor-Owned page`,
      };
    }
  }
  const pa = req.vmsaPa;
  if (!Number.isInteger(pa) || pa < 0 || pa % PAGE_SIZE !== 0 || pa + PAGE_SIZE > memory.memoryBytes) {
    return invalid(
      VmrunFailure.VMSA_ADDRESS_INVALID,
      `VMSA pointer ${String(pa)} is not a valid page-aligned PA`,
    );
  }
  const sevFeatures = memory.readU64(pa + VmsaOffset.SEV_FEATURES);
  const efer = memory.readU64(pa + VmsaOffset.EFER);
  const snpActive = (sevFeatures & SevFeature.SNP_ACTIVE) !== 0n;
  if (snpActive && !snpEnabled)
    return invalid(VmrunFailure.SNP_NOT_ENABLED, 'SNP-active VMSA while SYSCFG.SNP_EN = 0');
  if ((efer & EFER_SVME) === 0n)
    return invalid(VmrunFailure.EFER_SVME_CLEAR, `VMSA EFER ${hex(efer)} has SVME clear`);
  if ((sevFeatures & SEV_FEATURES_INT_INJ_MODES) === SEV_FEATURES_INT_INJ_MODES) {
    return invalid(VmrunFailure.INJECTION_MODES_BOTH, 'RestrictedInjection and AlternateInjection both set');
  }
  if ((sevFeatures & SevFeature.ALTERNATE_INJECTION) !== 0n && req.avicEnabled === true) {
    return invalid(VmrunFailure.ALTERNATE_INJECTION_WITH_AVIC, 'AlternateInjection with VMCB AVIC enabled');
  }
  if (profile.allowedSevFeatures) {
    const allowed = req.allowedSevFeatures ?? 0n;
    if ((allowed & ALLOWED_SEV_FEATURES_ENABLE) !== 0n) {
      const extra = sevFeatures & ~allowed & (ALLOWED_SEV_FEATURES_ENABLE - 1n);
      if (extra !== 0n) {
        return invalid(
          VmrunFailure.SEV_FEATURES_NOT_ALLOWED,
          `SEV_FEATURES bits ${hex(extra)} not in ALLOWED_SEV_FEATURES ${hex(allowed)}`,
        );
      }
    } else if ((sevFeatures & SEV_FEATURES_OPT_IN) !== 0n) {
      return invalid(
        VmrunFailure.SEV_FEATURES_OPT_IN_NOT_ENABLED,
        `SEV_FEATURES bits ${hex(sevFeatures & SEV_FEATURES_OPT_IN)} (PmcVirtualization/SecureAvic) need an enabled ALLOWED_SEV_FEATURES mask`,
      );
    }
  }

  const pfn = pa / PAGE_SIZE;
  if (!snpActive) {
    if (hostAccessCheck(rmp, pa, AccessKind.WRITE, MappingSize.SIZE_4K) !== 0) {
      return invalid(
        VmrunFailure.VMSA_NOT_HYPERVISOR_OWNED,
        `VMSA ${hex(pa)} of a non-SNP guest is not Hypervisor-Owned`,
      );
    }
  } else {
    if (!rmp.isCovered(pfn))
      return invalid(VmrunFailure.VMSA_NOT_RMP_COVERED, `VMSA ${hex(pa)} is not RMP-covered`);
    const at = rmp.authoritativePfn(pfn);
    const w0 = rmp.word(at, 0);
    const w1 = rmp.word(at, 1);
    const asid = (w1 >>> W1_ASID_SHIFT) & ASID_MASK;
    if ((w0 & W0_ASSIGNED) === 0 || asid !== req.asid) {
      return invalid(
        VmrunFailure.VMSA_NOT_GUEST_OWNED,
        `VMSA ${hex(pa)} is not owned by ASID ${req.asid} (assigned ${w0 & W0_ASSIGNED}, ASID ${asid})`,
      );
    }
    if (profile.vmrunReverseMapCheck) {
      if (req.vmsaGpa === undefined || !Number.isInteger(req.vmsaGpa) || req.vmsaGpa < 0) {
        throw new TypeError('vmrun: vmsaGpa (a non-negative integer) is required for the Reverse-Map check');
      }
      const gfn = Math.floor(req.vmsaGpa / PAGE_SIZE) % gfnModulusOf(profile.physAddrBits);
      const stored = entryGfn(w0, w1) + (pfn - at); // a 2 MB page maps GPA + offset
      if (stored !== gfn) {
        return invalid(
          VmrunFailure.VMSA_REVERSE_MAP,
          `VMSA ${hex(pa)} RMP GPA ${hex(stored * PAGE_SIZE)} != expected ${hex(req.vmsaGpa)}`,
        );
      }
    }
    if (w0 & W0_IMMUTABLE) return invalid(VmrunFailure.VMSA_IMMUTABLE, `VMSA ${hex(pa)} is immutable`);
    if ((w1 & W1_VMSA) === 0) return invalid(VmrunFailure.VMSA_BIT_CLEAR, `VMSA ${hex(pa)} has RMP.VMSA = 0`);
    if (profile.vmrunRequiresValidated && (w1 & W1_VALIDATED) === 0) {
      return invalid(VmrunFailure.VMSA_NOT_VALIDATED, `VMSA ${hex(pa)} is not validated`);
    }
  }
  const owner = m.inUse.otherUser(pfn, req.cpu);
  if (owner !== undefined && profile.vmrunInUseVmsa === 'vmexit-invalid') {
    return invalid(VmrunFailure.VMSA_IN_USE, `VMSA ${hex(pa)} is in use by CPU ${owner}`);
  }
  if (profile.vmsa2MAlignedErratum && pa % PAGE_SIZE_2M === 0) {
    return invalid(VmrunFailure.VMSA_2M_ALIGNED_ERRATUM, `VMSA ${hex(pa)} is 2 MB aligned (SNP erratum)`);
  }
  m.inUse.mark(pfn, req.cpu);
  return { kind: 'entered', sevFeatures, snpActive };
}

/** #VMEXIT of `cpu`: releases the pages its VMRUN marked in use. Returns their pfns. */
export function vmexit(m: Machine, cpu: number): number[] {
  return m.inUse.releaseCpu(cpu);
}
