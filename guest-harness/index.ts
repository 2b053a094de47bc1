export type { CliCommand, CliIo } from './cli/command.js';
export { main } from './cli/main.js';
export {
  createRunCommand,
  parseRunArgs,
  RUN_USAGE,
  type RunEnvironment,
  runCommand,
  type SshCliOptions,
} from './cli/run.js';
export { ExitCode, SnpsimError, SnpsimErrorCode } from './errors.js';
export * from './protocol/index.js';
export * from './runner/index.js';
export * from './scenario/index.js';
export * from './sim/index.js';
export * from './ssh/index.js';
export * from './targets/index.js';
export * from './model-guest/index.js';
export * from './experiment/index.js';
