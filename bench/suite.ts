/** One measured case of a benchmark suite, as printed in the table and in `--json`. */
export interface BenchRow {
  /** Suite name, e.g. `rmp-check`. */
  readonly suite: string;
  /** Case name, e.g. `random / 1 GiB RMP / batch`. */
  readonly case: string;
  /** What `value` measures, e.g. `ns/check`, `MB/s`, `steps/s`. */
  readonly metric: string;
  readonly value: number;
  /** Operations per second (checks/s, steps/s ...), when meaningful. */
  readonly perSecond?: number;
  /** The reference measured in the same run (native C loop, raw node:crypto SHA-384, raw ssh2 echo). */
  readonly baseline?: { readonly name: string; readonly value: number };
  /** snpsim / baseline throughput (higher is better; 1 means as fast as the baseline). */
  readonly ratio?: number;
  /** The ratio the project aims for, printed beside the measured one. */
  readonly target?: number;
  readonly notes?: string;
}

export interface BenchOptions {
  /** Fewer iterations and smaller tables: for a smoke run, not for numbers worth quoting. */
  readonly quick: boolean;
  /** Progress lines go here (stderr), never to stdout, so `--json` output stays clean. */
  readonly log: (line: string) => void;
}

export interface BenchSuite {
  readonly name: string;
  readonly description: string;
  run(options: BenchOptions): Promise<BenchRow[]>;
}
