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
import { runConcurrent } from './concurrent.js';
import type { NamedPolicy, NamedProfile } from './config.js';
import { isStopped, ModelGuest } from './guest.js';

export interface ModelRunConfig {
  readonly policy: NamedPolicy;
  readonly profile: NamedProfile;
  readonly sevStatus?: bigint;
  /** vCPUs of the VM when the target has more than the scenario needs. */
  readonly vcpus?: number;
}

function boot(scenario: LoadedScenario, config: ModelRunConfig): ModelGuest {
  return ModelGuest.boot({
    policyName: config.policy.name,
    policy: config.policy.policy,
    profileName: config.profile.name,
    profile: config.profile.profile,
    vcpus: Math.max(scenario.vcpus, config.vcpus ?? 0),
    ...(config.sevStatus !== undefined ? { sevStatus: config.sevStatus } : {}),
  });
}

/**
 * The model is deterministic, so a run is a function of the scenario and the configuration: the
 * last few are remembered (the reference and a `model` target with the same configuration share
 * one run).
 */
const recent = new Map<string, ScenarioExecution>();
const RECENT_RUNS = 4;

/** Runs `scenario` on a freshly booted model guest. A model error is reported, never thrown. */
export function runScenarioOnModel(scenario: LoadedScenario, config: ModelRunConfig): ScenarioExecution {
  const key = JSON.stringify(
    [
      scenario.hash,
      scenario.vcpus,
      config.policy.name,
      config.policy.policy,
      config.profile.name,
      config.profile.profile,
      config.sevStatus,
      config.vcpus,
    ],
    (_k, v: unknown) => (typeof v === 'bigint' ? `0x${v.toString(16)}` : v),
  );
  const hit = recent.get(key);
  if (hit !== undefined) return hit;
  const run = runFresh(scenario, config);
  recent.set(key, run);
  if (recent.size > RECENT_RUNS) recent.delete(recent.keys().next().value as string);
  return run;
}

function runFresh(scenario: LoadedScenario, config: ModelRunConfig): ScenarioExecution {
  let guest: ModelGuest;
  try {
    guest = boot(scenario, config);
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
        // Every order replays the scenario up to here on a fresh guest (the loader keeps a
        // concurrent step last, so no later step depends on which order ran).
        const index = observations.length;
        const result = runConcurrent(
          () => {
            const fresh = boot(scenario, config);
            for (const earlier of scenario.steps.slice(0, index)) {
              for (const request of stepRequests(earlier, scenario.pages)) fresh.execute(request);
            }
            return fresh;
          },
          step.requests,
          scenario.pages,
          step.orders,
          step.interleaveTargets ?? false,
        );
        guest.machine.events.push(...result.outcomes);
        obs = { kind: 'ok', values: result.values, vm: 'alive' };
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
