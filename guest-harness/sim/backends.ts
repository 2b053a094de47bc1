/** Backends of the simulated guest by name (`--backend NAME`): one line per backend. */
import { modelBackendFactory } from '../model-guest/index.js';
import type { AgentBackendFactory } from './backend.js';
import { protocolBackendFactory } from './protocol-backend.js';

export const simBackends: Readonly<Record<string, AgentBackendFactory>> = {
  /** The model's guest (guest-harness/model-guest): host policy and firmware profile selectable. */
  model: modelBackendFactory,
  /** No model: answers `hello`, everything else `unsupported` (tests, benchmark). */
  protocol: protocolBackendFactory,
};

/** The backend `sim-guest` and the stdio agent use without `--backend`. */
export const DEFAULT_SIM_BACKEND = 'model';
