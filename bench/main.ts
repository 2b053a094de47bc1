/**
 * `npm run bench [-- --json] [-- --quick] [-- --suite NAME]`: runs the tinybench suites and prints a
 * table per suite (or one JSON document with --json). Benchmarks never run inside `npm test`.
 */
import { parseArgs } from 'node:util';
import type { BenchRow } from './suite.js';
import { suites } from './suites.js';

function formatNumber(value: number): string {
  if (!Number.isFinite(value)) return String(value);
  if (Math.abs(value) >= 1e6) return value.toExponential(3);
  if (Math.abs(value) >= 100) return value.toFixed(0);
  if (Math.abs(value) >= 1) return value.toFixed(2);
  return value.toPrecision(3);
}

function table(rows: readonly BenchRow[]): string {
  const header = ['case', 'metric', 'value', 'per second', 'baseline', 'ratio', 'target'];
  const body = rows.map((r) => [
    r.case,
    r.metric,
    formatNumber(r.value),
    r.perSecond === undefined ? '' : formatNumber(r.perSecond),
    r.baseline === undefined ? '' : `${r.baseline.name} ${formatNumber(r.baseline.value)}`,
    r.ratio === undefined ? '' : r.ratio.toFixed(2),
    r.target === undefined ? '' : `>= ${r.target}`,
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]) => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ');
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n');
}

async function run(): Promise<number> {
  const { values } = parseArgs({
    options: {
      json: { type: 'boolean', default: false },
      quick: { type: 'boolean', default: false },
      suite: { type: 'string', multiple: true },
    },
  });
  const selected = values.suite === undefined ? suites : suites.filter((s) => values.suite?.includes(s.name));
  if (selected.length === 0) {
    process.stderr.write(`bench: no suite matches; suites: ${suites.map((s) => s.name).join(', ')}\n`);
    return 2;
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const results: { suite: string; description: string; rows: BenchRow[] }[] = [];
  for (const suite of selected) {
    log(`bench: ${suite.name}: ${suite.description}`);
    const rows = await suite.run({ quick: values.quick ?? false, log });
    results.push({ suite: suite.name, description: suite.description, rows });
    if (!values.json) process.stdout.write(`\n## ${suite.name}: ${suite.description}\n\n${table(rows)}\n`);
  }
  if (values.json) {
    const doc = { node: process.version, platform: `${process.platform}-${process.arch}`, suites: results };
    process.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  }
  return 0;
}

process.exitCode = await run();
