// Public entry of the experiments module: configuration matrices, divergence search, invariant fuzzing.
export { type Compared, compareExecutions, type Difference, describeDifference } from './compare.js';
export {
  type Configuration,
  combinations,
  describeSwitches,
  parsePolicySpec,
  parseProfileSpec,
  parseSpecList,
} from './configs.js';
export { type FuzzOptions, type FuzzResult, type FuzzViolation, runFuzz } from './fuzz.js';
export {
  DATA_PAGES,
  type FuzzOp,
  FuzzWorld,
  type HostTarget,
  MUTANTS,
  type MutantName,
} from './fuzz-world.js';
export {
  checkTransition,
  describeEntry,
  INVARIANT_NAMES,
  INVARIANTS,
  type InvariantName,
  InvariantViolation,
  type PageView,
} from './invariants.js';
export {
  MATRIX_FORMAT,
  MATRIX_VERSION,
  type MatrixCell,
  type MatrixOptions,
  type MatrixReport,
  type MatrixRow,
  renderMatrix,
  runMatrix,
} from './matrix.js';
export { type CampaignBudget, type CampaignProgress, createCampaignProgress } from './progress.js';
export {
  findingDocument,
  modelSide,
  type ScenarioDocument,
  type SearchFinding,
  type SearchOptions,
  type SearchResult,
  type SearchSide,
  searchDivergence,
  targetSide,
} from './search.js';
export {
  type GenModel,
  parseReplayToken,
  REPLAY_PATTERN,
  replayToken,
  runCommands,
  type StepCommand,
  StepList,
  type StepOptions,
  type StepSink,
  stepCommandArbitraries,
} from './steps.js';
export {
  PROFILE_VARIANT_NAMES,
  PROFILE_VARIANTS,
  type ProfileDocument,
  type ProfileVariant,
} from './variants.js';
