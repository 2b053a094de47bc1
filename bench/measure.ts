/**
 * `measure`: launch-measurement throughput. An 8 MiB synthetic image measured as NORMAL pages (one
 * SHA-384 of the page + one SHA-384 of the 0x70-byte PAGE_INFO per 4 KiB) against raw node:crypto
 * SHA-384 of the same 4 KiB pages (the contents hashes alone), so the ratio shows the cost of the
 * PAGE_INFO chain. Two baselines: the fastest raw form (`crypto.hash` returning a latin1 string,
 * what the model itself uses for the page hash) and the usual one (`crypto.hash` returning a Buffer).
 * Also: PAGE_INFO steps/s for pages that are not hashed (ZERO), and a whole QEMU guest.
 */
import { hash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Bench } from 'tinybench';
import { LaunchDigest, parseOvmf, SnpPageType, snpLaunchDigest, VmmType } from '../psp-firmware/index.js';
import type { BenchOptions, BenchRow, BenchSuite } from './suite.js';

const PAGE = 4096;
const TARGET = 0.9;

/** Deterministic non-zero bytes (xorshift32), so no page hashes like another. */
function syntheticImage(bytes: number): Buffer {
  const image = Buffer.alloc(bytes);
  let x = 0x9e3779b9;
  for (let i = 0; i < bytes; i += 4) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    image.writeUInt32LE(x >>> 0, i);
  }
  return image;
}

function p50(bench: Bench, name: string): number {
  const task = bench.getTask(name);
  const r = task?.result;
  if (r === undefined || r.state !== 'completed') throw new Error(`measure: task ${name} did not complete`);
  return r.latency.p50;
}

export const measureSuite: BenchSuite = {
  name: 'measure',
  description:
    'launch digest: MB/s of NORMAL pages (page SHA-384 + PAGE_INFO SHA-384) vs raw node:crypto SHA-384 of the same 4 KiB pages; PAGE_INFO steps/s; a whole QEMU guest',
  async run(options: BenchOptions): Promise<BenchRow[]> {
    const { quick, log } = options;
    const bytes = quick ? 1 << 20 : 8 << 20;
    const mib = bytes / 2 ** 20;
    const image = syntheticImage(bytes);
    const gpa = 0x1_0000_0000 - bytes;
    const ld = new LaunchDigest();

    const fixture = readFileSync(new URL('../../test/fixtures/ovmf/ovmf_AmdSev_suffix.bin', import.meta.url));
    const ovmfBytes = Buffer.concat([Buffer.alloc((4 << 20) - PAGE), fixture]); // a 4 MiB OVMF.fd
    const ovmf = parseOvmf(ovmfBytes, 'synthetic 4 MiB OVMF');
    if (!ovmf.ok) throw new Error(ovmf.error.message);

    let sink = 0;
    const tasks: Record<string, () => void> = {
      model: () => {
        ld.reset();
        const bad = ld.updatePages(SnpPageType.NORMAL, image, gpa, bytes);
        if (bad !== undefined) throw new Error(bad.message);
      },
      'raw-latin1': () => {
        for (let o = 0; o < bytes; o += PAGE)
          sink += hash('sha384', image.subarray(o, o + PAGE), 'binary').length;
      },
      'raw-buffer': () => {
        for (let o = 0; o < bytes; o += PAGE)
          sink += hash('sha384', image.subarray(o, o + PAGE), 'buffer').length;
      },
    };
    // The model and its baselines run in short interleaved rounds (rotating order) and each ratio is
    // taken within a round, so a noisy neighbour on the machine slows both sides of a ratio alike.
    const rounds = quick ? 2 : 9;
    const names = Object.keys(tasks);
    const perRound: Record<string, number>[] = [];
    log(`measure: ${mib} MiB synthetic image, ${bytes / PAGE} pages, ${rounds} interleaved rounds`);
    for (let round = 0; round < rounds; round++) {
      const bench = new Bench({ time: quick ? 50 : 300, iterations: 3, warmupIterations: 1, throws: true });
      for (let i = 0; i < names.length; i++) {
        const name = names[(round + i) % names.length] as string;
        bench.add(name, tasks[name] as () => void);
      }
      await bench.run();
      perRound.push(Object.fromEntries(names.map((n) => [n, p50(bench, n)])));
    }
    const others = new Bench({
      time: quick ? 100 : 1000,
      iterations: quick ? 3 : 10,
      warmupIterations: 1,
      throws: true,
    });
    others.add('zero-steps', () => {
      ld.reset();
      ld.updatePages(SnpPageType.ZERO, null, gpa, bytes);
    });
    others.add('guest', () => {
      const r = snpLaunchDigest({
        ovmf: ovmf.value,
        vcpus: 4,
        vcpuSignature: 0x800f12,
        guestFeatures: 0x1n,
        vmmType: VmmType.QEMU,
      });
      if (!r.ok) throw new Error(r.error.message);
    });
    await others.run();
    if (sink === 0) log('measure: (sink)');

    const mbps = (ms: number) => bytes / 1e6 / (ms / 1e3);
    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? Number.NaN;
    const at = (name: string) => perRound.map((r) => r[name] ?? Number.NaN);
    const model = mbps(median(at('model')));
    const rawLatin1 = mbps(median(at('raw-latin1')));
    const rawBuffer = mbps(median(at('raw-buffer')));
    const ratioTo = (name: string) =>
      median(perRound.map((r) => (r[name] ?? Number.NaN) / (r.model ?? Number.NaN)));
    const pages = bytes / PAGE;
    const zeroMs = p50(others, 'zero-steps');
    const guestMs = p50(others, 'guest');
    return [
      {
        suite: 'measure',
        case: `NORMAL pages, ${mib} MiB, vs fastest raw hash`,
        metric: 'MB/s',
        value: model,
        perSecond: (model * 1e6) / PAGE,
        baseline: { name: 'crypto.hash(page) latin1 MB/s', value: rawLatin1 },
        ratio: ratioTo('raw-latin1'),
        target: TARGET,
        notes: `strict baseline: the same one-shot call the model uses for the page hash; median of ${rounds} interleaved rounds`,
      },
      {
        suite: 'measure',
        case: `NORMAL pages, ${mib} MiB, vs Buffer-returning raw hash`,
        metric: 'MB/s',
        value: model,
        baseline: { name: 'crypto.hash(page) Buffer MB/s', value: rawBuffer },
        ratio: ratioTo('raw-buffer'),
        target: TARGET,
      },
      {
        suite: 'measure',
        case: `ZERO pages, ${mib} MiB (PAGE_INFO hash only)`,
        metric: 'ns/step',
        value: (zeroMs * 1e6) / pages,
        perSecond: pages / (zeroMs / 1e3),
      },
      {
        suite: 'measure',
        case: 'QEMU guest: 4 MiB OVMF + metadata + 4 VMSAs',
        metric: 'ms/guest',
        value: guestMs,
        perSecond: 1e3 / guestMs,
      },
    ];
  },
};
