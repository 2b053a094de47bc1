/**
 * The run report: one section per target, one result per scenario with its status, every step's
 * observations on the model and on the target, the differences (unexpected and known), unexpected
 * passes and expectation failures. Its schema is published as `schemas/report.schema.json`; the JSON,
 * JUnit and terminal renderings are all made from this one structure.
 */
import { type Static, Type } from '@sinclair/typebox';
import { ExitCode } from '../errors.js';
import { Platform, StepObservation } from './observation.js';

export const REPORT_SCHEMA_PATH = 'schemas/report.schema.json';
export const REPORT_FORMAT = 'snpsim-report';
export const REPORT_VERSION = 1;

export const ScenarioStatus = Type.Union(
  [
    Type.Literal('pass'),
    Type.Literal('expected-diff'),
    Type.Literal('diff'),
    Type.Literal('unexpected-pass'),
    Type.Literal('fail'),
    Type.Literal('error'),
    Type.Literal('skipped'),
  ],
  {
    description:
      'pass: no difference; expected-diff: only known divergences; diff: unexplained differences; unexpected-pass: a known divergence did not occur; fail: the model contradicts the scenario expectations; error: the run broke (infrastructure); skipped: not runnable on this target',
  },
);
export type ScenarioStatus = Static<typeof ScenarioStatus>;

const Difference = Type.Object(
  {
    step: Type.Integer({ minimum: 1 }),
    label: Type.String(),
    op: Type.String(),
    what: Type.String(),
    model: Type.String(),
    target: Type.String(),
  },
  { title: 'Difference', additionalProperties: false },
);

const ExpectedDifference = Type.Object(
  { ...Difference.properties, reason: Type.String(), link: Type.Optional(Type.String()) },
  { additionalProperties: false },
);

const ErrorInfo = Type.Object(
  { code: Type.String(), message: Type.String(), step: Type.Optional(Type.Integer({ minimum: 1 })) },
  { title: 'ErrorInfo', additionalProperties: false },
);
export type ErrorInfo = Static<typeof ErrorInfo>;

export const StepRecord = Type.Object(
  {
    step: Type.Integer({ minimum: 1 }),
    label: Type.String(),
    op: Type.String(),
    /** The agent request lines the step became (without seq). */
    requests: Type.Array(Type.String()),
    model: Type.Optional(StepObservation),
    target: Type.Optional(StepObservation),
  },
  { additionalProperties: false },
);
export type StepRecord = Static<typeof StepRecord>;

export const ScenarioResult = Type.Object(
  {
    name: Type.String(),
    file: Type.String(),
    status: ScenarioStatus,
    reason: Type.Optional(Type.String({ description: 'why skipped, or what broke' })),
    firstDifference: Type.Optional(Difference),
    differences: Type.Array(Difference),
    expectedDifferences: Type.Array(ExpectedDifference),
    unexpectedPasses: Type.Array(
      Type.Object(
        { entry: Type.Integer({ minimum: 0 }), step: Type.String(), reason: Type.String() },
        { additionalProperties: false },
      ),
    ),
    expectationFailures: Type.Array(
      Type.Object(
        { step: Type.Integer({ minimum: 1 }), label: Type.String(), problem: Type.String() },
        { additionalProperties: false },
      ),
    ),
    error: Type.Optional(ErrorInfo),
    durationMs: Type.Optional(Type.Number({ minimum: 0 })),
    steps: Type.Array(StepRecord),
  },
  { additionalProperties: false },
);
export type ScenarioResult = Static<typeof ScenarioResult>;

export const Summary = Type.Object(
  {
    total: Type.Integer({ minimum: 0 }),
    pass: Type.Integer({ minimum: 0 }),
    'expected-diff': Type.Integer({ minimum: 0 }),
    diff: Type.Integer({ minimum: 0 }),
    'unexpected-pass': Type.Integer({ minimum: 0 }),
    fail: Type.Integer({ minimum: 0 }),
    error: Type.Integer({ minimum: 0 }),
    skipped: Type.Integer({ minimum: 0 }),
  },
  { additionalProperties: false },
);
export type Summary = Static<typeof Summary>;

export const TargetReport = Type.Object(
  {
    target: Type.String({ description: 'the --target value' }),
    kind: Type.Union([
      Type.Literal('model'),
      Type.Literal('sim'),
      Type.Literal('ssh'),
      Type.Literal('fixture'),
    ]),
    platform: Platform,
    /** Host policy and firmware profile of the reference model for this target. */
    policy: Type.String(),
    profile: Type.String(),
    summary: Summary,
    /** Set when the target as a whole broke (unreachable, died); remaining scenarios are errors. */
    error: Type.Optional(ErrorInfo),
    scenarios: Type.Array(ScenarioResult),
  },
  { additionalProperties: false },
);
export type TargetReport = Static<typeof TargetReport>;

export const Report = Type.Object(
  {
    $schema: Type.Optional(Type.String()),
    format: Type.Literal(REPORT_FORMAT),
    version: Type.Literal(REPORT_VERSION),
    snpsim: Type.String({ description: 'snpsim version' }),
    startedAt: Type.String({ description: 'ISO 8601' }),
    finishedAt: Type.String({ description: 'ISO 8601' }),
    /** False when the run stopped early (an infrastructure failure, an interrupt). */
    complete: Type.Boolean(),
    exitCode: Type.Integer({ minimum: 0, maximum: 3 }),
    policy: Type.String(),
    profile: Type.String(),
    scenarios: Type.Integer({ minimum: 0, description: 'scenarios loaded' }),
    expectations: Type.Optional(Type.String({ description: 'expectations file used' })),
    warnings: Type.Array(Type.String()),
    targets: Type.Array(TargetReport),
  },
  { additionalProperties: false, description: 'snpsim run report' },
);
export type Report = Static<typeof Report>;

export function emptySummary(): Summary {
  return {
    total: 0,
    pass: 0,
    'expected-diff': 0,
    diff: 0,
    'unexpected-pass': 0,
    fail: 0,
    error: 0,
    skipped: 0,
  };
}

export function summarize(results: readonly ScenarioResult[]): Summary {
  const s = emptySummary();
  for (const r of results) {
    s.total++;
    s[r.status]++;
  }
  return s;
}

/**
 * The exit code of a run: 3 if anything broke (a target error or a scenario error), else 1 if any
 * difference, model failure or unexpected pass, else 0. (2 is for input errors, before anything runs.)
 */
export function exitCodeOf(targets: readonly TargetReport[]): ExitCode {
  let code: ExitCode = ExitCode.OK;
  for (const t of targets) {
    if (t.error !== undefined || t.summary.error > 0) return ExitCode.INFRASTRUCTURE;
    if (t.summary.diff + t.summary.fail + t.summary['unexpected-pass'] > 0) code = ExitCode.DIFFERENCES;
  }
  return code;
}
