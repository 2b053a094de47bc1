// Public entry of the scenario module (format, loader, published schema, step -> agent requests).

export { renderJsonSchema, SCENARIO_SCHEMA_PATH, scenarioJsonSchema, toJsonSchema } from './json-schema.js';
export {
  DEFAULT_VCPUS,
  type LoadedScenario,
  type LoadOptions,
  loadScenarioDocuments,
  loadScenarios,
  validateScenario,
} from './loader.js';
export { formatProblem, type InputProblem, parseJson, pointerToPath, schemaProblems } from './problems.js';
export {
  apCreationRequest,
  apRequestCode,
  DEFAULT_MARKER_TIMEOUT_MS,
  defaultValid,
  RMPADJUST_RDX_CLEAR_VMSA,
  RMPADJUST_RDX_SET_VMSA,
  scenarioRequests,
  stepRequests,
  u64,
} from './requests.js';
export {
  AP_REQUESTS,
  type ApRequestName,
  type ConcurrentRequest,
  HOST_OPS,
  MODEL_ONLY_OPS,
  MP_STATES,
  type MpStateName,
  type Poke,
  Scenario,
  Step,
  StepExpect,
  type StepOf,
  type StepOp,
  type U64,
} from './schema.js';
