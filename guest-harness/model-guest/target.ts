/**
 * The model as the runner sees it: the reference every target is compared with, and the `model`
 * target (the model in-process, possibly with another policy or profile). Both run each scenario
 * on a fresh model guest.
 */

import type { ModelConfig, ReferenceModel, ScenarioExecution, ScenarioTarget } from '../runner/target.js';
import type { LoadedScenario } from '../scenario/index.js';
import { type NamedPolicy, type NamedProfile, resolvePolicy, resolveProfile } from './config.js';
import { runScenarioOnModel } from './run-scenario.js';

/** The reference model: policies and profiles resolved once per name. */
export class ModelReference implements ReferenceModel {
  readonly #policies = new Map<string, NamedPolicy>();
  readonly #profiles = new Map<string, NamedProfile>();

  async run(scenario: LoadedScenario, config: ModelConfig): Promise<ScenarioExecution> {
    let policy = this.#policies.get(config.policy);
    if (policy === undefined) {
      policy = resolvePolicy(config.policy);
      this.#policies.set(config.policy, policy);
    }
    let profile = this.#profiles.get(config.profile);
    if (profile === undefined) {
      profile = resolveProfile(config.profile);
      this.#profiles.set(config.profile, profile);
    }
    return runScenarioOnModel(scenario, {
      policy,
      profile,
      ...(config.sevStatus !== undefined ? { sevStatus: config.sevStatus } : {}),
      ...(config.vcpus !== undefined ? { vcpus: config.vcpus } : {}),
    });
  }
}

/** `--target model[:POLICY[:PROFILE]]`: the model in-process; runs every step, model-only ones too. */
export class ModelTarget implements ScenarioTarget {
  readonly kind = 'model' as const;
  readonly #policy: NamedPolicy;
  readonly #profile: NamedProfile;

  constructor(
    readonly spec: string,
    policy: string,
    profile: string,
  ) {
    this.#policy = resolvePolicy(policy);
    this.#profile = resolveProfile(profile);
  }

  async open(): Promise<Readonly<Record<string, string>>> {
    return { backend: 'model', policy: this.#policy.name, profile: this.#profile.name };
  }

  cannotRun(): string | undefined {
    return undefined;
  }

  async run(scenario: LoadedScenario): Promise<ScenarioExecution> {
    return runScenarioOnModel(scenario, { policy: this.#policy, profile: this.#profile });
  }

  async recover(): Promise<string | undefined> {
    return undefined;
  }

  async close(): Promise<void> {}
}
