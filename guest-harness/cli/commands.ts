/**
 * The subcommand registry: one import and one array entry per command. Each command lives in
 * its own module under guest-harness/cli/.
 */
import type { CliCommand } from './command.js';
import { guestCommand } from './guest.js';
import { measureCommand } from './measure.js';
import { policiesCommand } from './policies.js';
import { runCliCommand } from './run.js';
import { simGuestCommand } from './sim-guest.js';

export const commands: readonly CliCommand[] = [
  guestCommand,
  measureCommand,
  policiesCommand,
  runCliCommand,
  simGuestCommand,
];
