/**
 * Configurations of an experiment: host policies and platform profiles named on the command line.
 *
 * A spec is `BASE[+name=value...]`:
 * - policies: BASE is a preset (`linux-6.11`) or a policy JSON file; `+knob=value` overrides a knob
 *   (`linux-6.16+rejectCreateWhenOnline=always`);
 * - profiles: BASE is a preset (`genoa`, `milan`), a variant of variants.ts, or a profile JSON file;
 *   `+field=value` sets a CPU or firmware profile field (`genoa+vmsa2MAlignedErratum=true`, or
 *   `cpu.`/`firmware.` prefixed when both have the name).
 * A value `*` sweeps every value of an enumerated or boolean knob/field, so one spec can ask what
 * changes if the hardware (or KVM) behaves one way or the other. Overrides go through the same
 * validation as JSON files (host/policy/schema.ts, psp-firmware/profiles.ts): errors name the
 * spec, the JSON path and the problem; nothing runs.
 */
import type { TSchema } from '@sinclair/typebox';
import {
  KNOB_NAMES,
  KNOBS,
  type KnobName,
  PRESET_NAMES,
  parsePolicy,
  presetPolicy,
} from '../../host/index.js';
import {
  CpuProfileSchema,
  FirmwareProfileJson,
  PLATFORM_PROFILES,
  parsePlatformProfile,
} from '../../psp-firmware/index.js';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { type NamedPolicy, type NamedProfile, resolvePolicy, resolveProfile } from '../model-guest/index.js';
import { PROFILE_VARIANT_NAMES, PROFILE_VARIANTS, type ProfileDocument } from './variants.js';

/** One point of an experiment: a host policy on a platform profile. */
export interface Configuration {
  /** `policy · profile`, as shown in tables. */
  readonly label: string;
  readonly policy: NamedPolicy;
  readonly profile: NamedProfile;
}

type Override = readonly [name: string, value: string];

interface Spec {
  readonly base: string;
  readonly overrides: readonly Override[];
}

const OVERRIDE = /^([A-Za-z][A-Za-z0-9_.]*)=(.+)$/;
const SWEEP = '*';

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, message);
}

/** Splits `BASE+a=1+b=2`; a base with `+` is taken whole when no `name=value` follows it. */
function splitSpec(text: string, what: string): Spec {
  const parts = text.split('+');
  const first = parts.findIndex((p, i) => i > 0 && OVERRIDE.test(p));
  const base = first < 0 ? text : parts.slice(0, first).join('+');
  const overrides: Override[] = [];
  for (const part of first < 0 ? [] : parts.slice(first)) {
    const m = OVERRIDE.exec(part);
    if (m === null) throw usage(`${what} '${text}': '${part}' is not name=value`);
    overrides.push([m[1]!, m[2]!]);
  }
  if (base.length === 0) throw usage(`${what} '${text}': missing the preset or file before '+'`);
  return { base, overrides };
}

/** A command-line value as JSON: true/false, integers, else the string itself (hex stays a string). */
function jsonValue(text: string): unknown {
  if (text === 'true') return true;
  if (text === 'false') return false;
  if (/^-?(0|[1-9][0-9]{0,14})$/.test(text)) return Number(text);
  return text;
}

/** Every value of an enumerated or boolean schema (TypeBox union of literals / boolean). */
function schemaValues(schema: TSchema | undefined): readonly unknown[] | undefined {
  if (schema === undefined) return undefined;
  if (schema.type === 'boolean') return [false, true];
  const anyOf = schema.anyOf as readonly TSchema[] | undefined;
  if (anyOf?.every((s) => 'const' in s)) return anyOf.map((s) => s.const);
  return undefined;
}

/** Expands `*` values into every combination (the spec's order, first override slowest). */
function expand(
  overrides: readonly Override[],
  valuesOf: (name: string) => readonly unknown[] | undefined,
  what: string,
): Array<readonly (readonly [string, unknown])[]> {
  let out: Array<readonly (readonly [string, unknown])[]> = [[]];
  for (const [name, raw] of overrides) {
    let values: readonly unknown[];
    if (raw === SWEEP) {
      const all = valuesOf(name);
      if (all === undefined) throw usage(`${what}: '${name}=*' sweeps only enumerated or boolean values`);
      values = all;
    } else values = [jsonValue(raw)];
    out = out.flatMap((prefix) => values.map((v) => [...prefix, [name, v] as const]));
  }
  return out;
}

const label = (base: string, set: readonly (readonly [string, unknown])[]) =>
  [base, ...set.map(([n, v]) => `${n}=${String(v)}`)].join('+');

// ---- policies ---------------------------------------------------------------------------------

/** Every value of an enumerated or boolean knob (bigint knobs cannot be swept). */
function knobValues(name: string): readonly unknown[] | undefined {
  if (!Object.hasOwn(KNOBS, name)) return undefined;
  const type = KNOBS[name as KnobName].type;
  if (type === 'boolean') return [false, true];
  return type === 'bigint' ? undefined : type;
}

/** One policy spec; several policies when it sweeps a knob. Throws SnpsimError (exit 2). */
export function parsePolicySpec(text: string): NamedPolicy[] {
  const { base, overrides } = splitSpec(text, '--policies');
  if (overrides.length === 0) return [{ name: text, policy: resolvePolicy(text).policy }];
  if (presetPolicy(base) === undefined) {
    throw usage(
      `--policies '${text}': knob overrides start from a preset (${PRESET_NAMES.join(', ')}); a policy file sets its knobs itself`,
    );
  }
  const invalid = (problems: readonly { path: string; message: string }[]) => {
    const lines = problems.map((p) => `${p.path === '' ? '$' : p.path}: ${p.message}`);
    return new SnpsimError(SnpsimErrorCode.POLICY_INVALID, `--policies '${text}':\n  ${lines.join('\n  ')}`, {
      spec: text,
      problems,
    });
  };
  for (const [name] of overrides) {
    // An unknown knob: the policy parser's message names it and suggests the closest one.
    const probe = Object.hasOwn(KNOBS, name)
      ? undefined
      : parsePolicy({ extends: base, knobs: { [name]: 0 } });
    if (probe !== undefined && !probe.ok) throw invalid(probe.problems);
  }
  return expand(overrides, knobValues, `--policies '${text}'`).map((set) => {
    const parsed = parsePolicy({ extends: base, knobs: Object.fromEntries(set) });
    if (!parsed.ok) throw invalid(parsed.problems);
    return { name: label(base, set), policy: parsed.value.policy };
  });
}

// ---- profiles ---------------------------------------------------------------------------------

const CPU_FIELDS = CpuProfileSchema.properties as Record<string, TSchema>;
const FIRMWARE_FIELDS = FirmwareProfileJson.properties as Record<string, TSchema>;
/** Fields a spec may not set: the loader's own keys. */
const RESERVED_FIELDS: ReadonlySet<string> = new Set(['name', 'extends']);

/** `cpu.X`, `firmware.X` or a bare field name → where it lives; undefined when unknown. */
function profileField(name: string): { part: 'cpu' | 'firmware'; field: string } | undefined {
  const dot = name.indexOf('.');
  const [prefix, field] = dot < 0 ? [undefined, name] : [name.slice(0, dot), name.slice(dot + 1)];
  if (RESERVED_FIELDS.has(field)) return undefined;
  if ((prefix === undefined || prefix === 'cpu') && Object.hasOwn(CPU_FIELDS, field))
    return { part: 'cpu', field };
  if ((prefix === undefined || prefix === 'firmware') && Object.hasOwn(FIRMWARE_FIELDS, field))
    return { part: 'firmware', field };
  return undefined;
}

function baseDocument(base: string): ProfileDocument | undefined {
  if (base === 'genoa' || base === 'milan') return { extends: base };
  return PROFILE_VARIANTS[base]?.doc;
}

/** One profile spec; several profiles when it sweeps a field. Throws SnpsimError (exit 2). */
export function parseProfileSpec(text: string): NamedProfile[] {
  const { base, overrides } = splitSpec(text, '--profiles');
  const doc = baseDocument(base);
  if (doc === undefined || (overrides.length === 0 && Object.hasOwn(PLATFORM_PROFILES, base))) {
    if (overrides.length > 0) {
      throw usage(
        `--profiles '${text}': field overrides start from a preset or variant (genoa, milan, ${PROFILE_VARIANT_NAMES.join(', ')}); a profile file sets its fields itself`,
      );
    }
    const r = resolveProfile(base);
    return [{ name: text, profile: r.profile }];
  }
  for (const [name] of overrides) {
    if (profileField(name) === undefined) {
      throw new SnpsimError(
        SnpsimErrorCode.PROFILE_INVALID,
        `--profiles '${text}': unknown profile field '${name}'; CPU fields: ${Object.keys(CPU_FIELDS)
          .filter((f) => !RESERVED_FIELDS.has(f))
          .join(', ')}; firmware fields: ${Object.keys(FIRMWARE_FIELDS)
          .filter((f) => !RESERVED_FIELDS.has(f))
          .join(', ')}`,
      );
    }
  }
  const valuesOf = (name: string) => {
    const f = profileField(name);
    return f === undefined
      ? undefined
      : schemaValues((f.part === 'cpu' ? CPU_FIELDS : FIRMWARE_FIELDS)[f.field]);
  };
  return expand(overrides, valuesOf, `--profiles '${text}'`).map((set) => {
    const cpu: Record<string, unknown> = { ...(doc.cpu ?? {}) };
    const firmware: Record<string, unknown> = { ...(doc.firmware ?? {}) };
    for (const [name, value] of set) {
      const f = profileField(name)!;
      (f.part === 'cpu' ? cpu : firmware)[f.field] = value;
    }
    const name = label(base, set);
    const parsed = parsePlatformProfile({ extends: doc.extends, name, cpu, firmware });
    if (!parsed.ok) {
      const lines = parsed.errors.map((e) => `${e.path === '' ? '$' : e.path}: ${e.message}`);
      throw new SnpsimError(
        SnpsimErrorCode.PROFILE_INVALID,
        `--profiles '${text}':\n  ${lines.join('\n  ')}`,
        { spec: text, problems: parsed.errors },
      );
    }
    return { name, profile: parsed.profile };
  });
}

// ---- lists and combinations ---------------------------------------------------------------------

/** A comma-separated list of specs, expanded; duplicate names are a usage error. */
export function parseSpecList<T extends { readonly name: string }>(
  text: string,
  option: string,
  parse: (spec: string) => T[],
): T[] {
  const specs = text.split(',').map((s) => s.trim());
  if (specs.some((s) => s.length === 0)) throw usage(`${option} '${text}': empty entry in the list`);
  const out = specs.flatMap(parse);
  const seen = new Set<string>();
  for (const item of out) {
    if (seen.has(item.name)) throw usage(`${option}: '${item.name}' is given twice`);
    seen.add(item.name);
  }
  return out;
}

/** Every policy × profile, policies slowest (the first configuration is the baseline). */
export function combinations(
  policies: readonly NamedPolicy[],
  profiles: readonly NamedProfile[],
): Configuration[] {
  return policies.flatMap((policy) =>
    profiles.map((profile) => ({ label: `${policy.name} · ${profile.name}`, policy, profile })),
  );
}

/** What `--list` prints: presets, variants and every switch that `*` can sweep. */
export function describeSwitches(): string {
  const sweepable = (fields: Record<string, TSchema>) =>
    Object.entries(fields)
      .filter(([f]) => !RESERVED_FIELDS.has(f))
      .map(([f, s]) => [f, schemaValues(s)] as const)
      .filter((e): e is readonly [string, readonly unknown[]] => e[1] !== undefined)
      .map(([f, values]) => `  ${f}: ${values.map((v) => String(v)).join(' | ')}`);
  const knobs = KNOB_NAMES.filter((k) => knobValues(k) !== undefined).map(
    (k) => `  ${k}: ${knobValues(k)!.map(String).join(' | ')}`,
  );
  return [
    `policy presets: ${PRESET_NAMES.join(', ')} (or a policy JSON file)`,
    `profile presets: ${Object.keys(PLATFORM_PROFILES).join(', ')} (or a profile JSON file)`,
    'profile variants:',
    ...PROFILE_VARIANT_NAMES.map((n) => `  ${n}: ${PROFILE_VARIANTS[n]!.summary}`),
    '',
    'policy knobs (POLICY+knob=value, value * sweeps every value):',
    ...knobs,
    '',
    'CPU profile switches (PROFILE+field=value):',
    ...sweepable(CPU_FIELDS),
    'firmware profile switches:',
    ...sweepable(FIRMWARE_FIELDS),
    '',
  ].join('\n');
}
