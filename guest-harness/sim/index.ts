/** The simulated guest: backend interface, built-in protocol backend, agent session, ssh2 server. */
export { type AgentIo, EXIT_INTERNAL, GUEST_STOPPED, serveAgent } from './agent-session.js';
export {
  type AgentBackend,
  type AgentBackendFactory,
  type AgentBackendOptions,
  type AgentBackendSession,
  SimGuestStopped,
} from './backend.js';
export { DEFAULT_SIM_BACKEND, simBackends } from './backends.js';
export {
  type AuthorizedKeys,
  ephemeralHostKey,
  type HostKeyMaterial,
  parseAuthorizedKeys,
  persistentHostKey,
  readAuthorizedKeys,
} from './keys.js';
export {
  type ProtocolBackendOptions,
  protocolBackend,
  protocolBackendFactory,
  SIM_AGENT_VERSION,
} from './protocol-backend.js';
export { type SimGuestOptions, SimGuestServer } from './server.js';
