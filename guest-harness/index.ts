export type { CliCommand, CliIo } from './cli/command.js';
export { type GuestArgs, parseGuestArgs } from './cli/guest.js';
export { main } from './cli/main.js';
export {
  createRunCommand,
  parseRunArgs,
  RUN_USAGE,
  type RunEnvironment,
  runCommand,
} from './cli/run.js';
export { parseSearchArgs, type SearchArgs } from './cli/search.js';
export { SSH_PARSE_OPTIONS, type SshCliOptions, sshOptionsFromArgs, sshUsage } from './cli/ssh-options.js';
export { ExitCode, SnpsimError, SnpsimErrorCode } from './errors.js';
export * from './experiment/index.js';
export * from './model-guest/index.js';
export * from './protocol/index.js';
export * from './runner/index.js';
export * from './scenario/index.js';
export * from './sim/index.js';
export * from './ssh/index.js';
export * from './targets/index.js';
