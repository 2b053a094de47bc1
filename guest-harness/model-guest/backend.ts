/**
 * The model-backed AgentBackend of the simulated guest (`snpsim sim-guest --backend model`, and
 * `--target sim`): every agent run (one batch) gets a freshly booted model guest, so scenarios are
 * independent and a scenario that stops the VM leaves the next one a new VM. When the guest stops
 * mid-batch, the session fails the request, and the simulated guest ends the channel without
 * answering, as a dead guest's SSH connection does.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { DEFAULT_VCPUS } from '../scenario/index.js';
import type {
  AgentBackend,
  AgentBackendFactory,
  AgentBackendOptions,
  AgentBackendSession,
} from '../sim/index.js';
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

/** Thrown by a session when the model guest stopped: the simulated agent run ends unanswered. */
export class GuestStoppedError extends Error {
  constructor(reason: string) {
    super(`the model guest stopped: ${reason}`);
    this.name = 'GuestStoppedError';
  }
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
          if (isStopped(reply)) throw new GuestStoppedError(reply.stopped);
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
