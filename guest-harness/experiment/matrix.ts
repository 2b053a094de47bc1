/**
 * `snpsim experiment`: one scenario corpus under every configuration (host policy × platform
 * profile) of the model, and a matrix of where they diverge. Per scenario, the configurations are
 * grouped into classes of identical runs (A = the class of the baseline, the first configuration);
 * every other class shows its first differing observation against the baseline.
 */
import { runScenarioOnModel } from '../model-guest/index.js';
import type { ErrorInfo, Progress, ScenarioExecution } from '../runner/index.js';
import type { LoadedScenario } from '../scenario/index.js';
import { type Compared, compareExecutions, type Difference, describeDifference } from './compare.js';
import type { Configuration } from './configs.js';

export const MATRIX_FORMAT = 'snpsim-experiment';
export const MATRIX_VERSION = 1;

/** One scenario under one configuration. */
export interface MatrixCell {
  /** Class letter: configurations with identical runs share it; A is the baseline's class. */
  readonly class: string;
  /** Differences from the baseline (0 in class A). */
  readonly differences: number;
  readonly firstDifference?: Difference;
  /** The model failed (a model error, not an outcome): the cell is `!`. */
  readonly error?: ErrorInfo;
}

export interface MatrixRow {
  readonly scenario: string;
  readonly file: string;
  /** More than one class, or an error. */
  readonly diverges: boolean;
  /** One cell per configuration, in configuration order. */
  readonly cells: readonly MatrixCell[];
}

export interface MatrixReport {
  readonly format: typeof MATRIX_FORMAT;
  readonly version: typeof MATRIX_VERSION;
  readonly compared: Compared;
  /** Configurations in column order; the first is the baseline. */
  readonly configurations: readonly {
    readonly label: string;
    readonly policy: string;
    readonly profile: string;
  }[];
  readonly summary: {
    readonly scenarios: number;
    readonly diverging: number;
    readonly errors: number;
  };
  readonly rows: readonly MatrixRow[];
}

export interface MatrixOptions {
  readonly compared?: Compared;
  readonly progress?: Progress;
}

const letter = (i: number) => (i < 26 ? String.fromCharCode(65 + i) : `Z${i - 25}`);

/** One scenario's row: every configuration's run, classed against the earlier classes. */
function row(scenario: LoadedScenario, configs: readonly Configuration[], options: MatrixOptions): MatrixRow {
  const compared = options.compared ?? 'guest';
  const runs: ScenarioExecution[] = configs.map((c) => {
    const run = runScenarioOnModel(scenario, { policy: c.policy, profile: c.profile });
    options.progress?.tick(`${scenario.name} · ${c.label}`);
    return run;
  });
  const classes: { run: ScenarioExecution; letter: string }[] = [];
  const baseline = runs[0]!;
  const cells = runs.map((run): MatrixCell => {
    if (run.error !== undefined) return { class: '!', differences: 0, error: run.error };
    let found = classes.find((c) => compareExecutions(scenario, c.run, run, compared).length === 0);
    if (found === undefined) {
      found = { run, letter: letter(classes.length) };
      classes.push(found);
    }
    if (baseline.error !== undefined || run === baseline) return { class: found.letter, differences: 0 };
    const diffs = compareExecutions(scenario, baseline, run, compared);
    return {
      class: found.letter,
      differences: diffs.length,
      ...(diffs[0] !== undefined ? { firstDifference: diffs[0] } : {}),
    };
  });
  return {
    scenario: scenario.name,
    file: scenario.file,
    diverges: classes.length > 1 || cells.some((c) => c.error !== undefined),
    cells,
  };
}

/** Runs every scenario under every configuration (the first is the baseline). */
export function runMatrix(
  scenarios: readonly LoadedScenario[],
  configs: readonly Configuration[],
  options: MatrixOptions = {},
): MatrixReport {
  if (configs.length === 0) throw new RangeError('runMatrix: no configuration');
  const rows = scenarios.map((s) => row(s, configs, options));
  options.progress?.done();
  return {
    format: MATRIX_FORMAT,
    version: MATRIX_VERSION,
    compared: options.compared ?? 'guest',
    configurations: configs.map((c) => ({ label: c.label, policy: c.policy.name, profile: c.profile.name })),
    summary: {
      scenarios: rows.length,
      diverging: rows.filter((r) => r.diverges).length,
      errors: rows.filter((r) => r.cells.some((c) => c.error !== undefined)).length,
    },
    rows,
  };
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths: number[] = [];
  for (const r of rows) {
    for (const [i, cell] of r.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows.map((r) =>
    r
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[0] ?? 0) : cell.padStart(widths[i] ?? 0)))
      .join('  ')
      .trimEnd(),
  );
}

/** The matrix as text: configurations, the class table, the first difference of each other class. */
export function renderMatrix(report: MatrixReport, options: { readonly all?: boolean } = {}): string {
  const n = report.configurations.length;
  const head = report.configurations.map((_, i) => `[${i + 1}]`);
  const lines = [
    `configurations (${report.compared === 'model' ? 'guest-observable and model state' : 'guest-observable'} observations; baseline [1]):`,
    ...report.configurations.map((c, i) => `  ${head[i]} ${c.label}`),
    '',
  ];
  const shown = report.rows.filter((r) => options.all === true || r.diverges);
  if (shown.length > 0) {
    lines.push(
      ...table([['scenario', ...head], ...shown.map((r) => [r.scenario, ...r.cells.map((c) => c.class)])]),
    );
    lines.push('');
  }
  const details = shown.filter((r) => r.diverges);
  if (details.length > 0) {
    lines.push('first differences against [1]:');
    for (const r of details) {
      lines.push(`  ${r.scenario}`);
      const printed = new Set<string>();
      r.cells.forEach((c, i) => {
        if (c.error !== undefined) {
          lines.push(`    ${head[i]} model error: ${c.error.code}: ${c.error.message.split('\n')[0]}`);
        } else if (c.firstDifference !== undefined && !printed.has(c.class)) {
          printed.add(c.class);
          const same = r.cells
            .map((x, j) => (x.class === c.class && j !== i ? head[j] : undefined))
            .filter((x) => x !== undefined);
          const names: [string, string] = [head[0]!, head[i]!];
          lines.push(
            `    ${head[i]}${same.length > 0 ? ` (= ${same.join(' ')})` : ''} ${describeDifference(c.firstDifference, c.differences - 1, names)}`,
          );
        }
      });
    }
    lines.push('');
  }
  const s = report.summary;
  lines.push(
    `${s.diverging} of ${s.scenarios} scenario${s.scenarios === 1 ? '' : 's'} diverge across ${n} configuration${n === 1 ? '' : 's'}${s.errors > 0 ? `; ${s.errors} with model errors` : ''}`,
  );
  return `${lines.join('\n')}\n`;
}
