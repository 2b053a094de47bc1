/**
 * Guest RMP instructions: PVALIDATE, RMPADJUST, RMPQUERY ([APM 15.36.6-7, Table 15-40];
 * `firmware-rmp.md` §B.3; `ap-creation.md` §C.5). They run in a GuestContext and return EAX (plus
 * rFLAGS.CF / query output) or a fault value. The guest-virtual address of RAX is modelled as the GPA
 * (guest page tables are the guest's business, not the RMP's).
 */
import { entryGfn } from '../rmp/entry.js';
import {
  ASID_MASK,
  PAGE_SIZE,
  PAGE_SIZE_2M,
  PAGES_PER_2M,
  VMPL_PERM_RESERVED,
  W0_ASSIGNED,
  W0_IMMUTABLE,
  W0_PAGESIZE,
  W1_ASID_SHIFT,
  W1_VALIDATED,
  W1_VMSA,
} from '../rmp/layout.js';
import { PfErr, RmpStatus, VC_PAGE_NOT_VALIDATED } from './codes.js';
import type { GuestFault, PvalidateResult, RmpadjustResult, RmpqueryResult } from './fault.js';
import type { GuestContext } from './guest-context.js';
import { gfnModulusOf } from './host-instructions.js';
import type { Machine } from './machine.js';

/** RMPADJUST RDX fields. [LX] RMPADJUST_VMSA_PAGE_BIT = BIT(16); coconut-svsm RMPFlags */
export const RMPADJUST_TARGET_VMPL_MASK = 0xffn;
export const RMPADJUST_PERMS_SHIFT = 8n;
export const RMPADJUST_VMSA = 1n << 16n;
/** Every RDX bit RMPADJUST defines: 7:0 target VMPL, 15:8 perms, 16 VMSA. */
const RMPADJUST_DEFINED = 0x1ffffn;

const GUEST_NPF_RMP = PfErr.RMP + PfErr.GUEST_FINAL + PfErr.ENC + PfErr.PRESENT;

function npf(exitInfo1: number): GuestFault {
  return { kind: 'npf', exitInfo1 };
}

/** The authoritative entry of a guest page after the RMP ownership checks, or the fault. */
interface Resolved {
  /** pfn of the authoritative entry (the 2 MB head for a 2 MB page). */
  readonly entryPfn: number;
  readonly pfn: number;
  readonly is2M: boolean;
  readonly w0: number;
  readonly w1: number;
}

/**
 * RMP ownership checks of a guest instruction on `gpa` (translated through the NPT): RMP-Covered,
 * Assigned with the guest's ASID, Reverse-Map, Mutable → #VMEXIT(NPF) with the RMP bit.
 * `write` sets EXITINFO1.W (PVALIDATE and RMPADJUST modify the entry).
 */
function resolve(m: Machine, ctx: GuestContext, gpa: number, write: boolean): Resolved | GuestFault {
  const spa = ctx.translate(gpa);
  const w = write ? PfErr.WRITE : 0;
  if (spa < 0) return npf(PfErr.GUEST_FINAL + w);
  const pfn = Math.floor(spa / PAGE_SIZE);
  const { rmp } = m;
  if (!rmp.isCovered(pfn)) return npf(GUEST_NPF_RMP + w);
  const entryPfn = rmp.authoritativePfn(pfn);
  const w0 = rmp.word(entryPfn, 0);
  const w1 = rmp.word(entryPfn, 1);
  const is2M =
    entryPfn % PAGES_PER_2M === 0 && (w0 & (W0_ASSIGNED | W0_PAGESIZE)) === (W0_ASSIGNED | W0_PAGESIZE);
  const gfn = Math.floor(gpa / PAGE_SIZE) % gfnModulusOf(m.profile.physAddrBits);
  // A 2 MB page maps its GPA + the page's offset in the region.
  const expected = entryGfn(w0, w1) + (pfn - entryPfn);
  if (
    (w0 & W0_ASSIGNED) === 0 ||
    ((w1 >>> W1_ASID_SHIFT) & ASID_MASK) !== ctx.asid ||
    expected !== gfn ||
    (w0 & W0_IMMUTABLE) !== 0
  ) {
    return npf(GUEST_NPF_RMP + w);
  }
  return { entryPfn, pfn, is2M, w0, w1 };
}

function isFault(r: Resolved | GuestFault): r is GuestFault {
  return 'kind' in r;
}

function guestPrologue(ctx: GuestContext, name: string, needCpl0: boolean): GuestFault | undefined {
  if (!ctx.snpActive) return { kind: 'ud', reason: `${name} outside an SNP-active guest` };
  if (needCpl0 && ctx.cpl !== 0) return { kind: 'gp', errorCode: 0, reason: `${name} at CPL ${ctx.cpl}` };
  return undefined;
}

/**
 * PVALIDATE `gpa` with page size `size` (0 4K, 1 2M), `validate` 1 (validate) / 0 (rescind).
 * Order: #UD outside SNP; #GP(0) at CPL != 0; FAIL_INPUT (size/validate not 0/1, address not aligned
 * to the size); VMPL != 0 per profile.pvalidateBelowVmpl0 (§H3); NPF (ownership); size: 4K request on
 * a 2 MB entry → NPF with SIZEM, 2M request on a 4K entry → FAIL_SIZEMISMATCH; already in the requested
 * state → EAX 0 with CF = 1; else the Validated bit is updated (EAX 0, CF 0).
 */
export function pvalidate(
  m: Machine,
  ctx: GuestContext,
  gpa: number,
  size: number,
  validate: number,
): PvalidateResult {
  const pro = guestPrologue(ctx, 'PVALIDATE', true);
  if (pro) return pro;
  if ((size !== 0 && size !== 1) || (validate !== 0 && validate !== 1)) {
    return { kind: 'eax', eax: RmpStatus.FAIL_INPUT, cf: 0 };
  }
  if (!Number.isInteger(gpa) || gpa < 0 || gpa % (size === 1 ? PAGE_SIZE_2M : PAGE_SIZE) !== 0) {
    return { kind: 'eax', eax: RmpStatus.FAIL_INPUT, cf: 0 };
  }
  if (ctx.vmpl !== 0 && m.profile.pvalidateBelowVmpl0 === 'fail-permission') {
    return { kind: 'eax', eax: RmpStatus.FAIL_PERMISSION, cf: 0 };
  }
  const r = resolve(m, ctx, gpa, true);
  if (isFault(r)) return r;
  if (size === 0 && r.is2M) return npf(GUEST_NPF_RMP + PfErr.WRITE + PfErr.SIZEM);
  if (size === 1 && (r.w0 & W0_PAGESIZE) === 0)
    return { kind: 'eax', eax: RmpStatus.FAIL_SIZEMISMATCH, cf: 0 };
  const current = (r.w1 & W1_VALIDATED) !== 0 ? 1 : 0;
  if (current === validate) return { kind: 'eax', eax: RmpStatus.SUCCESS, cf: 1 };
  const { rmp } = m;
  const w1 = validate ? (r.w1 | W1_VALIDATED) >>> 0 : (r.w1 & ~W1_VALIDATED) >>> 0;
  rmp.writeEntryWords(r.entryPfn, r.w0, w1, rmp.word(r.entryPfn, 2), rmp.word(r.entryPfn, 3));
  return { kind: 'eax', eax: RmpStatus.SUCCESS, cf: 0 };
}

function toBigint(v: bigint | number): bigint | undefined {
  if (typeof v === 'bigint') return v >= 0n && v < 1n << 64n ? v : undefined;
  return Number.isSafeInteger(v) && v >= 0 ? BigInt(v) : undefined;
}

/**
 * RMPADJUST `gpa`, page size `size`, attributes `rdx` (7:0 target VMPL, 15:8 permission mask, 16 VMSA).
 * Order (VeriSMo's, ap-creation.md §C.5, with the open points as profile fields):
 * #UD outside SNP; #GP(0) at CPL != 0; FAIL_INPUT (size not 0/1, address not aligned to the size,
 * RDX bits 63:17 or mask bits 7:5 set, target VMPL >= vmplCount); target VMPL <= current →
 * FAIL_PERMISSION; ownership → NPF; 4K request on a 2 MB entry → NPF SIZEM; VMSA in use by another
 * vCPU → profile.rmpadjustInUseVmsa; not validated → profile.rmpadjustNotValidated; 2M request on a 4K
 * entry → FAIL_SIZEMISMATCH; permissions not a subset of the current VMPL's → FAIL_PERMISSION; VMSA = 1 on a
 * 2 MB page at VMPL0 → profile.rmpadjustVmsaOn2M. Effect: the target VMPL's mask; the VMSA bit only
 * when executing at VMPL0 (ignored otherwise).
 */
export function rmpadjust(
  m: Machine,
  ctx: GuestContext,
  gpa: number,
  size: number,
  rdx: bigint | number,
): RmpadjustResult {
  const pro = guestPrologue(ctx, 'RMPADJUST', true);
  if (pro) return pro;
  const FAIL_INPUT: RmpadjustResult = { kind: 'eax', eax: RmpStatus.FAIL_INPUT };
  const FAIL_PERMISSION: RmpadjustResult = { kind: 'eax', eax: RmpStatus.FAIL_PERMISSION };
  const r64 = toBigint(rdx);
  if (r64 === undefined || (size !== 0 && size !== 1)) return FAIL_INPUT;
  if (!Number.isInteger(gpa) || gpa < 0 || gpa % (size === 1 ? PAGE_SIZE_2M : PAGE_SIZE) !== 0)
    return FAIL_INPUT;
  if ((r64 & ~RMPADJUST_DEFINED) !== 0n) return FAIL_INPUT;
  const target = Number(r64 & RMPADJUST_TARGET_VMPL_MASK);
  const perms = Number((r64 >> RMPADJUST_PERMS_SHIFT) & 0xffn);
  const vmsa = (r64 & RMPADJUST_VMSA) !== 0n;
  if ((perms & VMPL_PERM_RESERVED) !== 0 || target >= m.profile.vmplCount) return FAIL_INPUT;
  if (target <= ctx.vmpl) return FAIL_PERMISSION;

  const r = resolve(m, ctx, gpa, true);
  if (isFault(r)) return r;
  // VeriSMo puts this size mismatch with the nested-page-fault checks, before Validated.
  if (size === 0 && r.is2M) return npf(GUEST_NPF_RMP + PfErr.WRITE + PfErr.SIZEM);
  if (m.inUse.otherUser(r.pfn, ctx.cpu) !== undefined) {
    if (m.profile.rmpadjustInUseVmsa === 'npf') return npf(GUEST_NPF_RMP + PfErr.WRITE);
    return { kind: 'eax', eax: RmpStatus.FAIL_INUSE };
  }
  if ((r.w1 & W1_VALIDATED) === 0) {
    switch (m.profile.rmpadjustNotValidated) {
      case 'vc':
        return { kind: 'vc', errorCode: VC_PAGE_NOT_VALIDATED };
      case 'npf':
        return npf(GUEST_NPF_RMP + PfErr.WRITE);
      case 'fail-input':
        return FAIL_INPUT;
      case 'allowed':
        break;
    }
  }
  if (size === 1 && (r.w0 & W0_PAGESIZE) === 0) return { kind: 'eax', eax: RmpStatus.FAIL_SIZEMISMATCH };
  const { rmp } = m;
  const w2 = rmp.word(r.entryPfn, 2);
  const own = (w2 >>> (ctx.vmpl * 8)) & 0xff;
  if ((perms & ~own) !== 0) return FAIL_PERMISSION;
  const setsVmsa = ctx.vmpl === 0;
  if (setsVmsa && vmsa && r.is2M) {
    if (m.profile.rmpadjustVmsaOn2M === 'fail-input') return FAIL_INPUT;
    if (m.profile.rmpadjustVmsaOn2M === 'fail-sizemismatch')
      return { kind: 'eax', eax: RmpStatus.FAIL_SIZEMISMATCH };
  }
  const shift = target * 8;
  const nw2 = ((w2 & ~(0xff << shift)) | (perms << shift)) >>> 0;
  const nw1 = setsVmsa ? (vmsa ? (r.w1 | W1_VMSA) >>> 0 : (r.w1 & ~W1_VMSA) >>> 0) : r.w1;
  rmp.writeEntryWords(r.entryPfn, r.w0, nw1, nw2, rmp.word(r.entryPfn, 3));
  return { kind: 'eax', eax: RmpStatus.SUCCESS };
}

/**
 * RMPQUERY `gpa` for `targetVmpl`: #UD outside SNP; FAIL_INPUT for a target outside 0..vmplCount-1
 * [DER: the MS table lists only 0 and 2]; FAIL_PERMISSION when the target is more privileged than the
 * current VMPL (profile.rmpqueryTargetBelowCurrent, §H6); ownership → NPF (no W bit: it only reads);
 * else EAX 0 with the target's mask, the VMSA bit and the RMP page size.
 */
export function rmpquery(m: Machine, ctx: GuestContext, gpa: number, targetVmpl: number): RmpqueryResult {
  const pro = guestPrologue(ctx, 'RMPQUERY', false);
  if (pro) return pro;
  const none = { perms: 0, vmsa: false, pageSize: 0 as const };
  if (!Number.isInteger(targetVmpl) || targetVmpl < 0 || targetVmpl >= m.profile.vmplCount) {
    return { kind: 'eax', eax: RmpStatus.FAIL_INPUT, ...none };
  }
  if (!Number.isInteger(gpa) || gpa < 0 || gpa % PAGE_SIZE !== 0)
    return { kind: 'eax', eax: RmpStatus.FAIL_INPUT, ...none };
  if (targetVmpl < ctx.vmpl && m.profile.rmpqueryTargetBelowCurrent === 'fail-permission') {
    return { kind: 'eax', eax: RmpStatus.FAIL_PERMISSION, ...none };
  }
  const r = resolve(m, ctx, gpa, false);
  if (isFault(r)) return r;
  const w2 = m.rmp.word(r.entryPfn, 2);
  return {
    kind: 'eax',
    eax: RmpStatus.SUCCESS,
    perms: (w2 >>> (targetVmpl * 8)) & 0xff,
    vmsa: (r.w1 & W1_VMSA) !== 0,
    pageSize: r.is2M ? 1 : 0,
  };
}
