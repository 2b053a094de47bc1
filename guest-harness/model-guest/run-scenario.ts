/**
 * A whole scenario on a fresh model guest: every step's agent requests executed in order, model-only
 * steps run by the model itself, and after each step the guest-observable observation plus the
 * model's internal state.
 */
import type { AgentReply } from '../protocol/index.js';
import type { StepObservation } from '../runner/observation.js';
import { stepObservation } from '../runner/replies.js';
import type { ScenarioExecution } from '../runner/target.js';
import { type LoadedScenario, stepRequests } from '../scenario/index.js';
import type { NamedPolicy, NamedProfile } from './config.js';
import { isStopped, ModelGuest } from './guest.js';

export interface ModelRunConfig {
  readonly policy: NamedPolicy;
  readonly profile: NamedProfile;
  readonly sevStatus?: bigint;
  /** vCPUs of the VM when the target has more than the scenario needs. */
  readonly vcpus?: number;
}

/** Runs `scenario` on a freshly booted model guest. A model error is reported, never thrown. */
export function runScenarioOnModel(scenario: LoadedScenario, config: ModelRunConfig): ScenarioExecution {
  let guest: ModelGuest;
  try {
    guest = ModelGuest.boot({
      policyName: config.policy.name,
      policy: config.policy.policy,
      profileName: config.profile.name,
      profile: config.profile.profile,
      vcpus: Math.max(scenario.vcpus, config.vcpus ?? 0),
      ...(config.sevStatus !== undefined ? { sevStatus: config.sevStatus } : {}),
    });
  } catch (error) {
    return {
      observations: [],
      error: { code: 'model', message: `the model guest did not boot: ${(error as Error).message}` },
    };
  }
  const names = new Map([...scenario.pages].map(([name, h]) => [h, name] as const));
  const observations: StepObservation[] = [];
  try {
    for (const step of scenario.steps) {
      guest.machine.events.length = 0;
      let obs: StepObservation;
      if (guest.stopped !== undefined) {
        obs = { kind: 'dead', vm: 'dead' };
      } else if (step.op === 'host-run') {
        const r = guest.hostRun(step.vcpu);
        obs = isStopped(r)
          ? { kind: 'dead', vm: 'dead' }
          : { kind: 'ok', values: r, vm: guest.stopped === undefined ? 'alive' : 'dead' };
      } else if (step.op === 'concurrent') {
        obs = {
          kind: 'err',
          code: 'unsupported',
          values: { reason: 'no-scheduler' },
          vm: 'alive',
        };
      } else {
        const replies: (AgentReply | undefined)[] = [];
        for (const request of stepRequests(step, scenario.pages)) {
          const r = guest.execute(request);
          if (isStopped(r)) {
            replies.push(undefined);
            break;
          }
          replies.push(r);
        }
        obs = stepObservation(replies, guest.stopped === undefined ? 'alive' : 'dead', 'dead');
      }
      observations.push({ ...obs, model: guest.state(names) });
    }
    guest.closeSession();
  } catch (error) {
    return {
      observations,
      error: {
        code: 'model',
        message: `model error at step ${observations.length + 1}: ${(error as Error).stack ?? error}`,
      },
    };
  }
  return { observations };
}
