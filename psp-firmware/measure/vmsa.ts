/**
 * The initial VMSA page a VMM hands to SNP_LAUNCH_UPDATE (page type VMSA), byte-exact with what
 * QEMU/KVM, AWS EC2, Google GCE and COCONUT-SVSM's QEMU set up at reset, as reproduced by
 * virtee/sev-snp-measure `vmsa.py` (commit 8f2b337e) and `shared/vectors/measure-small.md` V1–V10.
 * Offsets are `VmsaOffset` (Linux `struct sev_es_save_area`, `../vmsa-layout.ts`); every byte not
 * listed stays zero.
 */
import { EFER_SVME, SevFeature, VMSA_SIZE, VmcbSeg, VmsaOffset } from '../vmsa-layout.js';

/** Reset EIP of the BSP: the x86 reset vector [APM vol 2 §14.1.5]. */
export const BSP_EIP = 0xfffffff0;

/** The VMMs whose reset state is modelled, spelt as sev-snp-measure's `--vmm-type` spells them. */
export const VmmType = Object.freeze({ QEMU: 'QEMU', EC2: 'ec2', GCE: 'gce' } as const);
export type VmmType = (typeof VmmType)[keyof typeof VmmType];

/** Per-VMM differences of the reset state, as data (measure-small.md "Variants"). */
interface VmmFlavour {
  /** CS attributes for the BSP (eip = BSP_EIP) and for APs. */
  readonly csAttribBsp: number;
  readonly csAttribAp: number;
  readonly ssAttrib: number;
  readonly trAttrib: number;
  readonly gPat: bigint;
  /** Initial RDX: the vCPU signature (CPUID Fn0000_0001_EAX) or a fixed value. */
  readonly rdx: 'vcpu-signature' | number;
  readonly mxcsr: number;
  readonly x87Fcw: number;
}

/** PAT reset value 0x0007040600070406 [APM vol 2 §A.3]. */
const PAT_RESET = 0x0007040600070406n;

const FLAVOURS: Readonly<Record<VmmType, VmmFlavour>> = Object.freeze({
  // QEMU/KVM: KVM sets EFER.SVME, CR4.MCE; QEMU's x86 reset state for the rest.
  QEMU: {
    csAttribBsp: 0x9b,
    csAttribAp: 0x9b,
    ssAttrib: 0x93,
    trAttrib: 0x8b,
    gPat: PAT_RESET,
    rdx: 'vcpu-signature',
    mxcsr: 0x1f80,
    x87Fcw: 0x37f,
  },
  // EC2: code segment not yet accessed on the BSP, SS/TR types 2/3; RDX 0x600 (sev-snp-measure 4a02bf0).
  ec2: {
    csAttribBsp: 0x9a,
    csAttribAp: 0x9b,
    ssAttrib: 0x92,
    trAttrib: 0x83,
    gPat: PAT_RESET,
    rdx: 0x600,
    mxcsr: 0,
    x87Fcw: 0,
  },
  // GCE: its hypervisor programs G_PAT 0x00070106.
  gce: {
    csAttribBsp: 0x9b,
    csAttribAp: 0x9b,
    ssAttrib: 0x93,
    trAttrib: 0x8b,
    gPat: 0x00070106n,
    rdx: 0x600,
    mxcsr: 0,
    x87Fcw: 0,
  },
});

/** EC2 RDX before sev-snp-measure commit 4a02bf0 (2026-04-28), still used by the Go and Rust ports. */
export const EC2_LEGACY_RDX = 0;

export interface VmsaParams {
  /** Reset EIP of this vCPU: BSP_EIP for vCPU 0, the OVMF SEV-ES reset block's EIP for APs. */
  readonly eip: number;
  /** CPUID Fn0000_0001_EAX of the guest vCPU model; only QEMU puts it in RDX. */
  readonly vcpuSignature: number;
  /** SEV_FEATURES (VMSA 0x3B0): 0x1 SNPActive, 0x21 SNPActive + DebugSwap ... */
  readonly sevFeatures: bigint;
  readonly vmmType: VmmType;
  /** EC2 only: RDX 0 as sev-snp-measure did before 2026-04-28 (and its Go/Rust ports still do). */
  readonly ec2LegacyRdx?: boolean;
}

function checkU32(name: string, value: number): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new RangeError(`${name} must be a u32, got ${value}`);
  }
}

function checkU64(name: string, value: bigint): void {
  if (value < 0n || value > 0xffffffffffffffffn) throw new RangeError(`${name} must be a u64, got ${value}`);
}

function writeSeg(
  page: Buffer,
  at: number,
  selector: number,
  attrib: number,
  limit: number,
  base: number,
): void {
  page.writeUInt16LE(selector, at + VmcbSeg.SELECTOR);
  page.writeUInt16LE(attrib, at + VmcbSeg.ATTRIB);
  page.writeUInt32LE(limit, at + VmcbSeg.LIMIT);
  page.writeUInt32LE(base, at + VmcbSeg.BASE); // bases here are < 2^32; the high dword stays 0
}

/** Writes the fields QEMU, EC2 and GCE share and that no flavour varies. */
function writeCommon(page: Buffer): void {
  const o = VmsaOffset;
  page.writeBigUInt64LE(EFER_SVME, o.EFER); // KVM sets EFER.SVME
  page.writeBigUInt64LE(0x40n, o.CR4); // CR4.MCE (KVM)
  page.writeBigUInt64LE(0x400n, o.DR7);
  page.writeBigUInt64LE(0xffff0ff0n, o.DR6);
  page.writeBigUInt64LE(0x2n, o.RFLAGS);
  page.writeBigUInt64LE(0x1n, o.XCR0); // x87 only
}

/**
 * The 4 KiB launch VMSA of one vCPU for QEMU/KVM, EC2 or GCE. Throws RangeError on out-of-range
 * arguments (a programming error: callers validate user input first).
 */
export function buildVmsa(params: VmsaParams): Buffer {
  const { eip, vcpuSignature, sevFeatures, vmmType } = params;
  checkU32('eip', eip);
  checkU32('vcpuSignature', vcpuSignature);
  checkU64('sevFeatures', sevFeatures);
  const f = FLAVOURS[vmmType];
  if (f === undefined) throw new RangeError(`unknown VMM type '${String(vmmType)}'`);
  const o = VmsaOffset;
  const page = Buffer.alloc(VMSA_SIZE);
  writeSeg(page, o.ES, 0, 0x93, 0xffff, 0);
  writeSeg(
    page,
    o.CS,
    0xf000,
    eip === BSP_EIP ? f.csAttribBsp : f.csAttribAp,
    0xffff,
    (eip & 0xffff0000) >>> 0,
  );
  writeSeg(page, o.SS, 0, f.ssAttrib, 0xffff, 0);
  writeSeg(page, o.DS, 0, 0x93, 0xffff, 0);
  writeSeg(page, o.FS, 0, 0x93, 0xffff, 0);
  writeSeg(page, o.GS, 0, 0x93, 0xffff, 0);
  writeSeg(page, o.GDTR, 0, 0, 0xffff, 0);
  writeSeg(page, o.LDTR, 0, 0x82, 0xffff, 0);
  writeSeg(page, o.IDTR, 0, 0, 0xffff, 0);
  writeSeg(page, o.TR, 0, f.trAttrib, 0xffff, 0);
  writeCommon(page);
  page.writeBigUInt64LE(0x10n, o.CR0); // CR0.ET
  page.writeBigUInt64LE(BigInt(eip & 0xffff), o.RIP);
  page.writeBigUInt64LE(f.gPat, o.G_PAT);
  const rdx =
    f.rdx === 'vcpu-signature'
      ? vcpuSignature
      : vmmType === VmmType.EC2 && params.ec2LegacyRdx
        ? EC2_LEGACY_RDX
        : f.rdx;
  page.writeBigUInt64LE(BigInt(rdx), o.RDX);
  page.writeBigUInt64LE(sevFeatures, o.SEV_FEATURES);
  page.writeUInt32LE(f.mxcsr, o.MXCSR);
  page.writeUInt16LE(f.x87Fcw, o.X87_FCW);
  return page;
}

/**
 * The launch VMSA COCONUT-SVSM's QEMU gives every vCPU (sev-snp-measure `VMSA_SVSM`): flat 32-bit
 * protected mode at `eip`, SEV_FEATURES forced to 0x1 whatever the guest features, MXCSR 0x1F80 and
 * x87 FCW 0 (upstream passes FCW under a wrong field name, so it is never set: measure-small.md).
 */
export function buildSvsmVmsa(params: { readonly eip: number; readonly vcpuSignature: number }): Buffer {
  checkU32('eip', params.eip);
  checkU32('vcpuSignature', params.vcpuSignature);
  const o = VmsaOffset;
  const page = Buffer.alloc(VMSA_SIZE);
  for (const seg of [o.ES, o.SS, o.DS, o.FS]) writeSeg(page, seg, 16, 0xc93, 0xffffffff, 0);
  writeSeg(page, o.CS, 8, 0xc9b, 0xffffffff, 0);
  writeSeg(page, o.GS, 0, 0x93, 0xffff, 0);
  writeSeg(page, o.GDTR, 0, 0, 0xffff, 0);
  writeSeg(page, o.LDTR, 0, 0x82, 0xffff, 0);
  writeSeg(page, o.IDTR, 0, 0, 0xffff, 0);
  writeSeg(page, o.TR, 0, 0x8b, 0xffff, 0);
  writeCommon(page);
  page.writeBigUInt64LE(0x11n, o.CR0); // CR0.PE | CR0.ET
  page.writeBigUInt64LE(BigInt(params.eip), o.RIP);
  page.writeBigUInt64LE(PAT_RESET, o.G_PAT);
  page.writeBigUInt64LE(BigInt(params.vcpuSignature), o.RDX);
  page.writeBigUInt64LE(SevFeature.SNP_ACTIVE, o.SEV_FEATURES); // SNPActive only (VMSA_SVSM ignores guest features)
  page.writeUInt32LE(0x1f80, o.MXCSR);
  return page;
}
