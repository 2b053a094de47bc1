import { ExitCode, SnpsimError } from '../errors.js';
import type { CliCommand, CliIo } from './command.js';
import { commands } from './commands.js';

const processIo: CliIo = { stdout: process.stdout, stderr: process.stderr };

function overview(list: readonly CliCommand[]): string {
  const width = Math.max(8, ...list.map((c) => c.name.length));
  const lines = list.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`);
  return [
    'snpsim: a model of AMD SEV-SNP and a differential harness against real SNP guests',
    '',
    'usage: snpsim <command> [options]        snpsim <command> --help',
    '',
    'commands:',
    ...lines,
    '',
    'exit codes: 0 ok / no differences, 1 differences, 2 usage or input error, 3 infrastructure failure',
    '',
  ].join('\n');
}

/** Runs the CLI; returns the exit code. Errors never escape as stack traces. */
export async function main(argv: readonly string[], io: CliIo = processIo, list = commands): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(overview(list));
    return name === undefined ? ExitCode.USAGE : ExitCode.OK;
  }
  const command = list.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr.write(`snpsim: unknown command '${name}'\n\n${overview(list)}`);
    return ExitCode.USAGE;
  }
  if (rest.includes('--help') || rest.includes('-h')) {
    io.stdout.write(`${command.usage.trimEnd()}\n`);
    return ExitCode.OK;
  }
  try {
    return await command.run(rest, io);
  } catch (error) {
    if (SnpsimError.is(error)) {
      io.stderr.write(`snpsim ${name}: ${error.code}: ${error.message}\n`);
      return error.exitCode;
    }
    const message = error instanceof Error ? (error.stack ?? error.message) : String(error);
    io.stderr.write(`snpsim ${name}: internal error (please report): ${message}\n`);
    return ExitCode.INFRASTRUCTURE;
  }
}
