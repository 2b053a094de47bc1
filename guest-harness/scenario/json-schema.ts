/**
 * The scenario schema as a JSON Schema document (draft-07, which editors such as VS Code use for
 * completion), published as `schemas/scenario.schema.json`. TypeBox schemas are JSON Schema already;
 * this only strips TypeBox's symbol keys and adds the document header.
 */
import type { TSchema } from '@sinclair/typebox';
import { Scenario } from './schema.js';

/** Repository path of the published scenario schema. */
export const SCENARIO_SCHEMA_PATH = 'schemas/scenario.schema.json';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/**
 * Moves every sub-schema that has a `title` into `definitions` and refers to it with `$ref`, so a
 * shared part (a step's expectations, a 64-bit value ...) is written once. Throws if two different
 * sub-schemas share a title (a programming error).
 */
function hoistTitled(root: { [key: string]: Json }): { [key: string]: Json } {
  const definitions: Record<string, Json> = {};
  const seen = new Map<string, string>();
  const visit = (node: Json, top: boolean): Json => {
    if (Array.isArray(node)) return node.map((n) => visit(n, false));
    if (node === null || typeof node !== 'object') return node;
    const out: { [key: string]: Json } = {};
    for (const [k, v] of Object.entries(node)) out[k] = visit(v, false);
    const title = node.title;
    if (top || typeof title !== 'string') return out;
    const text = JSON.stringify(out);
    const previous = seen.get(title);
    if (previous !== undefined && previous !== text)
      throw new Error(`two different schemas are titled '${title}'`);
    seen.set(title, text);
    definitions[title] = out;
    return { $ref: `#/definitions/${title}` };
  };
  const body = visit(root, true) as { [key: string]: Json };
  return Object.keys(definitions).length === 0 ? body : { ...body, definitions };
}

/** A TypeBox schema as a plain JSON Schema document with a draft-07 header. */
export function toJsonSchema(schema: TSchema, id: string, title: string): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema)) as { [key: string]: Json };
  return { $schema: 'http://json-schema.org/draft-07/schema#', $id: id, title, ...hoistTitled(plain) };
}

export function scenarioJsonSchema(): Record<string, unknown> {
  return toJsonSchema(Scenario, `https://snpsim.invalid/${SCENARIO_SCHEMA_PATH}`, 'snpsim scenario');
}

/** The file content as published (stable formatting, trailing newline). */
export function renderJsonSchema(schema: Record<string, unknown>): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
