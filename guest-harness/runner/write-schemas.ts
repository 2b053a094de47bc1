/**
 * Writes the published JSON Schema files: `node dist/guest-harness/runner/write-schemas.js [ROOT]`
 * (ROOT defaults to the current directory, the repository root).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { publishedSchemas } from './schemas.js';

const root = process.argv[2] ?? '.';
for (const { path, content } of publishedSchemas()) {
  const file = join(root, path);
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, content);
  process.stdout.write(`wrote ${file}\n`);
}
