/**
 * `snpsim policies`: the host policy presets (one line each), one policy's knobs, every knob's
 * documentation, or how two policies differ knob by knob. A policy argument is a preset name or a
 * JSON policy file (`{ "extends": "linux-6.11", "knobs": { ... } }`).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import {
  diffPolicies,
  formatDifference,
  formatKnobValue,
  KNOB_NAMES,
  KNOBS,
  knobToJson,
  PRESET_NAMES,
  PRESETS,
  parsePolicyText,
  policyToJson,
  presetPolicy,
  type ResolvedPolicy,
} from '../../host/index.js';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import type { CliCommand, CliIo } from './command.js';

export const POLICIES_USAGE = `usage: snpsim policies [--show P | --diff A B | --knobs] [--json]

Host policies model how each KVM version handles the SNP AP Creation NAE event. P, A and B are a
preset name or the path of a policy JSON file: { "extends": "<preset>", "knobs": { "<knob>": value } }.

  (no option)   the presets, one line each
  --show P      every knob of P (knobs a file overrides are marked *)
  --diff A B    the knobs whose values differ between A and B
  --knobs       every knob: its values and which version does what
  --json        JSON instead of a table

exit codes: 0 ok (--diff: no differences), 1 (--diff) the policies differ, 2 usage or policy-file error`;

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, `${message} (see snpsim policies --help)`);
}

/** A preset name or a policy file, resolved; bad files are SNPSIM_POLICY_INVALID naming each problem. */
async function loadPolicy(arg: string): Promise<ResolvedPolicy> {
  const preset = presetPolicy(arg);
  if (preset !== undefined) return preset;
  let text: string;
  try {
    text = await readFile(arg, 'utf8');
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new SnpsimError(
      SnpsimErrorCode.POLICY_INVALID,
      `'${arg}' is neither a preset (${PRESET_NAMES.join(', ')}) nor a readable policy file: ${reason}`,
      { file: arg },
    );
  }
  const parsed = parsePolicyText(text);
  if (!parsed.ok) {
    const lines = parsed.problems.map(
      (p) => `  ${arg}: ${p.path === '' ? '(document)' : p.path}: ${p.message}`,
    );
    throw new SnpsimError(SnpsimErrorCode.POLICY_INVALID, `invalid policy file:\n${lines.join('\n')}`, {
      file: arg,
      problems: parsed.problems,
    });
  }
  return parsed.value;
}

function table(rows: readonly (readonly string[])[]): string {
  const widths: number[] = [];
  for (const row of rows) {
    for (const [i, cell] of row.entries()) widths[i] = Math.max(widths[i] ?? 0, cell.length);
  }
  return rows
    .map((row) =>
      row
        .map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

function json(io: CliIo, value: unknown): void {
  io.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

async function runPolicies(argv: readonly string[], io: CliIo): Promise<number> {
  let parsed: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: true }>>;
  try {
    parsed = parseArgs({ args: [...argv], options: OPTIONS, allowPositionals: true, strict: true });
  } catch (error) {
    throw usage(error instanceof Error ? error.message : String(error));
  }
  const { values, positionals } = parsed;
  const modes = [values.show !== undefined, values.diff !== undefined, values.knobs === true].filter(
    Boolean,
  ).length;
  if (modes > 1) throw usage('--show, --diff and --knobs are exclusive');

  if (values.diff !== undefined) {
    if (positionals.length !== 1) throw usage('--diff needs two policies: --diff A B');
    const a = await loadPolicy(values.diff);
    const b = await loadPolicy(positionals[0] ?? '');
    const raw = diffPolicies(a.policy, b.policy);
    const diffs = raw.map(formatDifference);
    if (values.json === true) {
      json(io, {
        a: a.name,
        b: b.name,
        differences: raw.map((d) => ({ knob: d.knob, a: knobToJson(d.a), b: knobToJson(d.b) })),
      });
    } else if (diffs.length === 0) io.stdout.write(`${a.name} and ${b.name} have the same knobs\n`);
    else io.stdout.write(`${table([['knob', a.name, b.name], ...diffs.map((d) => [d.knob, d.a, d.b])])}\n`);
    return diffs.length === 0 ? ExitCode.OK : ExitCode.DIFFERENCES;
  }
  if (positionals.length > 0) throw usage(`unexpected argument '${positionals[0]}'`);

  if (values.show !== undefined) {
    const p = await loadPolicy(values.show);
    if (values.json === true) {
      json(io, { name: p.name, extends: p.base, overrides: p.overrides, knobs: policyToJson(p.policy) });
    } else {
      const rows = KNOB_NAMES.map((k) => [
        `${k}${p.overrides.includes(k) ? ' *' : ''}`,
        formatKnobValue(p.policy[k]),
      ]);
      const head = p.name === p.base ? p.name : `${p.name} (extends ${p.base}; * = set by the file)`;
      io.stdout.write(`${head}\n\n${table(rows)}\n`);
    }
    return ExitCode.OK;
  }

  if (values.knobs === true) {
    if (values.json === true) {
      json(
        io,
        KNOB_NAMES.map((k) => ({ ...KNOBS[k], type: KNOBS[k].type })),
      );
    } else {
      const blocks = KNOB_NAMES.map((k) => {
        const s = KNOBS[k];
        const type = typeof s.type === 'string' ? s.type : s.type.map((v) => `'${v}'`).join(' | ');
        return `${k}: ${type}\n  ${s.summary}\n  ${s.versions}`;
      });
      io.stdout.write(`${blocks.join('\n\n')}\n`);
    }
    return ExitCode.OK;
  }

  if (values.json === true) {
    json(
      io,
      PRESET_NAMES.map((n) => ({ name: n, summary: PRESETS[n]?.summary, notes: PRESETS[n]?.notes })),
    );
  } else {
    const rows = PRESET_NAMES.map((n) => [n, PRESETS[n]?.summary ?? '']);
    io.stdout.write(`${table(rows)}\n\nsnpsim policies --show P | --diff A B | --knobs for details\n`);
  }
  return ExitCode.OK;
}

const OPTIONS = {
  show: { type: 'string' },
  diff: { type: 'string' },
  knobs: { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

export const policiesCommand: CliCommand = {
  name: 'policies',
  summary: 'host policy presets (KVM versions of SNP AP Creation) and how they differ',
  usage: POLICIES_USAGE,
  run: runPolicies,
};
