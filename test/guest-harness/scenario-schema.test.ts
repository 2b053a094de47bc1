import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadScenarios, publishedSchemas, SCENARIO_SCHEMA_PATH } from '../../guest-harness/index.js';
import { jsonSchemaErrors, unresolvedRefs } from './json-schema-check.js';

/** The repository root (tests run from dist/test/guest-harness). */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

test('every published schema file matches the code (run: node dist/guest-harness/runner/write-schemas.js)', async () => {
  const schemas = publishedSchemas();
  assert.deepEqual(
    schemas.map((s) => s.path).sort(),
    [
      'schemas/expectations.schema.json',
      'schemas/fixture.schema.json',
      'schemas/report.schema.json',
      SCENARIO_SCHEMA_PATH,
    ].sort(),
  );
  for (const { path, content } of schemas) {
    let committed: string;
    try {
      committed = await readFile(join(ROOT, path), 'utf8');
    } catch {
      assert.fail(`${path} is missing; run: node dist/guest-harness/runner/write-schemas.js`);
    }
    assert.ok(
      committed === content,
      `${path} is stale; run: node dist/guest-harness/runner/write-schemas.js`,
    );
    const schema = JSON.parse(committed) as Record<string, unknown>;
    assert.equal(schema.$schema, 'http://json-schema.org/draft-07/schema#');
    assert.deepEqual(unresolvedRefs(schema), [], `${path} has unresolved $refs`);
  }
});

test('the published scenario schema accepts every corpus file and rejects broken ones', async () => {
  const schema = JSON.parse(await readFile(join(ROOT, SCENARIO_SCHEMA_PATH), 'utf8')) as Record<
    string,
    unknown
  >;
  const corpus = await loadScenarios([join(ROOT, 'scenarios')]);
  assert.ok(corpus.length >= 40, `the corpus has ${corpus.length} scenarios, fewer than 40`);
  for (const s of corpus) {
    const doc = JSON.parse(await readFile(s.file, 'utf8')) as Record<string, unknown>;
    assert.deepEqual(
      jsonSchemaErrors(schema, doc),
      [],
      `${s.file} does not validate against the published schema`,
    );
    assert.equal(
      doc.$schema,
      '../schemas/scenario.schema.json',
      `${s.file} should point editors at the schema`,
    );
  }
  const bad = [
    { description: 'missing steps' },
    { description: 'bad op here', steps: [{ op: 'nope' }] },
    { description: 'bad apic here', steps: [{ op: 'ap-creation', request: 'create', apic: -1 }] },
    { description: 'bad key here', steps: [{ op: 'hv-features', extra: 1 }] },
    {
      description: 'bad hex here',
      steps: [{ op: 'ap-creation', request: 1, apic: 1, rax: '0xfffffffffffffffff' }],
    },
  ];
  for (const doc of bad)
    assert.notDeepEqual(jsonSchemaErrors(schema, doc), [], `accepted ${JSON.stringify(doc)}`);
});
