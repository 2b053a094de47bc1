/**
 * The scenario schema as a JSON Schema document (draft-07, which editors such as VS Code use for
 * completion), published as `schemas/scenario.schema.json`. TypeBox schemas are JSON Schema already;
 * this only strips TypeBox's symbol keys and adds the document header.
 */
import type { TSchema } from '@sinclair/typebox';
import { Scenario } from './schema.js';

/** Repository path of the published scenario schema. */
export const SCENARIO_SCHEMA_PATH = 'schemas/scenario.schema.json';

/** A TypeBox schema as a plain JSON Schema document with a draft-07 header. */
export function toJsonSchema(schema: TSchema, id: string, title: string): Record<string, unknown> {
  const plain = JSON.parse(JSON.stringify(schema)) as Record<string, unknown>;
  return { $schema: 'http://json-schema.org/draft-07/schema#', $id: id, title, ...plain };
}

export function scenarioJsonSchema(): Record<string, unknown> {
  return toJsonSchema(Scenario, 'https://snpsim.invalid/schemas/scenario.schema.json', 'snpsim scenario');
}

/** The file content as published (stable formatting, trailing newline). */
export function renderJsonSchema(schema: Record<string, unknown>): string {
  return `${JSON.stringify(schema, null, 2)}\n`;
}
