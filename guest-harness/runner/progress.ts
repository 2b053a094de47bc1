/**
 * Progress of a long run. On a terminal: one line rewritten in place. In a log (not a TTY): a line
 * only when another tenth of the work is done, so a CI log gets at most about ten lines per run.
 */

export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

export interface Progress {
  /** One unit of work finished (a scenario on a target). */
  tick(label: string): void;
  /** The run ended; clears the in-place line. */
  done(): void;
}

export function createProgress(
  stream: ProgressStream,
  total: number,
  options: { quiet?: boolean } = {},
): Progress {
  let count = 0;
  let lastTenth = 0;
  const width = String(total).length;
  if (options.quiet || total === 0) return { tick: () => {}, done: () => {} };
  if (stream.isTTY) {
    let drawn = false;
    return {
      tick(label) {
        count++;
        const text = `[${String(count).padStart(width)}/${total}] ${label}`;
        stream.write(`\r\x1b[K${text.length > 100 ? `${text.slice(0, 97)}...` : text}`);
        drawn = true;
      },
      done() {
        if (drawn) stream.write('\r\x1b[K');
      },
    };
  }
  return {
    tick() {
      count++;
      const tenth = Math.floor((count * 10) / total);
      if (tenth > lastTenth) {
        lastTenth = tenth;
        stream.write(`progress: ${count}/${total} scenario runs (${Math.floor((count * 100) / total)}%)\n`);
      }
    },
    done() {},
  };
}
