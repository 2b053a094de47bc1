/**
 * Test helper: a small JSON Schema (draft-07 subset) validator, enough for the schemas snpsim
 * publishes (type, properties, required, additionalProperties, patternProperties, items, anyOf,
 * const, enum, pattern, length/size/range bounds, uniqueItems, $ref to #/definitions). It lets the
 * tests check documents against the *published* files, not only against the TypeBox sources.
 */
type Schema = { readonly [key: string]: unknown };

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

/** Errors of `value` against `schema` (`root` resolves $ref); empty when valid. */
export function jsonSchemaErrors(
  schema: Schema,
  value: unknown,
  root: Schema = schema,
  path = '$',
): string[] {
  const ref = schema.$ref;
  if (typeof ref === 'string') {
    const name = /^#\/definitions\/(.+)$/.exec(ref)?.[1];
    const target =
      name === undefined ? undefined : (root.definitions as Record<string, Schema> | undefined)?.[name];
    if (target === undefined) return [`${path}: unresolvable $ref ${ref}`];
    return jsonSchemaErrors(target, value, root, path);
  }
  const errors: string[] = [];
  const t = typeOf(value);
  if (typeof schema.type === 'string') {
    const ok = schema.type === t || (schema.type === 'number' && t === 'integer');
    if (!ok) return [`${path}: expected ${schema.type}, got ${t}`];
  }
  if ('const' in schema && JSON.stringify(schema.const) !== JSON.stringify(value)) {
    errors.push(`${path}: expected ${JSON.stringify(schema.const)}`);
  }
  if (Array.isArray(schema.enum) && !schema.enum.some((e) => JSON.stringify(e) === JSON.stringify(value))) {
    errors.push(`${path}: not one of the enum values`);
  }
  if (Array.isArray(schema.anyOf)) {
    const branches = (schema.anyOf as Schema[]).map((s) => jsonSchemaErrors(s, value, root, path));
    if (!branches.some((b) => b.length === 0))
      errors.push(`${path}: matches no anyOf branch (${branches.map((b) => b[0]).join(' | ')})`);
  }
  if (t === 'string') {
    const s = value as string;
    if (typeof schema.pattern === 'string' && !new RegExp(schema.pattern).test(s))
      errors.push(`${path}: does not match ${schema.pattern}`);
    if (typeof schema.minLength === 'number' && s.length < schema.minLength)
      errors.push(`${path}: shorter than ${schema.minLength}`);
    if (typeof schema.maxLength === 'number' && s.length > schema.maxLength)
      errors.push(`${path}: longer than ${schema.maxLength}`);
  }
  if (t === 'integer' || t === 'number') {
    const n = value as number;
    if (typeof schema.minimum === 'number' && n < schema.minimum)
      errors.push(`${path}: below ${schema.minimum}`);
    if (typeof schema.maximum === 'number' && n > schema.maximum)
      errors.push(`${path}: above ${schema.maximum}`);
  }
  if (t === 'array') {
    const a = value as unknown[];
    if (typeof schema.minItems === 'number' && a.length < schema.minItems)
      errors.push(`${path}: fewer than ${schema.minItems} items`);
    if (typeof schema.maxItems === 'number' && a.length > schema.maxItems)
      errors.push(`${path}: more than ${schema.maxItems} items`);
    if (schema.uniqueItems === true && new Set(a.map((x) => JSON.stringify(x))).size !== a.length)
      errors.push(`${path}: items not unique`);
    if (schema.items !== undefined && typeof schema.items === 'object') {
      a.forEach((item, i) => {
        errors.push(...jsonSchemaErrors(schema.items as Schema, item, root, `${path}[${i}]`));
      });
    }
  }
  if (t === 'object') {
    const o = value as Record<string, unknown>;
    const props = (schema.properties as Record<string, Schema> | undefined) ?? {};
    const patterns = Object.entries((schema.patternProperties as Record<string, Schema> | undefined) ?? {});
    for (const key of (schema.required as string[] | undefined) ?? []) {
      if (!(key in o)) errors.push(`${path}: missing ${key}`);
    }
    if (typeof schema.minProperties === 'number' && Object.keys(o).length < schema.minProperties) {
      errors.push(`${path}: fewer than ${schema.minProperties} properties`);
    }
    for (const [key, v] of Object.entries(o)) {
      const at = `${path}.${key}`;
      if (key in props) {
        errors.push(...jsonSchemaErrors(props[key]!, v, root, at));
        continue;
      }
      const matching = patterns.filter(([p]) => new RegExp(p).test(key));
      for (const [, s] of matching) errors.push(...jsonSchemaErrors(s, v, root, at));
      if (matching.length > 0) continue;
      if (schema.additionalProperties === false) errors.push(`${at}: not allowed`);
      else if (typeof schema.additionalProperties === 'object') {
        errors.push(...jsonSchemaErrors(schema.additionalProperties as Schema, v, root, at));
      }
    }
  }
  return errors;
}

/** Every `$ref` in the schema resolves to a definition. */
export function unresolvedRefs(root: Schema): string[] {
  const out: string[] = [];
  const defs = (root.definitions as Record<string, unknown> | undefined) ?? {};
  const visit = (node: unknown) => {
    if (Array.isArray(node)) node.forEach(visit);
    else if (node !== null && typeof node === 'object') {
      for (const [k, v] of Object.entries(node)) {
        if (k === '$ref' && typeof v === 'string') {
          const name = /^#\/definitions\/(.+)$/.exec(v)?.[1];
          if (name === undefined || !(name in defs)) out.push(v);
        } else visit(v);
      }
    }
  };
  visit(root);
  return out;
}
