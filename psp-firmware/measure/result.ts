/**
 * Outcomes of the measurement code as values (docs/ARCHITECTURE.md "Errors are values"): a refused
 * input is a `MeasureError` naming the layer, a stable code and what exactly is wrong. Nothing here
 * throws on bad input; only a misuse of the API by a programmer (a wrong argument type) may throw.
 */

/** Stable codes of refused measurement inputs. */
export const MeasureErrorCode = Object.freeze({
  /** PAGE_TYPE 0 or 7 (reserved) or not a 3-bit value [FW LAUNCH_UPDATE: INVALID_PARAM]. */
  INVALID_PAGE_TYPE: 'INVALID_PAGE_TYPE',
  /** Page contents missing or of the wrong length, or an update length that is not whole pages. */
  INVALID_CONTENTS: 'INVALID_CONTENTS',
  /** VMSA, SECRETS or CPUID asked for more than one 4 KiB page [FW LAUNCH_UPDATE: INVALID_PAGE_SIZE]. */
  INVALID_PAGE_SIZE: 'INVALID_PAGE_SIZE',
  /** GPA not aligned (2 MB: the firmware's INVALID_ADDRESS), negative or above the RMP GPA field. */
  INVALID_GPA: 'INVALID_GPA',
  /** A VMPL permission mask that is not a byte. */
  INVALID_PERMS: 'INVALID_PERMS',
  /** A launch-digest seed (e.g. an OVMF hash) that is not 48 bytes. */
  INVALID_SEED: 'INVALID_SEED',
  /** An OVMF/SVSM image that is truncated or whose footer table or SEV metadata is garbled. */
  INVALID_IMAGE: 'INVALID_IMAGE',
  /** A footer-table entry the measurement needs is absent (reset block, hashes table, SVSM info). */
  MISSING_IMAGE_ENTRY: 'MISSING_IMAGE_ENTRY',
  /** A kernel was given but the OVMF image has no SNP_KERNEL_HASHES section. */
  NO_KERNEL_HASHES_SECTION: 'NO_KERNEL_HASHES_SECTION',
  /** A guest parameter out of range: vCPU count, signature, guest features, vars size ... */
  INVALID_PARAMETER: 'INVALID_PARAMETER',
  /** A vCPU type name that is not in the table of QEMU CPU models. */
  UNKNOWN_VCPU_TYPE: 'UNKNOWN_VCPU_TYPE',
} as const);
export type MeasureErrorCode = (typeof MeasureErrorCode)[keyof typeof MeasureErrorCode];

/** A refused measurement input. `layer` is `firmware`: the measurement lives in the platform layer. */
export interface MeasureError {
  readonly layer: 'firmware';
  readonly code: MeasureErrorCode;
  readonly message: string;
}

export type MeasureResult<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly error: MeasureError };

export function measureError(code: MeasureErrorCode, message: string): MeasureError {
  return Object.freeze({ layer: 'firmware' as const, code, message });
}

export function ok<T>(value: T): MeasureResult<T> {
  return { ok: true, value };
}

export function fail<T>(code: MeasureErrorCode, message: string): MeasureResult<T> {
  return { ok: false, error: measureError(code, message) };
}

/** `0x...` rendering used in every message (addresses and sizes). */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}
