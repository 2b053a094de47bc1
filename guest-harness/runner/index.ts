// Public entry of the differential runner: observations, diff, expectations, fixtures, reports, run.

export { AgentScenarioTarget, helloPlatform } from './agent-target.js';
export { alignmentClass, COMPARED_KEYS, diffScenario, diffStep, type StepDifference } from './diff.js';
export { defaultRunEnvironment, snpsimVersion } from './environment.js';
export { checkExpect, checkScenarioExpectations, type ExpectationFailure, expectationFor } from './expect.js';
export {
  type Classified,
  classifyDifferences,
  conditionHolds,
  Divergence,
  divergenceApplies,
  EXPECTATIONS_SCHEMA_PATH,
  ExpectationsFile,
  type ExpectedDifference,
  loadExpectations,
  parseExpectations,
  type UnexpectedPass,
  versionParts,
} from './expectations.js';
export {
  FIXTURE_FORMAT,
  FIXTURE_VERSION,
  Fixture,
  FixtureScenario,
  fixtureObservation,
  loadFixture,
} from './fixture.js';
export { FixtureTarget, staleScenarios } from './fixture-target.js';
export { renderJunit, xmlEscape } from './junit.js';
export {
  describe as describeObservation,
  ModelState,
  ObservationKind,
  PageState,
  Platform as PlatformDetails,
  parseInteger,
  StepObservation,
  sameValue,
  VcpuState,
} from './observation.js';
export { createProgress, type Progress, type ProgressStream } from './progress.js';
export { batchObservations, replyValues, requestText, stepObservation } from './replies.js';
export {
  type ErrorInfo,
  emptySummary,
  exitCodeOf,
  REPORT_FORMAT,
  REPORT_SCHEMA_PATH,
  REPORT_VERSION,
  Report as RunReport,
  ScenarioResult,
  ScenarioStatus,
  StepRecord,
  Summary as RunSummary,
  summarize,
  TargetReport,
} from './report.js';
export { evaluateScenario, type RunOptions, type RunOutcome, runDifferential, runOrder } from './run.js';
export { FIXTURE_SCHEMA_PATH, publishedSchemas } from './schemas.js';
export { SimTarget } from './sim-target.js';
export type {
  ModelConfig,
  ReferenceModel,
  ScenarioExecution,
  ScenarioTarget,
  TargetKind,
} from './target.js';
export { parseTargetSpec, type TargetSpec } from './target-spec.js';
export { renderTerminal } from './terminal.js';
