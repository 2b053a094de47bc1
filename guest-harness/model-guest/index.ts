// Public entry of the model's guest: the guest kernel and module expressed against the host and
// platform models, the model target and reference, and the simulated guest's model backend.
export { ModelAgentTarget } from './agent-target.js';
export { type ModelBackendOptions, modelBackend, modelBackendFactory } from './backend.js';
export {
  DEFAULT_POLICY,
  DEFAULT_PROFILE,
  type NamedPolicy,
  type NamedProfile,
  policyNames,
  resolvePolicy,
  resolveProfile,
} from './config.js';
export {
  type GuestStopped,
  isStopped,
  MODEL_AGENT_VERSION,
  MODEL_MODULE_VERSION,
  ModelGuest,
  type ModelGuestConfig,
  mpStateLabel,
} from './guest.js';
export { DEFAULT_SEV_STATUS, GUEST_RAM_BYTES, Machine, TRAMPOLINE_GPA } from './machine.js';
export { SnpsimModule } from './module.js';
export { type ModelRunConfig, runScenarioOnModel } from './run-scenario.js';
export { ModelReference, ModelTarget } from './target.js';
export {
  buildVmsa,
  entryPoint,
  MODEL_CPU_CONTROL,
  STUB_CODE,
  STUB_MARKER_OFFSET,
  stubPage,
  VMSA_FIELD_LAYOUT,
  VMSA_SIZE,
} from './vmsa.js';
