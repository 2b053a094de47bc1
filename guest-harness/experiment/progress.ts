/**
 * Progress of a search or fuzz campaign, bounded by a number of runs and optionally by time. On a
 * terminal: one line rewritten in place, at most ten times a second. In a log (not a TTY): a line
 * each time another tenth of the budget (runs or time, whichever is further along) is used, and one
 * when shrinking starts, so a CI log gets about a dozen lines whatever the budget.
 */
import type { ProgressStream } from '../runner/index.js';

export interface CampaignProgress {
  /** One run finished with `steps` model steps; `shrinking` once a failure is being shrunk. */
  run(steps: number, shrinking: boolean): void;
  /** Clears the in-place line. */
  done(): void;
}

export interface CampaignBudget {
  readonly label: string;
  readonly runs: number;
  readonly seconds?: number;
  readonly quiet?: boolean;
  /** Clock in milliseconds (tests pass a fake one). */
  readonly now?: () => number;
}

const REDRAW_MS = 100;

export function createCampaignProgress(stream: ProgressStream, budget: CampaignBudget): CampaignProgress {
  if (budget.quiet === true) return { run: () => {}, done: () => {} };
  const now = budget.now ?? (() => performance.now());
  const start = now();
  let runs = 0;
  let steps = 0;
  let shrinks = 0;
  let lastTenth = 0;
  let drawnAt = Number.NEGATIVE_INFINITY;
  let drawn = false;
  const rate = (elapsed: number) => (elapsed > 0 ? Math.round((steps * 1000) / elapsed) : 0);
  return {
    run(n, shrinking) {
      const t = now();
      const elapsed = t - start;
      if (shrinking) shrinks++;
      else {
        runs++;
        steps += n;
      }
      const text = shrinking
        ? `${budget.label}: shrinking a counterexample (${shrinks} tries)`
        : `${budget.label}: ${runs}/${budget.runs} runs, ${steps} steps, ${rate(elapsed)} steps/s`;
      if (stream.isTTY) {
        if (t - drawnAt < REDRAW_MS) return;
        drawnAt = t;
        drawn = true;
        stream.write(`\r\x1b[K${text.length > 100 ? `${text.slice(0, 97)}...` : text}`);
        return;
      }
      if (shrinking) {
        if (shrinks === 1) stream.write(`${text}\n`);
        return;
      }
      const byRuns = runs / budget.runs;
      const byTime = budget.seconds === undefined ? 0 : elapsed / (budget.seconds * 1000);
      const tenth = Math.floor(Math.min(1, Math.max(byRuns, byTime)) * 10);
      if (tenth > lastTenth) {
        lastTenth = tenth;
        stream.write(`${text}\n`);
      }
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
    },
  };
}
