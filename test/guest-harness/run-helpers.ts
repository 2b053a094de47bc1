/** Test helpers for the runner tests: captured CLI streams, temporary directories, scenario files. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { CliIo } from '../../guest-harness/index.js';

/** The repository root (tests run from dist/test/guest-harness). */
export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const CORPUS = join(ROOT, 'scenarios');

export interface Captured {
  readonly io: CliIo;
  out(): string;
  err(): string;
}

export function capture(isTTY = false): Captured {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: {
      stdout: { write: (s: string) => out.push(s), isTTY },
      stderr: { write: (s: string) => err.push(s), isTTY },
    },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

export async function tempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `snpsim-${prefix}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

export async function writeJson(file: string, value: unknown): Promise<string> {
  await writeFile(file, `${JSON.stringify(value, null, 2)}\n`);
  return file;
}

/** Scenario files from the corpus, by name. */
export function corpus(...names: string[]): string[] {
  return names.map((n) => join(CORPUS, `${n}.json`));
}
