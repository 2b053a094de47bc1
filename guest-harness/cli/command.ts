/** A CLI subcommand: `snpsim <name> [args]`. `run` returns the process exit code. */
export interface CliCommand {
  readonly name: string;
  /** One line for `snpsim --help`. */
  readonly summary: string;
  /** Full usage text for `snpsim <name> --help`. */
  readonly usage: string;
  run(argv: readonly string[], io: CliIo): Promise<number>;
}

/** Where a command writes; tests pass buffers, the launcher passes the process streams. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown; isTTY?: boolean };
  readonly stderr: { write(text: string): unknown; isTTY?: boolean };
}
