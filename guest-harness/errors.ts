/**
 * Harness-layer errors: infrastructure and input failures of snpsim itself (SSH, host keys,
 * timeouts, scenario files, the guest module). Model outcomes (firmware status, instruction return
 * codes, GHCB results, KVM exits) are values in their own layers, never SnpsimError.
 */

/** Process exit codes of the snpsim CLI (diff(1) convention plus infrastructure failure). */
export const ExitCode = Object.freeze({
  /** No differences (or the command succeeded). */
  OK: 0,
  /** Differences found (or a check failed). */
  DIFFERENCES: 1,
  /** Usage or input error: bad flags, bad scenario/policy/profile file. Nothing ran. */
  USAGE: 2,
  /** Infrastructure failure: target unreachable, guest died unexpectedly, timeout. */
  INFRASTRUCTURE: 3,
} as const);
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Stable machine-readable error codes of the harness layer. */
export const SnpsimErrorCode = Object.freeze({
  USAGE: 'SNPSIM_USAGE',
  INPUT_INVALID: 'SNPSIM_INPUT_INVALID',
  SCENARIO_INVALID: 'SNPSIM_SCENARIO_INVALID',
  POLICY_INVALID: 'SNPSIM_POLICY_INVALID',
  PROFILE_INVALID: 'SNPSIM_PROFILE_INVALID',
  FIXTURE_INVALID: 'SNPSIM_FIXTURE_INVALID',
  SSH_CONNECTION_REFUSED: 'SNPSIM_SSH_CONNECTION_REFUSED',
  SSH_DNS: 'SNPSIM_SSH_DNS',
  SSH_UNREACHABLE: 'SNPSIM_SSH_UNREACHABLE',
  SSH_AUTH: 'SNPSIM_SSH_AUTH',
  SSH_HOSTKEY_UNKNOWN: 'SNPSIM_SSH_HOSTKEY_UNKNOWN',
  SSH_HOSTKEY_MISMATCH: 'SNPSIM_SSH_HOSTKEY_MISMATCH',
  SSH_HOSTKEY_REVOKED: 'SNPSIM_SSH_HOSTKEY_REVOKED',
  SSH_TIMEOUT: 'SNPSIM_SSH_TIMEOUT',
  SSH_PROTOCOL: 'SNPSIM_SSH_PROTOCOL',
  GUEST_DIED: 'SNPSIM_GUEST_DIED',
  GUEST_MODULE: 'SNPSIM_GUEST_MODULE',
  AGENT_PROTOCOL: 'SNPSIM_AGENT_PROTOCOL',
  STEP_TIMEOUT: 'SNPSIM_STEP_TIMEOUT',
  NATIVE_BUILD: 'SNPSIM_NATIVE_BUILD',
} as const);
export type SnpsimErrorCode = (typeof SnpsimErrorCode)[keyof typeof SnpsimErrorCode];

const USAGE_CODES: ReadonlySet<SnpsimErrorCode> = new Set<SnpsimErrorCode>([
  SnpsimErrorCode.USAGE,
  SnpsimErrorCode.INPUT_INVALID,
  SnpsimErrorCode.SCENARIO_INVALID,
  SnpsimErrorCode.POLICY_INVALID,
  SnpsimErrorCode.PROFILE_INVALID,
  SnpsimErrorCode.FIXTURE_INVALID,
]);

const BRAND = Symbol.for('snpsim.SnpsimError');

/** An error of the harness layer with a stable code; `exitCode` says how the CLI ends on it. */
export class SnpsimError extends Error {
  readonly code: SnpsimErrorCode;
  readonly layer = 'harness' as const;
  /** Extra structured facts (file, JSON path, host, fingerprint ...) for reports. */
  readonly details: Readonly<Record<string, unknown>>;
  readonly [BRAND] = true;

  constructor(
    code: SnpsimErrorCode,
    message: string,
    details: Record<string, unknown> = {},
    cause?: unknown,
  ) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'SnpsimError';
    this.code = code;
    this.details = Object.freeze({ ...details });
  }

  /** Exit code the CLI uses when this error ends a command. */
  get exitCode(): ExitCode {
    return USAGE_CODES.has(this.code) ? ExitCode.USAGE : ExitCode.INFRASTRUCTURE;
  }

  /** Brand check that survives duplicated package copies (as undici does). */
  static is(value: unknown): value is SnpsimError {
    return typeof value === 'object' && value !== null && (value as { [BRAND]?: unknown })[BRAND] === true;
  }
}
