/** Targets the runner drives: the AgentTarget interface, its SSH implementation, fleets. */
export { type AgentChannel, type ExchangeOptions, encodeBatch, exchange } from './exchange.js';
export { type FleetOptions, type FleetOutcome, runFleet } from './fleet.js';
export {
  DEFAULT_AGENT_COMMAND,
  DEFAULT_STEP_TIMEOUT_MS,
  SshAgentTarget,
  type SshTargetOptions,
} from './ssh-target.js';
export type { AgentTarget, BatchOptions, BatchResult } from './target.js';
export { formatSshTargetUrl, parseSshTargetUrl, type SshTargetUrl } from './url.js';
