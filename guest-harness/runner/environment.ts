/**
 * The environment `snpsim run` uses by default: host policies and platform profiles from the lower
 * layers, the model as reference, and the model / sim / ssh targets.
 */
import { readFileSync } from 'node:fs';
import type { RunEnvironment } from '../cli/run.js';
import {
  DEFAULT_POLICY,
  DEFAULT_PROFILE,
  ModelReference,
  ModelTarget,
  policyNames,
  resolvePolicy,
  resolveProfile,
} from '../model-guest/index.js';
import { DEFAULT_STEP_TIMEOUT_MS, SshAgentTarget } from '../targets/index.js';
import { AgentScenarioTarget } from './agent-target.js';
import { SimTarget } from './sim-target.js';

/** The package version (package.json next to dist/), or 0.0.0 when it cannot be read. */
export function snpsimVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
      version?: unknown;
    };
    return typeof pkg.version === 'string' ? pkg.version : '0.0.0';
  } catch {
    return '0.0.0';
  }
}

export function defaultRunEnvironment(): RunEnvironment {
  return {
    version: snpsimVersion(),
    defaultPolicy: DEFAULT_POLICY,
    defaultProfile: DEFAULT_PROFILE,
    policyNames: policyNames(),
    resolvePolicy: async (value) => resolvePolicy(value).name,
    resolveProfile: async (value) => resolveProfile(value).name,
    reference: () => new ModelReference(),
    target(spec, options) {
      switch (spec.kind) {
        case 'model':
          return new ModelTarget(spec.text, spec.policy ?? options.policy, spec.profile ?? options.profile);
        case 'sim':
          return new SimTarget(
            spec.text,
            spec.policy ?? options.policy,
            spec.profile ?? options.profile,
            options.ssh.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS,
          );
        case 'ssh':
          // Every SSH option of the command line (cli/ssh-options.ts) reaches the target as parsed.
          return new AgentScenarioTarget(
            spec.text,
            'ssh',
            new SshAgentTarget({ user: spec.user, host: spec.host, port: spec.port }, options.ssh.target),
            options.ssh.stepTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS,
          );
      }
    },
  };
}
