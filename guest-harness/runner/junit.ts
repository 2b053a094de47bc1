/**
 * JUnit XML rendering of a run report, for CI systems: one <testsuite> per target, one <testcase>
 * per scenario. diff / fail / unexpected-pass are <failure>s, error is an <error>, skipped is
 * <skipped>; known divergences are noted in <system-out> of a passing test case.
 */
import { describe as describeObservation } from './observation.js';
import type { Report, ScenarioResult, TargetReport } from './report.js';

/** Whether XML 1.0 can carry this UTF-16 code unit (tab, LF, CR and U+0020 and above, minus U+FFFE/U+FFFF). */
function xmlChar(code: number): boolean {
  return code === 0x9 || code === 0xa || code === 0xd || (code >= 0x20 && code !== 0xfffe && code !== 0xffff);
}

/** XML 1.0 text/attribute escaping; characters XML cannot carry become U+FFFD. */
export function xmlEscape(text: string): string {
  let clean = '';
  for (let i = 0; i < text.length; i++) clean += xmlChar(text.charCodeAt(i)) ? text[i] : '\ufffd';
  return clean
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

function attrs(map: Record<string, string | number | undefined>): string {
  return Object.entries(map)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => ` ${k}="${xmlEscape(String(v))}"`)
    .join('');
}

function details(r: ScenarioResult): string {
  const lines: string[] = [];
  for (const d of r.differences) {
    lines.push(`step ${d.step} (${d.label}, ${d.op}) ${d.what}: model ${d.model} | target ${d.target}`);
  }
  for (const f of r.expectationFailures) lines.push(`step ${f.step} (${f.label}) expectation: ${f.problem}`);
  for (const u of r.unexpectedPasses) {
    lines.push(
      `unexpected pass: expectations entry #${u.entry} (step ${u.step}) did not diverge: ${u.reason}`,
    );
  }
  if (r.error) lines.push(`${r.error.code}: ${r.error.message}`);
  for (const s of r.steps) {
    lines.push(
      `  ${s.step}. ${s.label}: ${s.requests.join(' ; ') || '(model step)'}\n      model:  ${describeObservation(s.model)}\n      target: ${describeObservation(s.target)}`,
    );
  }
  return lines.join('\n');
}

function firstLine(r: ScenarioResult): string {
  const d = r.firstDifference;
  if (d) return `step ${d.step} (${d.label}) ${d.what}: model ${d.model}, target ${d.target}`;
  const f = r.expectationFailures[0];
  if (f) return `step ${f.step} (${f.label}): ${f.problem}`;
  const u = r.unexpectedPasses[0];
  if (u) return `unexpected pass (expectations entry #${u.entry}, step ${u.step})`;
  return r.reason ?? r.status;
}

function testcase(t: TargetReport, r: ScenarioResult): string {
  const head = `    <testcase${attrs({
    classname: `snpsim.${t.kind}`,
    name: r.name,
    file: r.file,
    time: r.durationMs === undefined ? undefined : (r.durationMs / 1000).toFixed(3),
  })}>`;
  const body: string[] = [];
  switch (r.status) {
    case 'diff':
    case 'fail':
    case 'unexpected-pass':
      body.push(
        `      <failure${attrs({ type: r.status, message: firstLine(r) })}>${xmlEscape(details(r))}</failure>`,
      );
      break;
    case 'error':
      body.push(
        `      <error${attrs({ type: r.error?.code ?? 'error', message: r.error?.message ?? r.reason ?? 'error' })}>${xmlEscape(details(r))}</error>`,
      );
      break;
    case 'skipped':
      body.push(`      <skipped${attrs({ message: r.reason ?? 'skipped' })}/>`);
      break;
    default:
      break;
  }
  if (r.expectedDifferences.length > 0) {
    const known = r.expectedDifferences.map(
      (d) =>
        `known divergence at step ${d.step} (${d.label}) ${d.what}: model ${d.model}, target ${d.target}: ${d.reason}`,
    );
    body.push(`      <system-out>${xmlEscape(known.join('\n'))}</system-out>`);
  }
  return body.length === 0 ? `${head.slice(0, -1)}/>` : `${head}\n${body.join('\n')}\n    </testcase>`;
}

/** The whole report as a JUnit XML document. */
export function renderJunit(report: Report): string {
  const suites = report.targets.map((t) => {
    const s = t.summary;
    const failures = s.diff + s.fail + s['unexpected-pass'];
    const props = Object.entries({ ...t.platform, policy: t.policy, profile: t.profile })
      .map(([k, v]) => `      <property${attrs({ name: k, value: v })}/>`)
      .join('\n');
    const cases = t.scenarios.map((r) => testcase(t, r));
    if (t.error) {
      cases.push(
        `    <testcase${attrs({ classname: `snpsim.${t.kind}`, name: '(target)' })}>\n      <error${attrs({ type: t.error.code, message: t.error.message })}/>\n    </testcase>`,
      );
    }
    return [
      `  <testsuite${attrs({
        name: t.target,
        tests: s.total + (t.error ? 1 : 0),
        failures,
        errors: s.error + (t.error ? 1 : 0),
        skipped: s.skipped,
        timestamp: report.startedAt,
      })}>`,
      '    <properties>',
      props,
      '    </properties>',
      ...cases,
      '  </testsuite>',
    ].join('\n');
  });
  const total = report.targets.reduce(
    (a, t) => ({
      tests: a.tests + t.summary.total + (t.error ? 1 : 0),
      failures: a.failures + t.summary.diff + t.summary.fail + t.summary['unexpected-pass'],
      errors: a.errors + t.summary.error + (t.error ? 1 : 0),
      skipped: a.skipped + t.summary.skipped,
    }),
    { tests: 0, failures: 0, errors: 0, skipped: 0 },
  );
  return `<?xml version="1.0" encoding="UTF-8"?>\n<testsuites${attrs({ name: 'snpsim run', ...total })}>\n${suites.join('\n')}\n</testsuites>\n`;
}
