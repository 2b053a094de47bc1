/**
 * The expected launch digest of a whole guest, as the VMM issues SNP_LAUNCH_UPDATE for it
 * (firmware-rmp.md §E.3; virtee/sev-snp-measure `guest.py`, commit 8f2b337e):
 *
 *  1. the OVMF image as NORMAL pages ending at 4 GiB (the digest after this is the "OVMF hash",
 *     which may be given instead as a seed);
 *  2. the SEV metadata sections in table order: SNP_SEC_MEM → ZERO (GCE: UNMEASURED), SNP_SECRETS →
 *     one SECRETS page, CPUID → one CPUID page (EC2: all CPUID pages after every other section),
 *     SVSM_CAA → ZERO, SNP_KERNEL_HASHES → the NORMAL page holding the SEV hashes table when a
 *     kernel is given, else ZERO;
 *  3. one VMSA page per vCPU at VMSA_GPA: the BSP at the reset vector, APs at OVMF's AP reset EIP.
 *
 * The SVSM flavour (`--mode snp:svsm`) measures OVMF, then the SVSM image just below OVMF's vars,
 * the SVSM's own metadata sections, and the SVSM VMSA for every vCPU.
 */

import { PAGE_SIZE } from '../rmp/layout.js';
import { SevFeature } from '../vmsa-layout.js';
import {
  FOUR_GIB,
  type OvmfImage,
  SEV_ES_RESET_BLOCK_GUID,
  SEV_HASH_TABLE_RV_GUID,
  SevMetadataSectionType,
  SVSM_INFO_GUID,
  sectionTypeName,
} from './ovmf.js';
import { LaunchDigest, LD_SIZE, type MeasureStep, SnpPageType, VMSA_GPA } from './page-info.js';
import { fail, hex, type MeasureError, MeasureErrorCode, type MeasureResult, ok } from './result.js';
import { buildSevHashesPage, buildSevHashesTable, type SevHashes } from './sev-hashes.js';
import { BSP_EIP, buildSvsmVmsa, buildVmsa, VmmType } from './vmsa.js';

/** KVM_MAX_VCPUS with CONFIG_MAXSMP [LX arch/x86/include/asm/kvm_host.h]. */
export const MAX_VCPUS = 4096;

export interface SnpLaunchParams {
  readonly ovmf: OvmfImage;
  readonly vcpus: number;
  /** CPUID Fn0000_0001_EAX of the vCPU model (QEMU only; EC2 and GCE put a fixed RDX). */
  readonly vcpuSignature: number;
  /** VMSA SEV_FEATURES (sev-snp-measure `--guest-features`). */
  readonly guestFeatures: bigint;
  readonly vmmType: VmmType;
  /** SHA-256 digests of kernel, initrd and command line, when the guest is started with -kernel. */
  readonly sevHashes?: SevHashes;
  /** A precomputed OVMF hash: the OVMF pages are then not measured again (`--snp-ovmf-hash`). */
  readonly ovmfHash?: Uint8Array;
  /** EC2 RDX 0 instead of 0x600 (sev-snp-measure before 2026-04-28). */
  readonly ec2LegacyRdx?: boolean;
  /** Record every PAGE_INFO step (large for a real OVMF: one step per 4 KiB). */
  readonly trace?: boolean;
  /** Receives each vCPU's VMSA page as it is measured (`--dump-vmsa`). */
  readonly onVmsa?: (vcpu: number, page: Buffer) => void;
}

export interface SvsmLaunchParams {
  readonly ovmf: OvmfImage;
  readonly svsm: OvmfImage;
  /** Size of the OVMF_VARS area between the SVSM image and OVMF (`--vars-size`). */
  readonly varsSize: number;
  readonly vcpus: number;
  readonly vcpuSignature: number;
  readonly trace?: boolean;
  readonly onVmsa?: (vcpu: number, page: Buffer) => void;
}

/** One region measured with a single page type. */
export interface MeasuredRegion {
  /** `OVMF`, `SVSM`, a metadata section type name, or `VMSA`. */
  readonly name: string;
  readonly pageType: SnpPageType;
  readonly gpa: number;
  /** Bytes the region covers in guest memory. */
  readonly size: number;
  /** PAGE_INFO steps taken for it. */
  readonly pages: number;
  /** VMSA regions: the vCPU and its reset EIP. */
  readonly vcpu?: number;
  readonly eip?: number;
}

export interface LaunchMeasurement {
  /** The 48-byte launch digest (attestation report MEASUREMENT). */
  readonly digest: Buffer;
  /** The digest after the OVMF pages: the seed when one was given. */
  readonly ovmfHash: Buffer;
  readonly ovmfGpa: number;
  /** EIP the APs start at (SNP: OVMF's SEV-ES reset block; SVSM: the SVSM entry point). */
  readonly apResetEip: number;
  readonly regions: readonly MeasuredRegion[];
  /** PAGE_INFO steps taken here (OVMF pages covered by a seed are not counted). */
  readonly pagesMeasured: number;
  readonly trace: readonly MeasureStep[] | undefined;
}

function invalid<T>(message: string): MeasureResult<T> {
  return fail(MeasureErrorCode.INVALID_PARAMETER, message);
}

function checkVcpus(vcpus: number, vcpuSignature: number): MeasureResult<void> {
  if (!Number.isInteger(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) {
    return invalid(`vCPU count ${vcpus} is outside 1..${MAX_VCPUS}`);
  }
  if (!Number.isInteger(vcpuSignature) || vcpuSignature < 0 || vcpuSignature > 0xffffffff) {
    return invalid(`vCPU signature ${vcpuSignature} is not a u32`);
  }
  return ok(undefined);
}

/** A LaunchDigest plus the region list and optional trace of one guest measurement. */
class GuestMeasurer {
  readonly trace: MeasureStep[] | undefined;
  readonly ld: LaunchDigest;
  readonly regions: MeasuredRegion[] = [];

  constructor(trace: boolean | undefined) {
    const steps: MeasureStep[] | undefined = trace === true ? [] : undefined;
    this.trace = steps;
    this.ld = new LaunchDigest(steps === undefined ? {} : { onStep: (s) => steps.push(s) });
  }

  /** Measures one region; a refusal here means the caller's checks missed something. */
  region(region: Omit<MeasuredRegion, 'pages'>, contents: Uint8Array | null): MeasureError | undefined {
    const bad = this.ld.updatePages(region.pageType, contents, region.gpa, region.size);
    if (bad !== undefined) return bad;
    this.regions.push(Object.freeze({ ...region, pages: region.size / PAGE_SIZE }));
    return undefined;
  }

  vmsa(vcpu: number, eip: number, page: Buffer): MeasureError | undefined {
    return this.region(
      { name: 'VMSA', pageType: SnpPageType.VMSA, gpa: VMSA_GPA, size: PAGE_SIZE, vcpu, eip },
      page,
    );
  }

  finish(ovmfHash: Buffer, ovmfGpa: number, apResetEip: number): LaunchMeasurement {
    return Object.freeze({
      digest: this.ld.digest(),
      ovmfHash,
      ovmfGpa,
      apResetEip,
      regions: this.regions,
      pagesMeasured: this.ld.steps,
      trace: this.trace,
    });
  }
}

/** Step 2: the metadata sections of `image`, in the order and with the page types of `vmmType`. */
function measureSections(
  m: GuestMeasurer,
  image: OvmfImage,
  vmmType: VmmType,
  hashesPage: Buffer | undefined,
): MeasureError | undefined {
  const T = SevMetadataSectionType;
  const deferCpuid = vmmType === VmmType.EC2;
  for (const s of image.sevMetadata ?? []) {
    const name = sectionTypeName(s.type);
    let bad: MeasureError | undefined;
    switch (s.type) {
      case T.SNP_SEC_MEM:
        bad = m.region(
          {
            name,
            pageType: vmmType === VmmType.GCE ? SnpPageType.UNMEASURED : SnpPageType.ZERO,
            gpa: s.gpa,
            size: s.size,
          },
          null,
        );
        break;
      case T.SNP_SECRETS:
        bad = m.region({ name, pageType: SnpPageType.SECRETS, gpa: s.gpa, size: PAGE_SIZE }, null);
        break;
      case T.CPUID:
        if (!deferCpuid)
          bad = m.region({ name, pageType: SnpPageType.CPUID, gpa: s.gpa, size: PAGE_SIZE }, null);
        break;
      case T.SVSM_CAA:
        bad = m.region({ name, pageType: SnpPageType.ZERO, gpa: s.gpa, size: s.size }, null);
        break;
      case T.SNP_KERNEL_HASHES:
        bad =
          hashesPage === undefined
            ? m.region({ name, pageType: SnpPageType.ZERO, gpa: s.gpa, size: s.size }, null)
            : m.region({ name, pageType: SnpPageType.NORMAL, gpa: s.gpa, size: PAGE_SIZE }, hashesPage);
        break;
    }
    if (bad !== undefined) return bad;
  }
  if (deferCpuid) {
    for (const s of image.sevMetadata ?? []) {
      if (s.type !== T.CPUID) continue;
      const bad = m.region(
        { name: sectionTypeName(s.type), pageType: SnpPageType.CPUID, gpa: s.gpa, size: PAGE_SIZE },
        null,
      );
      if (bad !== undefined) return bad;
    }
  }
  return undefined;
}

/** The page holding the SEV hashes table, checked against the image's kernel-hashes section. */
function kernelHashesPage(ovmf: OvmfImage, hashes: SevHashes): MeasureResult<Buffer> {
  const section = ovmf.sevMetadata?.find((s) => s.type === SevMetadataSectionType.SNP_KERNEL_HASHES);
  if (section === undefined) {
    return fail(
      MeasureErrorCode.NO_KERNEL_HASHES_SECTION,
      `${ovmf.name} has no kernel-hashes section (no SNP_KERNEL_HASHES, type 0x10, in its SEV metadata); ` +
        'build OVMF from AmdSevX64.dsc or drop --kernel',
    );
  }
  if (section.size !== PAGE_SIZE) {
    return fail(
      MeasureErrorCode.INVALID_IMAGE,
      `${ovmf.name}: SNP_KERNEL_HASHES section is ${hex(section.size)} bytes, not one 4 KiB page`,
    );
  }
  if (ovmf.sevHashesTable === undefined) {
    return fail(
      MeasureErrorCode.MISSING_IMAGE_ENTRY,
      `${ovmf.name} has a kernel-hashes section but no SEV hashes table entry (GUID ${SEV_HASH_TABLE_RV_GUID}) saying where QEMU puts the table`,
    );
  }
  return buildSevHashesPage(buildSevHashesTable(hashes), ovmf.sevHashesTable.gpa & (PAGE_SIZE - 1));
}

/** The digest after measuring only the OVMF image (sev-snp-measure `--mode snp:ovmf-hash`). */
export function snpOvmfHash(ovmf: OvmfImage): Buffer {
  const ld = new LaunchDigest();
  const bad = ld.updatePages(SnpPageType.NORMAL, ovmf.bytes, FOUR_GIB - ovmf.bytes.length, ovmf.bytes.length);
  if (bad !== undefined) throw new Error(`parsed OVMF image refused: ${bad.message}`); // parseOvmf checked the size
  return ld.digest();
}

/** The launch digest of a QEMU/KVM, EC2 or GCE guest booting `ovmf` (sev-snp-measure `--mode snp`). */
export function snpLaunchDigest(p: SnpLaunchParams): MeasureResult<LaunchMeasurement> {
  const vc = checkVcpus(p.vcpus, p.vcpuSignature);
  if (!vc.ok) return vc;
  if (p.guestFeatures < 0n || p.guestFeatures > 0xffffffffffffffffn)
    return invalid(`guest features ${hex(p.guestFeatures)} are not a u64`);
  if ((p.guestFeatures & SevFeature.SNP_ACTIVE) === 0n) {
    return invalid(`guest features ${hex(p.guestFeatures)} lack bit 0 (SNPActive), which every SNP VMSA has`);
  }
  if (!Object.values(VmmType).includes(p.vmmType)) return invalid(`unknown VMM type '${String(p.vmmType)}'`);
  if (p.ovmfHash !== undefined && p.ovmfHash.length !== LD_SIZE) {
    return fail(
      MeasureErrorCode.INVALID_SEED,
      `an OVMF hash is ${LD_SIZE} bytes (96 hex digits), got ${p.ovmfHash.length}`,
    );
  }
  const { ovmf } = p;
  const apEip = ovmf.sevEsResetEip;
  if (apEip === undefined) {
    return fail(
      MeasureErrorCode.MISSING_IMAGE_ENTRY,
      `${ovmf.name} has no SEV-ES reset block (GUID ${SEV_ES_RESET_BLOCK_GUID}): QEMU cannot start an SEV-ES/SNP guest from it`,
    );
  }
  let hashesPage: Buffer | undefined;
  if (p.sevHashes !== undefined) {
    const page = kernelHashesPage(ovmf, p.sevHashes);
    if (!page.ok) return page;
    hashesPage = page.value;
  }

  const m = new GuestMeasurer(p.trace);
  const ovmfGpa = FOUR_GIB - ovmf.bytes.length;
  if (p.ovmfHash !== undefined) {
    m.ld.reset(p.ovmfHash);
  } else {
    const bad = m.region(
      { name: 'OVMF', pageType: SnpPageType.NORMAL, gpa: ovmfGpa, size: ovmf.bytes.length },
      ovmf.bytes,
    );
    if (bad !== undefined) return { ok: false, error: bad };
  }
  const ovmfHash = m.ld.digest();
  const bad = measureSections(m, ovmf, p.vmmType, hashesPage);
  if (bad !== undefined) return { ok: false, error: bad };

  const vmsa = (eip: number) =>
    buildVmsa({
      eip,
      vcpuSignature: p.vcpuSignature,
      sevFeatures: p.guestFeatures,
      vmmType: p.vmmType,
      ec2LegacyRdx: p.ec2LegacyRdx === true,
    });
  const bsp = vmsa(BSP_EIP);
  const ap = p.vcpus > 1 ? vmsa(apEip) : bsp;
  for (let vcpu = 0; vcpu < p.vcpus; vcpu++) {
    const page = vcpu === 0 ? bsp : ap;
    p.onVmsa?.(vcpu, page);
    const err = m.vmsa(vcpu, vcpu === 0 ? BSP_EIP : apEip, page);
    if (err !== undefined) return { ok: false, error: err };
  }
  return ok(m.finish(ovmfHash, ovmfGpa, apEip));
}

/** The launch digest of an OVMF + COCONUT-SVSM guest (sev-snp-measure `--mode snp:svsm`, QEMU only). */
export function svsmLaunchDigest(p: SvsmLaunchParams): MeasureResult<LaunchMeasurement> {
  const vc = checkVcpus(p.vcpus, p.vcpuSignature);
  if (!vc.ok) return vc;
  if (!Number.isSafeInteger(p.varsSize) || p.varsSize < 0 || p.varsSize % PAGE_SIZE !== 0) {
    return invalid(`OVMF vars size ${p.varsSize} is not a non-negative multiple of 4 KiB`);
  }
  const ovmfGpa = FOUR_GIB - p.ovmf.bytes.length;
  const svsmGpa = ovmfGpa - p.varsSize - p.svsm.bytes.length;
  if (svsmGpa < 0) {
    return invalid(
      `OVMF (${hex(p.ovmf.bytes.length)}), vars (${hex(p.varsSize)}) and SVSM (${hex(p.svsm.bytes.length)}) do not fit below 4 GiB`,
    );
  }
  if (p.svsm.svsmInfoOffset === undefined) {
    return fail(
      MeasureErrorCode.MISSING_IMAGE_ENTRY,
      `${p.svsm.name} has no SVSM info entry (GUID ${SVSM_INFO_GUID}) giving its entry point`,
    );
  }
  const eip = svsmGpa + p.svsm.svsmInfoOffset;
  if (eip > 0xffffffff) return invalid(`SVSM entry point ${hex(eip)} is above 4 GiB`);

  const m = new GuestMeasurer(p.trace);
  let bad = m.region(
    { name: 'OVMF', pageType: SnpPageType.NORMAL, gpa: ovmfGpa, size: p.ovmf.bytes.length },
    p.ovmf.bytes,
  );
  const ovmfHash = m.ld.digest();
  bad ??= m.region(
    { name: 'SVSM', pageType: SnpPageType.NORMAL, gpa: svsmGpa, size: p.svsm.bytes.length },
    p.svsm.bytes,
  );
  bad ??= measureSections(m, p.svsm, VmmType.QEMU, undefined);
  if (bad !== undefined) return { ok: false, error: bad };
  const page = buildSvsmVmsa({ eip, vcpuSignature: p.vcpuSignature });
  for (let vcpu = 0; vcpu < p.vcpus; vcpu++) {
    p.onVmsa?.(vcpu, page);
    const err = m.vmsa(vcpu, eip, page);
    if (err !== undefined) return { ok: false, error: err };
  }
  return ok(m.finish(ovmfHash, ovmfGpa, eip));
}
