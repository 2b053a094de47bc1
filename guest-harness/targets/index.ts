/** Targets the runner drives: the AgentTarget interface, its SSH implementation, fleets. */
export { type AgentChannel, type ExchangeOptions, encodeBatch, exchange } from './exchange.js';
export { type FleetOptions, type FleetOutcome, runFleet } from './fleet.js';
export {
  type CheckStatus,
  DOCTOR_PROBE,
  type DoctorCheck,
  type DoctorOptions,
  type DoctorReport,
  doctorChecks,
  doctorGuest,
  KMOD_NAME,
  type Probe,
  parseProbe,
} from './guest-doctor.js';
export {
  type InstallOptions,
  type InstallReport,
  type InstallStep,
  installGuest,
  REMOTE_SOURCE_DIR,
} from './guest-install.js';
export {
  DEFAULT_AGENT_COMMAND,
  DEFAULT_STEP_TIMEOUT_MS,
  SshAgentTarget,
  type SshTargetOptions,
} from './ssh-target.js';
export type { AgentTarget, BatchOptions, BatchResult } from './target.js';
export { formatSshTargetUrl, parseSshTargetUrl, type SshTargetUrl } from './url.js';
