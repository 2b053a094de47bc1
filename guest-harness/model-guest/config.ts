/**
 * Resolving `--policy` and `--profile` values (a preset name or a JSON file) for the model, with
 * errors that name the file, the JSON path and the problem (exit code 2, nothing runs).
 */
import { readFileSync } from 'node:fs';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { formatProblem, parseJson } from '../scenario/index.js';
import {
  type HostPolicy,
  loadProfile,
  type PlatformProfile,
  PRESET_NAMES,
  parsePolicy,
  presetPolicy,
} from './host-api.js';

/** The host policy the model uses when none is given: Linux 6.11, the first upstream release. */
export const DEFAULT_POLICY = 'linux-6.11';
/** The platform profile the model uses when none is given. */
export const DEFAULT_PROFILE = 'genoa';

export interface NamedPolicy {
  readonly name: string;
  readonly policy: HostPolicy;
}

export interface NamedProfile {
  readonly name: string;
  readonly profile: PlatformProfile;
}

/** Preset names scenarios' `expectPolicy` may use. */
export function policyNames(): readonly string[] {
  return PRESET_NAMES;
}

/** A preset name or a policy JSON file; throws SnpsimError(POLICY_INVALID). */
export function resolvePolicy(value: string): NamedPolicy {
  const preset = presetPolicy(value);
  if (preset !== undefined) return { name: preset.name, policy: preset.policy };
  let text: string;
  try {
    text = readFileSync(value, 'utf8');
  } catch (error) {
    throw new SnpsimError(
      SnpsimErrorCode.POLICY_INVALID,
      `--policy ${value}: neither a preset (${PRESET_NAMES.join(', ')}) nor a readable file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`,
      { value },
    );
  }
  // The scenario loader's JSON reader: a syntax error names its line and column.
  const json = parseJson(value, text);
  if ('problem' in json) {
    throw new SnpsimError(SnpsimErrorCode.POLICY_INVALID, formatProblem(json.problem), { file: value });
  }
  const parsed = parsePolicy(json.value);
  if (!parsed.ok) {
    const lines = parsed.problems.map((p) => `${value}: ${p.path === '' ? '$' : p.path}: ${p.message}`);
    throw new SnpsimError(
      SnpsimErrorCode.POLICY_INVALID,
      `invalid host policy file:\n  ${lines.join('\n  ')}`,
      {
        file: value,
        problems: parsed.problems,
      },
    );
  }
  return { name: parsed.value.name, policy: parsed.value.policy };
}

/** A profile preset name or a profile JSON file; throws SnpsimError(PROFILE_INVALID). */
export function resolveProfile(value: string): NamedProfile {
  const r = loadProfile(value);
  if (!r.ok) {
    const lines = r.errors.map((e) => `${value}: ${e.path === '' ? '$' : e.path}: ${e.message}`);
    throw new SnpsimError(
      SnpsimErrorCode.PROFILE_INVALID,
      `invalid platform profile:\n  ${lines.join('\n  ')}`,
      {
        value,
        problems: r.errors,
      },
    );
  }
  return { name: r.profile.name, profile: r.profile };
}
