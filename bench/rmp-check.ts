/**
 * `rmp-check`: RMP access-check throughput (host write through a 4 KB mapping: the page's entry and
 * its 2 MB-aligned entry, APM Table 15-39), random and sequential, with the table in cache (256 KiB of
 * RMP) and far larger than cache (1 GiB of RMP = a 256 GiB host, every chunk populated), through the
 * single-check API and the batch API. A native C loop (`bench/native/rmpcheck.c`, built with `cc -O2`
 * at bench time) runs the same check on the same layout, contents and address sequence; the ratio
 * printed is snpsim throughput / native throughput, and both sides' fault counts must agree.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Bench } from 'tinybench';
import { AccessKind, MappingSize, Platform, type Rmp } from '../psp-firmware/index.js';
import type { BenchOptions, BenchRow, BenchSuite } from './suite.js';

// Read once: a property load from an imported table inside a hot loop costs several ns per check.
const WRITE = AccessKind.WRITE;
const SIZE_4K = MappingSize.SIZE_4K;
const FILL_SEED = 0x12345678;
const INDEX_SEED = 0x9e3779b9;

interface TableCase {
  readonly label: string;
  readonly pages: number;
  /** Checks per task call (tinybench batching: one call = many ~ns checks). */
  readonly checks: number;
  readonly inCache: boolean;
}

function xorshift32(x: number): number {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
}

function assign(rmp: Rmp, pfn: number, pageSize: number): void {
  rmp.writeEntryWords(
    pfn,
    1 | (pageSize << 1) | ((pfn & 0xfffff) << 12),
    (Math.floor(pfn / 2 ** 20) & 0x7ffff) | (1 << 19),
    0x1f,
    0,
  );
}

/** Same population as `populate()` in rmpcheck.c: per 2 MB region, xorshift32 & 3 picks the pattern. */
function populateRmp(rmp: Rmp, seed: number): void {
  let x = seed >>> 0;
  const regions = rmp.coveredPages / 512;
  for (let g = 0; g < regions; g++) {
    x = xorshift32(x);
    const base = g * 512;
    const kind = x & 3;
    if (kind === 1) assign(rmp, base, 1);
    else if (kind === 2) for (let i = 0; i < 512; i += 4) assign(rmp, base + i, 0);
    else if (kind === 3) for (let i = 0; i < 512; i++) assign(rmp, base + i, 0);
  }
}

/** The page frame numbers checked: xorshift32 % pages (random) or 0, 1, 2 ... (sequential). */
function pageNumbers(order: 'random' | 'sequential', pages: number, n: number): Uint32Array {
  const pfns = new Uint32Array(n);
  let x = INDEX_SEED;
  for (let i = 0; i < n; i++) {
    if (order === 'random') {
      x = xorshift32(x);
      pfns[i] = x % pages;
    } else {
      pfns[i] = i % pages;
    }
  }
  return pfns;
}

/**
 * The single-call case: a hot loop in user code, one `hostAccess` per address. A plain function of its
 * arguments, so every case runs the same optimized code (a closure per case would let the JIT
 * specialise the first one to its constants and leave the others generic, skewing the comparison).
 * A fault is 0x80000003: bit 31 counts it without a data-dependent branch (as the C loop's setne).
 */
function singleCalls(
  p: Platform,
  spas: Float64Array,
  n: number,
  kind: AccessKind,
  mapping: MappingSize,
): number {
  let f = 0;
  for (let i = 0; i < n; i++) f += p.hostAccess(spas[i]!, kind, mapping) >>> 31;
  return f;
}

interface NativeResult {
  readonly order: string;
  readonly api: string;
  readonly nsPerCheck: number;
  readonly faults: number;
}

/** Builds the C baseline; returns its path or the reason it is unavailable. */
function buildNative(log: (line: string) => void): { binary: string } | { reason: string } {
  const source = fileURLToPath(new URL('../../bench/native/rmpcheck.c', import.meta.url));
  const buildDir = fileURLToPath(new URL('../../bench/native/build/', import.meta.url));
  const binary = `${buildDir}rmpcheck`;
  try {
    mkdirSync(buildDir, { recursive: true });
    execFileSync('cc', ['-O2', '-o', binary, source], { stdio: ['ignore', 'ignore', 'pipe'] });
    log(`rmp-check: native baseline built with cc -O2 (${binary})`);
    return { binary };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: Buffer };
    const reason =
      e.code === 'ENOENT'
        ? 'no C compiler: `cc` is not on PATH (Debian: apt-get install gcc)'
        : `cc failed: ${e.stderr?.toString().trim() || e.message}`;
    log(`rmp-check: native baseline unavailable: ${reason}`);
    return { reason };
  }
}

function runNative(binary: string, t: TableCase, repeats: number): NativeResult[] {
  const out = execFileSync(
    binary,
    [String(t.pages), String(t.checks), String(repeats), String(FILL_SEED), String(INDEX_SEED)],
    {
      encoding: 'utf8',
      maxBuffer: 1 << 20,
    },
  );
  return out
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as NativeResult);
}

async function measureTable(
  t: TableCase,
  options: BenchOptions,
  native: { binary: string } | { reason: string },
): Promise<BenchRow[]> {
  const { quick, log } = options;
  log(`rmp-check: populating ${t.label} (${t.pages} entries)`);
  const platform = new Platform({ memoryBytes: t.pages * 4096 });
  populateRmp(platform.rmp, FILL_SEED);
  log(
    `rmp-check: ${platform.rmp.allocatedChunks} chunk(s) allocated, ${(platform.rmp.tableBytes / 2 ** 20).toFixed(2)} MiB of RMP`,
  );
  const outBits = new Uint32Array(Math.ceil(t.checks / 32));
  const faults = new Map<string, number>();
  const bench = new Bench({
    name: t.label,
    time: quick ? 100 : 1500,
    iterations: quick ? 3 : 20,
    warmupIterations: quick ? 1 : 3,
    throws: true,
  });
  for (const order of ['random', 'sequential'] as const) {
    const pfns = pageNumbers(order, t.pages, t.checks);
    const spas = Float64Array.from(pfns, (pfn) => pfn * 4096);
    const n = t.checks;
    bench.add(`${order}/single`, () => {
      faults.set(`${order}/single`, singleCalls(platform, spas, n, WRITE, SIZE_4K));
    });
    bench.add(`${order}/batch`, () => {
      faults.set(`${order}/batch`, platform.hostAccessBatchPfn(pfns, n, WRITE, SIZE_4K, outBits));
    });
  }
  await bench.run();

  let nativeResults: NativeResult[] = [];
  let nativeNote: string | undefined;
  if ('binary' in native) {
    log(`rmp-check: native baseline on ${t.label}`);
    nativeResults = runNative(native.binary, t, quick ? 5 : 21);
  } else {
    nativeNote = `native baseline unavailable: ${native.reason}`;
  }

  return bench.tasks.map((task) => {
    const r = task.result;
    if (r.state !== 'completed') throw new Error(`rmp-check: task ${task.name} ${r.state}`);
    const ns = (r.latency.p50 * 1e6) / t.checks;
    const [order, api] = task.name.split('/') as [string, string];
    const nat = nativeResults.find((x) => x.order === order && x.api === api);
    const jsFaults = faults.get(task.name);
    let notes = nativeNote ?? `faults ${jsFaults} / ${t.checks}`;
    if (nat !== undefined && nat.faults !== jsFaults) {
      notes = `FAULT COUNT MISMATCH: snpsim ${jsFaults}, native ${nat.faults}`;
      log(`rmp-check: ${notes} (${t.label} ${task.name})`);
    }
    const target = t.inCache ? 0.5 : order === 'random' ? 0.7 : undefined;
    return {
      suite: 'rmp-check',
      case: `${order} / ${t.label} / ${api}`,
      metric: 'ns/check',
      value: ns,
      perSecond: 1e9 / ns,
      ...(nat !== undefined
        ? {
            baseline: { name: 'native C (cc -O2) ns/check', value: nat.nsPerCheck },
            ratio: nat.nsPerCheck / ns,
          }
        : {}),
      ...(target !== undefined ? { target } : {}),
      notes,
    };
  });
}

export const rmpCheckSuite: BenchSuite = {
  name: 'rmp-check',
  description:
    'RMP host-write check (4K mapping) per address: random/sequential, 256 KiB RMP (in cache) and 1 GiB RMP (256 GiB host), single calls and the batch API, against a native C loop',
  async run(options: BenchOptions): Promise<BenchRow[]> {
    const tables: TableCase[] = [
      { label: '256 KiB RMP (64 MiB host, in cache)', pages: 16384, checks: 1 << 16, inCache: true },
      options.quick
        ? { label: '64 MiB RMP (16 GiB host)', pages: 1 << 22, checks: 1 << 18, inCache: false }
        : { label: '1 GiB RMP (256 GiB host)', pages: 1 << 26, checks: 1 << 20, inCache: false },
    ];
    // Other processes on the machine skew both sides; the load average is logged and kept in the notes.
    const load = () => loadavg()[0]!.toFixed(2);
    options.log(`rmp-check: load average ${load()} at start`);
    const native = buildNative(options.log);
    const rows: BenchRow[] = [];
    for (const t of tables) rows.push(...(await measureTable(t, options, native)));
    options.log(`rmp-check: load average ${load()} at end`);
    return rows.map((r) => ({ ...r, notes: `${r.notes ?? ''}; load average ${load()}` }));
  },
};
