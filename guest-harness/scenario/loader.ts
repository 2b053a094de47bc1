/**
 * Loading scenario files: reads files and directories, validates every file against the schema and
 * the sequence rules (pages allocated before use, ids unique, CPUs in range ...), and either returns
 * every scenario or throws one SnpsimError(SCENARIO_INVALID) listing every problem with its file,
 * JSON path and message. Nothing runs when any file has a problem.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, stat } from 'node:fs/promises';
import { basename, join, relative } from 'node:path';
import { type TSchema, Type } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { canonicalJson } from '../../host/index.js';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { formatProblem, type InputProblem, nearest, parseJson, schemaProblems } from './problems.js';
import {
  HOST_OPS,
  MODEL_ONLY_OPS,
  Scenario,
  STEP_SCHEMAS,
  type Step,
  type StepExpect,
  type StepOp,
} from './schema.js';

/** A validated scenario ready to run. */
export interface LoadedScenario {
  readonly name: string;
  /** The file it came from, as given or relative to the directory argument's parent. */
  readonly file: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly vcpus: number;
  readonly destructive: boolean;
  readonly steps: readonly Step[];
  /** Label of each step: its id, or `<n>-<op>` with the 1-based step number. */
  readonly labels: readonly string[];
  /** Page name -> protocol handle `h` (0..63), in order of allocation. */
  readonly pages: ReadonlyMap<string, number>;
  /** Uses host-side steps (needs a model-backed target announcing host_steps=1). */
  readonly needsHostSteps: boolean;
  /** Uses steps no agent verb expresses (only the in-process model target runs it). */
  readonly modelOnly: boolean;
  /** SHA-256 of the scenario's canonical JSON; fixtures record it to detect edits. */
  readonly hash: string;
}

export interface LoadOptions {
  /** Policy names `expectPolicy` may use; unknown names are problems. Omit to accept any. */
  readonly knownPolicies?: readonly string[];
  /** Directory-walk file names to skip (default: expectations.json). */
  readonly skipNames?: readonly string[];
}

export const DEFAULT_VCPUS = 4;
const MAX_PAGES = 64; // PROTOCOL.md: handles h=<0..63>
/** The scenario without step details: steps are validated one by one against their op's schema. */
const envelope = Type.Object(
  { ...Scenario.properties, steps: Type.Array(Type.Unknown()) },
  { additionalProperties: false },
);
const STEP_BY_OP = new Map<string, TSchema>(STEP_SCHEMAS.map((s) => [s.properties.op.const as string, s]));

function labelOf(step: Step, index: number): string {
  return step.id ?? `${index + 1}-${step.op}`;
}

/** Sequence rules the schema cannot express. */
function sequenceProblems(file: string, sc: Scenario, options: LoadOptions): InputProblem[] {
  const problems: InputProblem[] = [];
  const add = (path: string, message: string) => problems.push({ file, path, message });
  const vcpus = sc.vcpus ?? DEFAULT_VCPUS;
  const allocated = new Set<string>();
  const ids = new Map<string, number>();
  let deadAt: number | undefined;
  const known = options.knownPolicies;

  const checkPage = (path: string, page: string | undefined) => {
    if (page !== undefined && !allocated.has(page)) {
      add(path, `page '${page}' is used before a vmsa-alloc step allocates it`);
    }
  };
  const checkExpect = (path: string, expect: StepExpect | undefined, index: number) => {
    if (expect === undefined) return;
    if (expect.code !== undefined && expect.outcome !== 'err') {
      add(`${path}.code`, "an error code is only expected with outcome 'err'");
    }
    if (expect.outcome === 'err' && expect.values !== undefined) {
      add(`${path}.values`, "response values cannot be expected with outcome 'err'");
    }
    for (const vcpu of [
      ...Object.keys(expect.model?.mpState ?? {}),
      ...Object.keys(expect.model?.pvUnhalted ?? {}),
    ]) {
      if (Number(vcpu) >= vcpus)
        add(`${path}.model`, `vCPU ${vcpu} does not exist (the scenario has ${vcpus})`);
    }
    for (const page of [
      ...Object.keys(expect.model?.vmsaBit ?? {}),
      ...Object.keys(expect.model?.validated ?? {}),
    ]) {
      if (!allocated.has(page)) add(`${path}.model`, `page '${page}' is not allocated at step ${index + 1}`);
    }
  };

  sc.steps.forEach((step, i) => {
    const at = `$.steps[${i}]`;
    if (deadAt !== undefined && deadAt < i && step.expect?.vm !== 'dead') {
      add(
        at,
        `step ${deadAt + 1} expects the VM to be dead, so this step must expect it too ("expect": {"vm": "dead"}); it can only give a real guest time to die`,
      );
    }
    if (step.id !== undefined) {
      const first = ids.get(step.id);
      if (first !== undefined)
        add(`${at}.id`, `duplicate step id '${step.id}' (first used by step ${first + 1})`);
      else ids.set(step.id, i);
    }
    switch (step.op) {
      case 'vmsa-alloc':
        if (allocated.has(step.page)) add(`${at}.page`, `page '${step.page}' is already allocated`);
        else if (allocated.size >= MAX_PAGES)
          add(`${at}.page`, `more than ${MAX_PAGES} pages in one scenario`);
        allocated.add(step.page);
        break;
      case 'vmsa-init':
      case 'vmsa-set':
      case 'vmsa-poke':
      case 'pvalidate':
      case 'wait-marker':
      case 'vmsa-free':
        checkPage(`${at}.page`, step.page);
        break;
      case 'rmpadjust':
        checkPage(`${at}.page`, step.page);
        if ((step.vmsa === undefined) === (step.rdx === undefined)) {
          add(at, "give exactly one of 'vmsa' (true/false) or 'rdx'");
        }
        break;
      case 'ap-creation':
        checkPage(`${at}.page`, step.page);
        if (step.page !== undefined && step.gpa !== undefined) add(at, "give 'page' or 'gpa', not both");
        break;
      case 'concurrent': {
        if (i !== sc.steps.length - 1) {
          add(
            at,
            'a concurrent step must be the last step: what follows would depend on the order the requests ran in',
          );
        }
        const froms = step.requests.map((r) => r.from);
        if (new Set(froms).size !== froms.length) {
          add(
            `${at}.requests`,
            'each request needs its own issuing vCPU (`from`): a CPU issues one VMGEXIT at a time',
          );
        }
        step.requests.forEach((r, j) => {
          checkPage(`${at}.requests[${j}].page`, r.page);
          if (r.page !== undefined && r.gpa !== undefined)
            add(`${at}.requests[${j}]`, "give 'page' or 'gpa', not both");
          if (r.from >= vcpus)
            add(`${at}.requests[${j}].from`, `vCPU ${r.from} does not exist (the scenario has ${vcpus})`);
        });
        step.orders?.forEach((order, j) => {
          const sorted = [...order].sort((a, b) => a - b);
          if (sorted.length !== step.requests.length || sorted.some((v, k) => v !== k)) {
            add(
              `${at}.orders[${j}]`,
              `must be a permutation of 0..${step.requests.length - 1} (one entry per request), got ${JSON.stringify(order)}`,
            );
          }
        });
        break;
      }
      case 'cpu-offline':
      case 'cpu-online':
        if (step.cpu >= vcpus)
          add(`${at}.cpu`, `CPU ${step.cpu} does not exist (the scenario has ${vcpus} vCPUs)`);
        break;
      case 'host-set-mp-state':
      case 'host-run':
        if (step.vcpu >= vcpus)
          add(`${at}.vcpu`, `vCPU ${step.vcpu} does not exist (the scenario has ${vcpus})`);
        break;
      default:
        break;
    }
    checkExpect(`${at}.expect`, step.expect, i);
    // Only the default expectation ends the scenario: a policy-specific death (expectPolicy) leaves
    // the later steps for the other policies.
    if (step.expect?.vm === 'dead' && deadAt === undefined) deadAt = i;
    for (const [policy, expect] of Object.entries(step.expectPolicy ?? {})) {
      if (known !== undefined && !known.includes(policy)) {
        const hint = nearest(policy, known);
        add(
          `${at}.expectPolicy.${policy}`,
          `unknown host policy '${policy}'${hint ? ` (did you mean '${hint}'?)` : ''}; known: ${known.join(', ')}`,
        );
      }
      checkExpect(`${at}.expectPolicy["${policy}"]`, expect, i);
    }
  });
  const anyDead = sc.steps.some(
    (s) => s.expect?.vm === 'dead' || Object.values(s.expectPolicy ?? {}).some((e) => e.vm === 'dead'),
  );
  if (anyDead && sc.destructive !== true) {
    add('$.destructive', 'a scenario that expects the VM to die must set "destructive": true');
  }
  return problems;
}

/** Validates one parsed document; returns the scenario or the problems. */
export function validateScenario(
  file: string,
  value: unknown,
  options: LoadOptions = {},
): { scenario: LoadedScenario } | { problems: InputProblem[] } {
  const problems = schemaProblems(file, envelope, Value.Errors(envelope, value));
  const doc = value as { steps?: unknown };
  if (Array.isArray(doc?.steps)) {
    if (doc.steps.length === 0) problems.push({ file, path: '$.steps', message: 'needs at least one step' });
    doc.steps.forEach((raw, i) => {
      const at = `$.steps[${i}]`;
      const op = (raw as { op?: unknown } | null)?.op;
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        problems.push({ file, path: at, message: 'a step must be an object' });
      } else if (typeof op !== 'string') {
        problems.push({
          file,
          path: `${at}.op`,
          message: `missing 'op'; one of: ${[...STEP_BY_OP.keys()].join(', ')}`,
        });
      } else {
        const schema = STEP_BY_OP.get(op);
        if (schema === undefined) {
          const hint = nearest(op, STEP_BY_OP.keys());
          problems.push({
            file,
            path: `${at}.op`,
            message: `unknown op '${op}'${hint ? ` (did you mean '${hint}'?)` : `; one of: ${[...STEP_BY_OP.keys()].join(', ')}`}`,
          });
        } else {
          problems.push(...schemaProblems(file, schema, Value.Errors(schema, raw), at));
        }
      }
    });
  }
  if (problems.length > 0) return { problems };
  const sc = value as Scenario;
  const name = sc.name ?? basename(file).replace(/\.json$/, '');
  if (!/^[a-z0-9][a-z0-9_.-]{0,79}$/.test(name)) {
    return {
      problems: [
        {
          file,
          path: '$',
          message: `the file name gives the scenario name '${name}', which is not a valid name; set "name" (lower-case letters, digits, . _ -)`,
        },
      ],
    };
  }
  const seq = sequenceProblems(file, sc, options);
  if (seq.length > 0) return { problems: seq };
  const pages = new Map<string, number>();
  for (const step of sc.steps) if (step.op === 'vmsa-alloc') pages.set(step.page, pages.size);
  const ops = new Set<StepOp>(sc.steps.map((s) => s.op));
  return {
    scenario: {
      name,
      file,
      description: sc.description,
      tags: sc.tags ?? [],
      vcpus: sc.vcpus ?? DEFAULT_VCPUS,
      destructive: sc.destructive ?? false,
      steps: sc.steps,
      labels: sc.steps.map(labelOf),
      pages,
      needsHostSteps: [...ops].some((op) => HOST_OPS.has(op)),
      modelOnly: [...ops].some((op) => MODEL_ONLY_OPS.has(op)),
      // The host's canonical JSON (sorted keys): the hash depends on neither formatting nor key
      // order, nor on the editor hint `$schema`.
      hash: createHash('sha256')
        .update(canonicalJson({ ...sc, $schema: undefined }))
        .digest('hex'),
    },
  };
}

async function listJson(dir: string, skip: ReadonlySet<string>): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const out: string[] = [];
  for (const e of entries.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
    if (e.name.startsWith('.')) continue;
    const full = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await listJson(full, skip)));
    else if (e.isFile() && e.name.endsWith('.json') && !skip.has(e.name)) out.push(full);
  }
  return out;
}

function invalid(problems: readonly InputProblem[]): SnpsimError {
  const shown = problems.slice(0, 50).map(formatProblem);
  const more = problems.length > shown.length ? [`... and ${problems.length - shown.length} more`] : [];
  const files = new Set(problems.map((p) => p.file)).size;
  return new SnpsimError(
    SnpsimErrorCode.SCENARIO_INVALID,
    `${problems.length} problem${problems.length === 1 ? '' : 's'} in ${files} scenario file${files === 1 ? '' : 's'}; nothing was run:\n  ${[...shown, ...more].join('\n  ')}`,
    { problems },
  );
}

/**
 * Loads scenarios from files and directories (directories recursively, `*.json` except
 * `expectations.json`, sorted by path). Throws SnpsimError(SCENARIO_INVALID) with every problem of
 * every file; names must be unique across all files.
 */
export async function loadScenarios(
  paths: readonly string[],
  options: LoadOptions = {},
): Promise<LoadedScenario[]> {
  const skip = new Set(options.skipNames ?? ['expectations.json']);
  const problems: InputProblem[] = [];
  const files: string[] = [];
  for (const p of paths) {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(p);
    } catch {
      problems.push({ file: p, path: '$', message: 'no such file or directory' });
      continue;
    }
    if (info.isDirectory()) {
      const found = await listJson(p, skip);
      if (found.length === 0)
        problems.push({ file: p, path: '$', message: 'the directory holds no scenario (*.json) files' });
      files.push(...found);
    } else files.push(p);
  }
  const loaded: LoadedScenario[] = [];
  const byName = new Map<string, string>();
  for (const file of [...new Set(files)]) {
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (error) {
      problems.push({ file, path: '$', message: `cannot read: ${(error as Error).message}` });
      continue;
    }
    const parsed = parseJson(file, text);
    if ('problem' in parsed) {
      problems.push(parsed.problem);
      continue;
    }
    const result = validateScenario(file, parsed.value, options);
    if ('problems' in result) {
      problems.push(...result.problems);
      continue;
    }
    const other = byName.get(result.scenario.name);
    if (other !== undefined) {
      problems.push({
        file,
        path: '$.name',
        message: `scenario name '${result.scenario.name}' is already used by ${relative('.', other) || other}`,
      });
      continue;
    }
    byName.set(result.scenario.name, file);
    loaded.push(result.scenario);
  }
  if (problems.length > 0) throw invalid(problems);
  return loaded;
}

/** Loads scenarios from in-memory documents (tests, generated scenarios); same rules as files. */
export function loadScenarioDocuments(
  docs: ReadonlyArray<{ file: string; value: unknown }>,
  options: LoadOptions = {},
): LoadedScenario[] {
  const problems: InputProblem[] = [];
  const out: LoadedScenario[] = [];
  const names = new Set<string>();
  for (const { file, value } of docs) {
    const r = validateScenario(file, value, options);
    if ('problems' in r) problems.push(...r.problems);
    else if (names.has(r.scenario.name)) {
      problems.push({ file, path: '$.name', message: `scenario name '${r.scenario.name}' is used twice` });
    } else {
      names.add(r.scenario.name);
      out.push(r.scenario);
    }
  }
  if (problems.length > 0) throw invalid(problems);
  return out;
}
