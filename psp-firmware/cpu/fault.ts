/**
 * Decoding the numbers the access checks return (not hot path), and the result shapes of the guest
 * instructions (faults as values, never exceptions).
 */
import { PfErr, VC_PAGE_NOT_VALIDATED } from './codes.js';

export type AccessOutcome =
  | { readonly kind: 'ok' }
  | { readonly kind: 'vc'; readonly errorCode: number }
  | { readonly kind: 'pf'; readonly errorCode: number; readonly flags: readonly string[] }
  | { readonly kind: 'npf'; readonly exitInfo1: bigint; readonly flags: readonly string[] };

/** The named bits of a #PF error code / EXITINFO1, lowest first (the `PfErr` table). */
const FLAGS: readonly (readonly [bigint, string])[] = (
  [
    [PfErr.PRESENT, 'P'],
    [PfErr.WRITE, 'W'],
    [PfErr.USER, 'U'],
    [PfErr.FETCH, 'ID'],
    [PfErr.RMP, 'RMP'],
    [PfErr.GUEST_FINAL, 'GUEST_FINAL'],
    [PfErr.GUEST_PAGE, 'GUEST_PAGE'],
    [PfErr.ENC, 'ENC'],
    [PfErr.SIZEM, 'SIZEM'],
    [PfErr.VMPL, 'VMPL'],
    [PfErr.SSS, 'SSS'],
  ] as const
).map(([mask, name]) => [BigInt(mask), name] as const);

function flagsOf(value: bigint): string[] {
  return FLAGS.filter(([mask]) => (value & mask) !== 0n).map(([, name]) => name);
}

/** Decodes an access-check result (see `cpu/access.ts` for the encoding). */
export function decodeAccessResult(result: number): AccessOutcome {
  if (!Number.isSafeInteger(result) || result < 0) {
    throw new RangeError(`not an access-check result: ${result}`);
  }
  if (result === 0) return { kind: 'ok' };
  if (result === VC_PAGE_NOT_VALIDATED) return { kind: 'vc', errorCode: result };
  const value = BigInt(result);
  if (result < 2 ** 32) return { kind: 'pf', errorCode: result, flags: flagsOf(value) };
  return { kind: 'npf', exitInfo1: value, flags: flagsOf(value) };
}

/** One line for a user: `#VMEXIT(NPF) EXITINFO1=0x500000001 [P RMP GUEST_FINAL ENC]`. */
export function describeAccessResult(result: number): string {
  const o = decodeAccessResult(result);
  switch (o.kind) {
    case 'ok':
      return 'allowed';
    case 'vc':
      return `#VC error code 0x${o.errorCode.toString(16)} (PAGE_NOT_VALIDATED)`;
    case 'pf':
      return `#PF error code 0x${o.errorCode.toString(16)} [${o.flags.join(' ')}]`;
    case 'npf':
      return `#VMEXIT(NPF) EXITINFO1=0x${o.exitInfo1.toString(16)} [${o.flags.join(' ')}]`;
  }
}

/** Faults a guest instruction can raise instead of returning EAX. */
export type GuestFault =
  /** #VMEXIT(NPF) with EXITINFO1 (bit 31 RMP, 35 SIZEM ...). */
  | { readonly kind: 'npf'; readonly exitInfo1: number }
  /** #VC with its error code (0x404 PAGE_NOT_VALIDATED). */
  | { readonly kind: 'vc'; readonly errorCode: number }
  /** #GP(0), e.g. CPL != 0. */
  | { readonly kind: 'gp'; readonly errorCode: 0; readonly reason: string }
  /** #UD, e.g. outside an SNP-active guest or an unsupported instruction. */
  | { readonly kind: 'ud'; readonly reason: string };

export type PvalidateResult =
  | {
      readonly kind: 'eax';
      readonly eax: number;
      /** rFLAGS.CF: 1 when the Validated bit already had the requested value (no update). */
      readonly cf: 0 | 1;
    }
  | GuestFault;

export type RmpadjustResult = { readonly kind: 'eax'; readonly eax: number } | GuestFault;

export type RmpqueryResult =
  | {
      readonly kind: 'eax';
      readonly eax: number;
      /** Permission mask of the target VMPL (0 when EAX != 0). */
      readonly perms: number;
      /** The entry's VMSA bit. */
      readonly vmsa: boolean;
      /** RMP page size of the authoritative entry (0 4K, 1 2M). */
      readonly pageSize: 0 | 1;
    }
  | GuestFault;
