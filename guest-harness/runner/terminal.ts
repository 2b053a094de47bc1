/**
 * The terminal summary: per target, one line per scenario (status, and for a difference the first
 * differing step with both values), then the counts and the exit code.
 */
import type { Report, ScenarioResult, ScenarioStatus, TargetReport } from './report.js';

const LABEL: Readonly<Record<ScenarioStatus, string>> = Object.freeze({
  pass: 'PASS ',
  'expected-diff': 'KNOWN',
  diff: 'DIFF ',
  'unexpected-pass': 'UPASS',
  fail: 'FAIL ',
  error: 'ERROR',
  skipped: 'SKIP ',
});

function line(r: ScenarioResult): string {
  const head = `  ${LABEL[r.status]} ${r.name}`;
  switch (r.status) {
    case 'diff': {
      const d = r.firstDifference!;
      const more = r.differences.length > 1 ? ` (+${r.differences.length - 1} more)` : '';
      return `${head}: step ${d.step} (${d.label}) ${d.what}: model ${d.model} | target ${d.target}${more}`;
    }
    case 'fail': {
      const f = r.expectationFailures[0]!;
      return `${head}: step ${f.step} (${f.label}) the model contradicts the scenario: ${f.problem}`;
    }
    case 'unexpected-pass': {
      const u = r.unexpectedPasses[0]!;
      return `${head}: known divergence (expectations entry #${u.entry}, step ${u.step}) did not occur: ${u.reason}`;
    }
    case 'expected-diff': {
      const d = r.expectedDifferences[0]!;
      return `${head}: step ${d.step} (${d.label}) ${d.what} differs as expected: ${d.reason}`;
    }
    case 'error':
      return `${head}: ${r.error ? `${r.error.code}: ${r.error.message}` : (r.reason ?? 'error')}`;
    case 'skipped':
      return `${head}: ${r.reason ?? 'skipped'}`;
    default:
      return head;
  }
}

function counts(t: TargetReport): string {
  const s = t.summary;
  const parts = [`${s.pass} pass`, `${s.diff} diff`];
  if (s['expected-diff']) parts.push(`${s['expected-diff']} known`);
  if (s['unexpected-pass']) parts.push(`${s['unexpected-pass']} unexpected pass`);
  if (s.fail) parts.push(`${s.fail} fail`);
  parts.push(`${s.error} error`);
  if (s.skipped) parts.push(`${s.skipped} skipped`);
  return `${parts.join(', ')} (of ${s.total})`;
}

/** The whole summary; `verbose` also lists passing scenarios. */
export function renderTerminal(report: Report, options: { verbose?: boolean } = {}): string {
  const out: string[] = [];
  for (const t of report.targets) {
    const platform = ['backend', 'kernel', 'family', 'model', 'host_kernel', 'firmware']
      .filter((k) => t.platform[k] !== undefined)
      .map((k) => `${k}=${t.platform[k]}`)
      .join(' ');
    out.push(
      `target ${t.target} (model: policy ${t.policy}, profile ${t.profile}${platform ? `; ${platform}` : ''})`,
    );
    for (const r of t.scenarios) if (options.verbose || r.status !== 'pass') out.push(line(r));
    if (t.error) out.push(`  target error: ${t.error.code}: ${t.error.message}`);
    out.push(`  ${counts(t)}`);
  }
  for (const w of report.warnings) out.push(`warning: ${w}`);
  const verdict =
    report.exitCode === 0
      ? 'no differences'
      : report.exitCode === 1
        ? 'differences found'
        : 'run incomplete (infrastructure failure)';
  out.push(`${verdict}${report.complete ? '' : '; partial run'} (exit ${report.exitCode})`);
  return `${out.join('\n')}\n`;
}
