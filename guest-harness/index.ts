export type { CliCommand, CliIo } from './cli/command.js';
export { main } from './cli/main.js';
export { ExitCode, SnpsimError, SnpsimErrorCode } from './errors.js';
