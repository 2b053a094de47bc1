/**
 * Fixtures: a target's observations recorded with its platform details (CPU, firmware, host and
 * guest kernel, policy ...) so a hardware run can be replayed offline (`--target fixture:FILE`), as
 * v86 does with its native fixtures. Each scenario is stored with the hash of its canonical JSON; a
 * scenario edited since the recording is not replayed against stale observations.
 */
import { readFile } from 'node:fs/promises';
import { type Static, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { formatProblem, parseJson, schemaProblems } from '../scenario/index.js';
import { Platform, StepObservation } from './observation.js';

export const FIXTURE_FORMAT = 'snpsim-fixture';
export const FIXTURE_VERSION = 1;

export const FixtureScenario = Type.Object(
  {
    name: Type.String({ minLength: 1 }),
    hash: Type.String({ pattern: '^[0-9a-f]{64}$' }),
    /** ok: observations complete; error: the run broke at some step (observations up to it). */
    status: Type.Union([Type.Literal('ok'), Type.Literal('error'), Type.Literal('skipped')]),
    error: Type.Optional(
      Type.Object({ code: Type.String(), message: Type.String() }, { additionalProperties: false }),
    ),
    reason: Type.Optional(Type.String()),
    observations: Type.Array(StepObservation),
  },
  { additionalProperties: false },
);
export type FixtureScenario = Static<typeof FixtureScenario>;

export const Fixture = Type.Object(
  {
    format: Type.Literal(FIXTURE_FORMAT),
    version: Type.Literal(FIXTURE_VERSION),
    snpsim: Type.String(),
    recordedAt: Type.String(),
    /** The target the observations came from (`ssh://root@guest`, `sim` ...). */
    target: Type.String(),
    platform: Platform,
    scenarios: Type.Array(FixtureScenario),
  },
  { additionalProperties: false, description: 'snpsim fixture: recorded target observations' },
);
export type Fixture = Static<typeof Fixture>;

export async function loadFixture(file: string): Promise<Fixture> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new SnpsimError(
      SnpsimErrorCode.FIXTURE_INVALID,
      `${file}: cannot read the fixture: ${(error as Error).message}`,
      {
        file,
      },
    );
  }
  const parsed = parseJson(file, text);
  const problems =
    'problem' in parsed
      ? [parsed.problem]
      : schemaProblems(file, Fixture, Value.Errors(Fixture, parsed.value));
  if (problems.length > 0 || !('value' in parsed)) {
    throw new SnpsimError(
      SnpsimErrorCode.FIXTURE_INVALID,
      `${file} is not a valid snpsim fixture:\n  ${problems.slice(0, 20).map(formatProblem).join('\n  ')}`,
      { problems },
    );
  }
  const fixture = parsed.value as Fixture;
  const names = new Set<string>();
  for (const [i, s] of fixture.scenarios.entries()) {
    if (names.has(s.name)) {
      throw new SnpsimError(
        SnpsimErrorCode.FIXTURE_INVALID,
        `${file}: $.scenarios[${i}].name: scenario '${s.name}' is recorded twice`,
      );
    }
    names.add(s.name);
  }
  return fixture;
}

/** Observations as stored: without model-internal state, which a real target never has. */
export function fixtureObservation(obs: StepObservation): StepObservation {
  const { model: _model, ...rest } = obs;
  return rest;
}
