/**
 * Turning schema errors into messages a user can act on: the file, the JSON path (`$.steps[3].apic`)
 * and the problem, with the nearest valid name for a misspelt property or op.
 */
import type { TSchema } from '@sinclair/typebox';
import { type ValueError, ValueErrorType } from '@sinclair/typebox/value';

/** One problem in one input file. */
export interface InputProblem {
  readonly file: string;
  /** JSONPath-like location, `$` for the whole document. */
  readonly path: string;
  readonly message: string;
}

/** `/steps/3/apic` -> `$.steps[3].apic` */
export function pointerToPath(pointer: string, base = '$'): string {
  if (pointer === '' || pointer === '/') return base;
  let out = base;
  for (const raw of pointer.slice(1).split('/')) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^[0-9]+$/.test(part)
      ? `[${part}]`
      : /^[A-Za-z_$][A-Za-z0-9_$]*$/.test(part)
        ? `.${part}`
        : `[${JSON.stringify(part)}]`;
  }
  return out;
}

export function formatProblem(p: InputProblem): string {
  return `${p.file}: ${p.path}: ${p.message}`;
}

function show(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/** Levenshtein distance, for "did you mean" hints on short names. */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let prev = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cur = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = cur;
    }
  }
  return row[b.length]!;
}

export function nearest(name: string, candidates: Iterable<string>): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = distance(name.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

function parentSchemaKeys(root: TSchema, pointer: string): string[] {
  let node: TSchema | undefined = root;
  const parts = pointer.slice(1).split('/').slice(0, -1);
  for (const part of parts) {
    if (node === undefined) return [];
    if (node.type === 'array') node = node.items as TSchema | undefined;
    else if (node.type === 'object')
      node = ((node.properties as Record<string, TSchema> | undefined)?.[part] ??
        (node.patternProperties
          ? Object.values(node.patternProperties as Record<string, TSchema>)[0]
          : undefined)) as TSchema | undefined;
    else return [];
  }
  return node?.type === 'object' && node.properties ? Object.keys(node.properties as object) : [];
}

/**
 * Schema errors of `value` against `schema` as problems; paths are prefixed with `base` (e.g.
 * `$.steps[2]`). A missing required property is reported once (TypeBox also reports its type).
 */
export function schemaProblems(
  file: string,
  schema: TSchema,
  errors: Iterable<ValueError>,
  base = '$',
): InputProblem[] {
  const list = [...errors];
  const missing = new Set(
    list.filter((e) => e.type === ValueErrorType.ObjectRequiredProperty).map((e) => e.path),
  );
  const out: InputProblem[] = [];
  const seen = new Set<string>();
  for (const e of list) {
    if (missing.has(e.path) && e.type !== ValueErrorType.ObjectRequiredProperty) continue;
    const key = e.path.slice(e.path.lastIndexOf('/') + 1);
    let message: string;
    switch (e.type) {
      case ValueErrorType.ObjectRequiredProperty:
        message = `missing required property '${key}'`;
        break;
      case ValueErrorType.ObjectAdditionalProperties: {
        const hint = nearest(key, parentSchemaKeys(schema, e.path));
        message = `unknown property '${key}'${hint ? ` (did you mean '${hint}'?)` : ''}`;
        break;
      }
      case ValueErrorType.Union:
        message = `expected ${e.schema.description ?? 'one of the allowed forms'}, got ${show(e.value)}`;
        break;
      case ValueErrorType.StringPattern:
        message = `${e.schema.description ? `expected ${e.schema.description}` : `does not match ${e.schema.pattern}`}, got ${show(e.value)}`;
        break;
      case ValueErrorType.ObjectMinProperties:
        message = 'must not be empty';
        break;
      default:
        message = `${e.message.charAt(0).toLowerCase()}${e.message.slice(1)}, got ${show(e.value)}`;
    }
    const problem = { file, path: pointerToPath(e.path, base), message };
    const id = `${problem.path}\u0000${message}`;
    if (!seen.has(id)) {
      seen.add(id);
      out.push(problem);
    }
  }
  return out;
}

/**
 * Offset and description of the first JSON syntax error in `text` (RFC 8259 grammar), or undefined
 * when it is valid. Node 20's JSON.parse messages do not always carry a position, so the loader
 * finds it itself to name the line and column.
 */
function locateJsonError(text: string): { offset: number; message: string } | undefined {
  let i = 0;
  class Stop {
    constructor(
      readonly offset: number,
      readonly message: string,
    ) {}
  }
  const fail = (message: string): never => {
    throw new Stop(i, message);
  };
  const ws = () => {
    while (i < text.length && ' \t\n\r'.includes(text[i]!)) i++;
  };
  const what = () => (i >= text.length ? 'the end of the file' : `'${text[i]}'`);
  const literal = (word: string) => {
    if (text.startsWith(word, i)) i += word.length;
    else fail(`unexpected ${what()}`);
  };
  const string = () => {
    i++;
    while (i < text.length && text[i] !== '"') {
      const c = text.charCodeAt(i);
      if (c < 0x20) fail('control character in a string');
      if (text[i] === '\\') {
        i++;
        if (text[i] === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(i + 1, i + 5))) fail('bad \\u escape');
          i += 4;
        } else if (!'"\\/bfnrt'.includes(text[i] ?? '')) fail('bad escape in a string');
      }
      i++;
    }
    if (i >= text.length) fail('unterminated string');
    i++;
  };
  const number = () => {
    const m = /^-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/.exec(text.slice(i));
    if (!m) fail(`unexpected ${what()}`);
    i += m![0].length;
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++;
      ws();
      if (text[i] === '}') {
        i++;
        return;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail(`expected a property name in double quotes, found ${what()}`);
        string();
        ws();
        if (text[i] !== ':') fail(`expected ':' after a property name, found ${what()}`);
        i++;
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return;
        }
        fail(`expected ',' or '}' in an object, found ${what()}`);
      }
    } else if (c === '[') {
      i++;
      ws();
      if (text[i] === ']') {
        i++;
        return;
      }
      for (;;) {
        value();
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return;
        }
        fail(`expected ',' or ']' in an array, found ${what()}`);
      }
    } else if (c === '"') string();
    else if (c === 't') literal('true');
    else if (c === 'f') literal('false');
    else if (c === 'n') literal('null');
    else if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) number();
    else fail(`expected a value, found ${what()}`);
  };
  try {
    value();
    ws();
    if (i < text.length) fail(`unexpected ${what()} after the end of the document`);
    return undefined;
  } catch (error) {
    if (error instanceof Stop) return { offset: error.offset, message: error.message };
    throw error;
  }
}

/** Parses JSON; a syntax error becomes a problem with line and column. */
export function parseJson(file: string, text: string): { value: unknown } | { problem: InputProblem } {
  const error = locateJsonError(text);
  if (error === undefined) return { value: JSON.parse(text) as unknown };
  const before = text.slice(0, error.offset);
  const line = before.split('\n').length;
  const column = error.offset - before.lastIndexOf('\n');
  return {
    problem: {
      file,
      path: '$',
      message: `not valid JSON: ${error.message} (line ${line}, column ${column})`,
    },
  };
}
