/**
 * What the differential runner needs from a place scenarios run: the model (reference), the model
 * target, the simulated guest over SSH, a real guest over SSH, or a fixture being replayed.
 */
import type { LoadedScenario } from '../scenario/index.js';
import type { StepObservation } from './observation.js';
import type { ErrorInfo } from './report.js';

export type TargetKind = 'model' | 'sim' | 'ssh' | 'fixture';

/** A scenario's observations on one target. */
export interface ScenarioExecution {
  /** One observation per step (`not-run` where the run did not get that far). */
  readonly observations: readonly StepObservation[];
  /** An infrastructure failure that ended the scenario (not a guest outcome). */
  readonly error?: ErrorInfo;
  /** The target could not run it (e.g. a fixture without this scenario): the reason. */
  readonly skipped?: string;
}

export interface ScenarioTarget {
  /** The --target value. */
  readonly spec: string;
  readonly kind: TargetKind;
  /** Connects (or starts) the target; returns its platform details. Throws SnpsimError. */
  open(signal?: AbortSignal): Promise<Readonly<Record<string, string>>>;
  /** Why this target cannot run the scenario, or undefined. */
  cannotRun(scenario: LoadedScenario): string | undefined;
  /** Runs one scenario; guest death is an observation, infrastructure failures go in `error`. */
  run(scenario: LoadedScenario, signal?: AbortSignal): Promise<ScenarioExecution>;
  /**
   * After the guest VM stopped: get a fresh guest for the next scenario, or explain why not (a real
   * guest stays stopped; a model-backed one starts a new VM).
   */
  recover(): Promise<string | undefined>;
  close(): Promise<void>;
}

/** Configuration of a reference model run: host policy, firmware profile, guest SEV features. */
export interface ModelConfig {
  readonly policy: string;
  readonly profile: string;
  /** SEV_STATUS of the guest (the VM's SEV features are SEV_STATUS >> 2); default: SNP only. */
  readonly sevStatus?: bigint;
  /** vCPUs of the target's guest (its possible CPUs); the model VM gets at least the scenario's. */
  readonly vcpus?: number;
}

/** The reference: runs a scenario on the model with a given configuration. */
export interface ReferenceModel {
  run(scenario: LoadedScenario, config: ModelConfig): Promise<ScenarioExecution>;
}
