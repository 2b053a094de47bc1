/**
 * The model-backed AgentBackend of the simulated guest (`snpsim sim-guest --backend model`, and
 * `--target sim`): every agent run (one batch) gets a freshly booted model guest, so scenarios are
 * independent and a scenario that stops the VM leaves the next one a new VM. When the guest stops
 * mid-batch, the session throws SimGuestStopped and the simulated guest ends the agent run without
 * answering or an exit status, as a dead guest's SSH connection does.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { DEFAULT_VCPUS } from '../scenario/index.js';
// From the module, not sim/index.js: the simulated guest's backend registry (sim/backends.ts) imports
// this module's factory through model-guest/index.js, and importing sim/index.js here would close
// that cycle at load time.
import {
  type AgentBackend,
  type AgentBackendFactory,
  type AgentBackendOptions,
  type AgentBackendSession,
  SimGuestStopped,
} from '../sim/backend.js';
import {
  DEFAULT_POLICY,
  DEFAULT_PROFILE,
  type NamedPolicy,
  type NamedProfile,
  resolvePolicy,
  resolveProfile,
} from './config.js';
import { isStopped, ModelGuest } from './guest.js';

export interface ModelBackendOptions {
  readonly policy: NamedPolicy;
  readonly profile: NamedProfile;
  /** vCPUs of every guest (default 4). */
  readonly vcpus?: number;
  readonly sevStatus?: bigint;
}

export function modelBackend(options: ModelBackendOptions): AgentBackend {
  const boot = () =>
    ModelGuest.boot({
      policyName: options.policy.name,
      policy: options.policy.policy,
      profileName: options.profile.name,
      profile: options.profile.profile,
      vcpus: options.vcpus ?? DEFAULT_VCPUS,
      ...(options.sevStatus !== undefined ? { sevStatus: options.sevStatus } : {}),
    });
  const hello = boot().hello();
  return {
    hello: () => hello,
    openSession(): AgentBackendSession {
      const guest = boot();
      return {
        execute(request) {
          const reply = guest.execute(request);
          if (isStopped(reply)) throw new SimGuestStopped(`the model guest stopped: ${reply.stopped}`);
          return reply;
        },
        close() {
          guest.closeSession();
        },
      };
    },
  };
}

/** The factory the simulated guest's backend registry uses (`--backend model`). */
export const modelBackendFactory: AgentBackendFactory = (options: AgentBackendOptions) => {
  try {
    return modelBackend({
      policy: resolvePolicy(options.policy ?? DEFAULT_POLICY),
      profile: resolveProfile(options.profile ?? DEFAULT_PROFILE),
    });
  } catch (error) {
    if (SnpsimError.is(error)) throw error;
    throw new SnpsimError(
      SnpsimErrorCode.USAGE,
      `the model backend did not start: ${(error as Error).message}`,
    );
  }
};
