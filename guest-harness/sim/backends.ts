/**
 * Backends of the simulated guest by name (`--backend NAME`): one line per backend. The model-backed
 * backend registers here as `model` when it exists.
 */
import type { AgentBackendFactory } from './backend.js';
import { protocolBackendFactory } from './protocol-backend.js';

export const simBackends: Readonly<Record<string, AgentBackendFactory>> = {
  protocol: protocolBackendFactory,
};

/** The backend `sim-guest` and the stdio agent use without `--backend`. */
export const DEFAULT_SIM_BACKEND = 'protocol';
