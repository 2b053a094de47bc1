/**
 * The subcommand registry: one import and one array entry per command. Each command lives in
 * its own module under guest-harness/cli/.
 */
import type { CliCommand } from './command.js';
import { measureCommand } from './measure.js';
import { policiesCommand } from './policies.js';
import { runCliCommand } from './run.js';

export const commands: readonly CliCommand[] = [measureCommand, policiesCommand, runCliCommand];
