/**
 * SEV firmware status codes (the u16 the PSP leaves in the command-response register).
 *
 * Values: Linux `enum sev_ret_code` (include/uapi/linux/psp-sev.h, after the 2024 renumbering fix),
 * identical to the Genoa firmware's `SEV_STATUS_*` and virtee's `SevError` [FW][LX][VT]
 * (firmware-rmp.md §D.1). 0x1E is unassigned.
 */

/** The SNP status codes 0x00-0x28 by name. */
export const SevStatus = Object.freeze({
  SUCCESS: 0x00,
  INVALID_PLATFORM_STATE: 0x01,
  INVALID_GUEST_STATE: 0x02,
  INVALID_CONFIG: 0x03,
  INVALID_LEN: 0x04,
  ALREADY_OWNED: 0x05,
  INVALID_CERTIFICATE: 0x06,
  POLICY_FAILURE: 0x07,
  INACTIVE: 0x08,
  INVALID_ADDRESS: 0x09,
  BAD_SIGNATURE: 0x0a,
  BAD_MEASUREMENT: 0x0b,
  ASID_OWNED: 0x0c,
  INVALID_ASID: 0x0d,
  WBINVD_REQUIRED: 0x0e,
  DFFLUSH_REQUIRED: 0x0f,
  INVALID_GUEST: 0x10,
  INVALID_COMMAND: 0x11,
  ACTIVE: 0x12,
  HWSEV_RET_PLATFORM: 0x13,
  HWSEV_RET_UNSAFE: 0x14,
  UNSUPPORTED: 0x15,
  INVALID_PARAM: 0x16,
  RESOURCE_LIMIT: 0x17,
  SECURE_DATA_INVALID: 0x18,
  INVALID_PAGE_SIZE: 0x19,
  INVALID_PAGE_STATE: 0x1a,
  INVALID_MDATA_ENTRY: 0x1b,
  INVALID_PAGE_OWNER: 0x1c,
  AEAD_OFLOW: 0x1d,
  /** Linux: SEV_RET_EXIT_RING_BUFFER. */
  RB_MODE_EXITED: 0x1f,
  RMP_INIT_REQUIRED: 0x20,
  BAD_SVN: 0x21,
  BAD_VERSION: 0x22,
  SHUTDOWN_REQUIRED: 0x23,
  UPDATE_FAILED: 0x24,
  RESTORE_REQUIRED: 0x25,
  RMP_INITIALIZATION_FAILED: 0x26,
  INVALID_KEY: 0x27,
  SHUTDOWN_INCOMPLETE: 0x28,
} as const);
export type SevStatusName = keyof typeof SevStatus;
export type SevStatusCode = (typeof SevStatus)[SevStatusName];

/**
 * SEV-TIO status codes (Linux TIO series, firmware-rmp.md §D.1). The model never returns them; they
 * are here so a status read from real hardware can be named.
 */
export const SevTioStatus = Object.freeze({
  INCORRECT_BUFFER_LENGTH: 0x30,
  EXPAND_BUFFER_LENGTH_REQUEST: 0x31,
  SPDM_REQUEST: 0x32,
  SPDM_ERROR: 0x33,
  ERR_IN_DEV_CONN: 0x35,
  INVALID_DEV_CTX: 0x36,
  INVALID_TDI_CTX: 0x37,
  INVALID_TDI: 0x38,
  RECLAIM_REQUIRED: 0x39,
  IN_USE: 0x3a,
  INVALID_DEV_STATE: 0x3b,
  INVALID_TDI_STATE: 0x3c,
  DEV_CERT_CHANGED: 0x3d,
  RESYNC_REQ: 0x3e,
} as const);

const NAMES: ReadonlyMap<number, string> = new Map<number, string>([
  ...Object.entries(SevStatus).map(([name, code]) => [code, name] as const),
  ...Object.entries(SevTioStatus).map(([name, code]) => [code, name] as const),
]);

/** True when `code` is one of the SNP status codes 0x00-0x28 of the table. */
export function isSevStatus(code: number): code is SevStatusCode {
  return code <= 0x28 && NAMES.has(code);
}

/** The name of a status code (`SEV_RET_` prefix omitted), or `UNKNOWN(0x..)`. */
export function sevStatusName(code: number): string {
  return NAMES.get(code) ?? `UNKNOWN(0x${code.toString(16).padStart(2, '0')})`;
}
