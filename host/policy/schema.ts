/**
 * User policies as JSON: `{ "extends": "linux-6.11", "knobs": { "kickWait": true } }`, validated
 * with TypeBox. Problems are returned as values naming the JSON path (RFC 6901 pointer) and what is
 * wrong; nothing throws on bad input.
 */
import { type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { type HostPolicy, KNOB_NAMES, KNOBS, type KnobName, type KnobSpec } from './knobs.js';
import { getPreset, PRESET_NAMES } from './presets.js';

/** 64-bit values in JSON: a hex string (`"0x3"`) or a non-negative safe integer. */
const BIGINT_JSON = Type.Union([
  Type.String({ pattern: '^0[xX][0-9a-fA-F]{1,16}$' }),
  Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER }),
]);

function knobSchema(spec: KnobSpec): TSchema {
  if (spec.type === 'boolean') return Type.Boolean({ description: spec.summary });
  if (spec.type === 'bigint') return Type.Union(BIGINT_JSON.anyOf, { description: spec.summary });
  return Type.Union(
    spec.type.map((value) => Type.Literal(value)),
    { description: spec.summary },
  );
}

/** Schema of every knob (each optional in a user policy). */
export const KnobsSchema = Type.Object(
  Object.fromEntries(KNOB_NAMES.map((name) => [name, Type.Optional(knobSchema(KNOBS[name]))])),
  { additionalProperties: false },
);

/** Schema of a user policy file; publishable as JSON Schema (`JSON.stringify(PolicyFileSchema)`). */
export const PolicyFileSchema = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    description: Type.Optional(Type.String()),
    extends: Type.Union(
      PRESET_NAMES.map((name) => Type.Literal(name)),
      { description: 'The preset this policy starts from.' },
    ),
    knobs: Type.Optional(KnobsSchema),
  },
  { additionalProperties: false, title: 'snpsim host policy' },
);

/** One problem in a policy file. */
export interface PolicyProblem {
  /** JSON pointer to the offending value (`/knobs/kickWait`), `` for the document itself. */
  readonly path: string;
  readonly message: string;
}

/** A policy ready to use: where it came from and every knob resolved. */
export interface ResolvedPolicy {
  /** Preset name, or the user's description / `custom (extends X)`. */
  readonly name: string;
  /** The preset it starts from. */
  readonly base: string;
  /** Knobs the user set (empty for a preset). */
  readonly overrides: readonly KnobName[];
  readonly policy: HostPolicy;
}

export type PolicyParseResult =
  | { readonly ok: true; readonly value: ResolvedPolicy }
  | { readonly ok: false; readonly problems: readonly PolicyProblem[] };

const TOP_LEVEL_KEYS = ['$schema', 'description', 'extends', 'knobs'] as const;

function describeType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `${typeof value} ${JSON.stringify(value)}`;
}

function expected(spec: KnobSpec): string {
  if (spec.type === 'boolean') return 'true or false';
  if (spec.type === 'bigint') return 'a hex string such as "0x3" or a non-negative integer';
  return `one of ${spec.type.map((v) => JSON.stringify(v)).join(', ')}`;
}

/** Levenshtein distance (small strings only). */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(
        (prev[j] ?? 0) + 1,
        (row[j - 1] ?? 0) + 1,
        (prev[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

/** The knob name a typo most likely meant (case-insensitive distance <= 2). */
function closest(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

function knobValue(spec: KnobSpec, raw: unknown): HostPolicy[KnobName] {
  if (spec.type === 'bigint') return BigInt(raw as string | number);
  return raw as HostPolicy[KnobName];
}

/** A preset by name as a resolved policy (undefined if no such preset). */
export function presetPolicy(name: string): ResolvedPolicy | undefined {
  const preset = getPreset(name);
  return preset === undefined ? undefined : { name, base: name, overrides: [], policy: preset.policy };
}

/** Validates a parsed JSON policy document and resolves it against its preset. */
export function parsePolicy(doc: unknown): PolicyParseResult {
  const problems: PolicyProblem[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    return {
      ok: false,
      problems: [{ path: '', message: `a policy must be a JSON object, got ${describeType(doc)}` }],
    };
  }
  const record = doc as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!(TOP_LEVEL_KEYS as readonly string[]).includes(key)) {
      problems.push({
        path: `/${key}`,
        message: `unknown property '${key}' (a policy has: ${TOP_LEVEL_KEYS.join(', ')})`,
      });
    }
  }
  for (const key of ['$schema', 'description'] as const) {
    if (record[key] !== undefined && typeof record[key] !== 'string') {
      problems.push({ path: `/${key}`, message: `must be a string, got ${describeType(record[key])}` });
    }
  }
  const base = record.extends;
  if (base === undefined) {
    problems.push({
      path: '/extends',
      message: `missing: name the preset to start from (${PRESET_NAMES.join(', ')})`,
    });
  } else if (typeof base !== 'string' || getPreset(base) === undefined) {
    problems.push({
      path: '/extends',
      message: `${describeType(base)} is not a preset; presets: ${PRESET_NAMES.join(', ')}`,
    });
  }
  const overrides: Partial<Record<KnobName, HostPolicy[KnobName]>> = {};
  const knobs = record.knobs;
  if (knobs !== undefined) {
    if (typeof knobs !== 'object' || knobs === null || Array.isArray(knobs)) {
      problems.push({
        path: '/knobs',
        message: `must be an object of knob values, got ${describeType(knobs)}`,
      });
    } else {
      for (const [key, raw] of Object.entries(knobs as Record<string, unknown>)) {
        if (!Object.hasOwn(KNOBS, key)) {
          const hint = closest(key, KNOB_NAMES);
          problems.push({
            path: `/knobs/${key}`,
            message: `unknown knob '${key}'${hint === undefined ? '' : ` (did you mean '${hint}'?)`}; run \`snpsim policies --knobs\` for the list`,
          });
          continue;
        }
        const spec = KNOBS[key as KnobName];
        if (!Value.Check(knobSchema(spec), raw)) {
          problems.push({
            path: `/knobs/${key}`,
            message: `must be ${expected(spec)}, got ${describeType(raw)}`,
          });
          continue;
        }
        overrides[key as KnobName] = knobValue(spec, raw);
      }
    }
  }
  if (problems.length > 0 || typeof base !== 'string') return { ok: false, problems };
  const preset = getPreset(base);
  if (preset === undefined) return { ok: false, problems };
  const policy = Object.freeze({ ...preset.policy, ...overrides }) as HostPolicy;
  const description = typeof record.description === 'string' ? record.description : undefined;
  return {
    ok: true,
    value: {
      name: description ?? `custom (extends ${base})`,
      base,
      overrides: Object.keys(overrides) as KnobName[],
      policy,
    },
  };
}

/** Parses JSON text; a syntax error becomes a problem at the document root. */
export function parsePolicyText(text: string): PolicyParseResult {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, problems: [{ path: '', message: `not valid JSON: ${message}` }] };
  }
  return parsePolicy(doc);
}

/** A knob value as JSON (bigints as hex strings, the form policy files accept). */
export function knobToJson(value: HostPolicy[KnobName]): string | boolean {
  return typeof value === 'bigint' ? `0x${value.toString(16)}` : value;
}

/** A policy as JSON-safe knob values (bigints as hex strings). */
export function policyToJson(policy: HostPolicy): Record<KnobName, string | boolean> {
  return Object.fromEntries(KNOB_NAMES.map((name) => [name, knobToJson(policy[name])])) as Record<
    KnobName,
    string | boolean
  >;
}
