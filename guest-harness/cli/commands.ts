/**
 * The subcommand registry: one import and one array entry per command. Each command lives in
 * its own module under guest-harness/cli/.
 */
import type { CliCommand } from './command.js';
import { experimentCommand } from './experiment.js';
import { fuzzCommand } from './fuzz.js';
import { guestCommand } from './guest.js';
import { measureCommand } from './measure.js';
import { policiesCommand } from './policies.js';
import { runCliCommand } from './run.js';
import { searchCommand } from './search.js';
import { simGuestCommand } from './sim-guest.js';

export const commands: readonly CliCommand[] = [
  experimentCommand,
  fuzzCommand,
  guestCommand,
  measureCommand,
  policiesCommand,
  runCliCommand,
  searchCommand,
  simGuestCommand,
];
