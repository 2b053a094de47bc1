#!/usr/bin/env node
// Thin launcher: the CLI lives in guest-harness/cli (compiled to dist/ by `npm run build`).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const entry = new URL('../dist/guest-harness/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(entry))) {
  process.stderr.write('snpsim: dist/ is missing; run `npm run build` (or `npm ci`, which builds) first\n');
  process.exit(2);
}
const { main } = await import(entry.href);
process.exitCode = await main(process.argv.slice(2));
