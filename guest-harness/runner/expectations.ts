/**
 * The expectations file: reviewed, known divergences between the model and a target, each with a
 * reason, matched per scenario and step and conditioned on the target's platform details (as jsdom's
 * to-run.yaml and undici's expectation.json do). A known divergence that does not occur is an
 * unexpected pass and is reported.
 */
import { readFile } from 'node:fs/promises';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { formatProblem, parseJson, schemaProblems } from '../scenario/index.js';
import { globMatch } from '../ssh/index.js';
import type { StepDifference } from './diff.js';
import type { Platform } from './observation.js';

const Condition = Type.Union(
  [
    Type.String({ minLength: 1, maxLength: 200 }),
    Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { minItems: 1 }),
  ],
  {
    description:
      'a value pattern (`*` and `?` wildcards, as OpenSSH patterns), a version comparison (`<6.15`, `>=6.11.2`, `=6.12`), or a list of them (any matches)',
  },
);

export const Divergence = Type.Object(
  {
    scenario: Type.String({ minLength: 1, description: 'scenario name (`*` and `?` wildcards allowed)' }),
    step: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Integer({ minimum: 1 })], {
        description: 'step id/label or 1-based step number (default: any step)',
      }),
    ),
    what: Type.Optional(
      Type.String({
        minLength: 1,
        description: 'difference kind: answer, vm, or a response key (default: any)',
      }),
    ),
    target: Type.Optional(
      Type.String({ minLength: 1, description: 'target observation (e.g. "0x0") the divergence must show' }),
    ),
    when: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_]*$' }), Condition, {
        description:
          'platform conditions, all of which must hold: any platform key (kernel, host_kernel, firmware, family, model, microcode, policy, profile, backend) or `target`',
      }),
    ),
    reason: Type.String({ minLength: 10, description: 'why this divergence is expected (reviewed)' }),
    link: Type.Optional(Type.String({ description: 'a reference: mail, commit, issue' })),
  },
  { additionalProperties: false },
);
export type Divergence = Static<typeof Divergence>;

export const ExpectationsFile = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    version: Type.Literal(1),
    divergences: Type.Array(Divergence),
  },
  { additionalProperties: false, description: 'snpsim known divergences (expectations file)' },
);
export type ExpectationsFile = Static<typeof ExpectationsFile>;

export const EXPECTATIONS_SCHEMA_PATH = 'schemas/expectations.schema.json';

/** Loads and validates an expectations file; problems name the file and JSON path. */
export async function loadExpectations(file: string): Promise<ExpectationsFile> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SnpsimError(
      SnpsimErrorCode.INPUT_INVALID,
      `${file}: cannot read the expectations file: ${(error as Error).message}`,
      {
        file,
      },
    );
  }
  return parseExpectations(file, text);
}

export function parseExpectations(file: string, text: string): ExpectationsFile {
  const parsed = parseJson(file, text);
  const problems =
    'problem' in parsed
      ? [parsed.problem]
      : schemaProblems(file, ExpectationsFile, Value.Errors(ExpectationsFile, parsed.value));
  if ('value' in parsed && problems.length === 0) {
    const doc = parsed.value as ExpectationsFile;
    doc.divergences.forEach((d, i) => {
      for (const [key, cond] of Object.entries(d.when ?? {})) {
        for (const c of Array.isArray(cond) ? cond : [cond]) {
          if (/^(<=|>=|<|>|=)/.test(c) && versionParts(c.replace(/^(<=|>=|<|>|=)/, '')) === undefined) {
            problems.push({
              file,
              path: `$.divergences[${i}].when.${key}`,
              message: `'${c}' is not a version comparison such as '<6.15'`,
            });
          }
        }
      }
    });
    if (problems.length === 0) return doc;
  }
  throw new SnpsimError(
    SnpsimErrorCode.INPUT_INVALID,
    `${problems.length} problem${problems.length === 1 ? '' : 's'} in the expectations file; nothing was run:\n  ${problems.map(formatProblem).join('\n  ')}`,
    { problems },
  );
}

/** `6.12.11-amd64` -> [6, 12, 11]; undefined when it does not start with a number. */
export function versionParts(text: string): number[] | undefined {
  const m = /^(\d+(?:\.\d+)*)/.exec(text.trim());
  return m ? m[1]!.split('.').map(Number) : undefined;
}

function compareVersions(a: readonly number[], b: readonly number[]): number {
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** One condition against one platform value. */
export function conditionHolds(condition: string, value: string | undefined): boolean {
  if (value === undefined) return false;
  const m = /^(<=|>=|<|>|=)(.+)$/.exec(condition);
  if (m) {
    const want = versionParts(m[2]!);
    const have = versionParts(value);
    if (want === undefined || have === undefined) return false;
    // `=6.12` matches 6.12 and 6.12.x: compare on the condition's precision.
    const c = compareVersions(have.slice(0, m[1] === '=' ? want.length : have.length), want);
    switch (m[1]) {
      case '<':
        return c < 0;
      case '<=':
        return c <= 0;
      case '>':
        return c > 0;
      case '>=':
        return c >= 0;
      default:
        return c === 0;
    }
  }
  return globMatch(value, condition);
}

/** Whether an entry applies to this scenario on this target (name and every platform condition). */
export function divergenceApplies(
  d: Divergence,
  scenario: string,
  target: string,
  platform: Platform,
): boolean {
  if (!globMatch(scenario, d.scenario)) return false;
  for (const [key, cond] of Object.entries(d.when ?? {})) {
    const value = key === 'target' ? target : platform[key];
    if (!(Array.isArray(cond) ? cond : [cond]).some((c) => conditionHolds(c, value))) return false;
  }
  return true;
}

function stepMatches(d: Divergence, diff: StepDifference): boolean {
  if (d.step !== undefined && d.step !== diff.step && d.step !== diff.label) return false;
  if (d.what !== undefined && d.what !== diff.what) return false;
  if (d.target !== undefined && !diff.target.startsWith(d.target)) return false;
  return true;
}

export interface ExpectedDifference extends StepDifference {
  readonly reason: string;
  readonly link?: string;
}

export interface UnexpectedPass {
  /** The expectations entry (index in the file) and its step, `*` for any. */
  readonly entry: number;
  readonly step: string;
  readonly reason: string;
}

export interface Classified {
  readonly unexpected: StepDifference[];
  readonly expected: ExpectedDifference[];
  readonly unexpectedPasses: UnexpectedPass[];
}

/** Splits a scenario's differences into expected and unexpected ones, and finds unexpected passes. */
export function classifyDifferences(
  file: ExpectationsFile | undefined,
  scenario: string,
  target: string,
  platform: Platform,
  differences: readonly StepDifference[],
): Classified {
  const applicable = (file?.divergences ?? [])
    .map((d, entry) => ({ d, entry }))
    .filter(({ d }) => divergenceApplies(d, scenario, target, platform));
  const used = new Set<number>();
  const unexpected: StepDifference[] = [];
  const expected: ExpectedDifference[] = [];
  for (const diff of differences) {
    const hit = applicable.find(({ d }) => stepMatches(d, diff));
    if (hit === undefined) unexpected.push(diff);
    else {
      used.add(hit.entry);
      expected.push({
        ...diff,
        reason: hit.d.reason,
        ...(hit.d.link !== undefined ? { link: hit.d.link } : {}),
      });
    }
  }
  const unexpectedPasses = applicable
    .filter(({ entry }) => !used.has(entry))
    .map(({ d, entry }) => ({ entry, step: d.step === undefined ? '*' : String(d.step), reason: d.reason }));
  return { unexpected, expected, unexpectedPasses };
}
