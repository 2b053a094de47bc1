/**
 * The JSON Schema files published in `schemas/`: scenarios (for editors), reports, expectations and
 * fixtures. `node dist/guest-harness/runner/write-schemas.js` rewrites them; a test fails when a
 * committed file differs from what the code generates.
 */
import {
  renderJsonSchema,
  SCENARIO_SCHEMA_PATH,
  scenarioJsonSchema,
  toJsonSchema,
} from '../scenario/index.js';
import { EXPECTATIONS_SCHEMA_PATH, ExpectationsFile } from './expectations.js';
import { Fixture } from './fixture.js';
import { REPORT_SCHEMA_PATH, Report } from './report.js';

export const FIXTURE_SCHEMA_PATH = 'schemas/fixture.schema.json';

/** Every published schema: its repository path and file content. */
export function publishedSchemas(): { readonly path: string; readonly content: string }[] {
  const base = 'https://snpsim.invalid/';
  return [
    { path: SCENARIO_SCHEMA_PATH, content: renderJsonSchema(scenarioJsonSchema()) },
    {
      path: REPORT_SCHEMA_PATH,
      content: renderJsonSchema(toJsonSchema(Report, base + REPORT_SCHEMA_PATH, 'snpsim run report')),
    },
    {
      path: EXPECTATIONS_SCHEMA_PATH,
      content: renderJsonSchema(
        toJsonSchema(ExpectationsFile, base + EXPECTATIONS_SCHEMA_PATH, 'snpsim expectations'),
      ),
    },
    {
      path: FIXTURE_SCHEMA_PATH,
      content: renderJsonSchema(toJsonSchema(Fixture, base + FIXTURE_SCHEMA_PATH, 'snpsim fixture')),
    },
  ];
}
