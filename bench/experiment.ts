/**
 * `experiment`: how many random model steps per second the experiment commands execute. A fuzz
 * campaign (fresh VM per run, every invariant checked after every step), a divergence search
 * between two model sides (each generated scenario run on both, compared step by step), and
 * the cost of a fresh model VM (platform, firmware init, SNP launch, guest boot), which every fuzz
 * run and every scenario run pays once. Fixed seeds, so each measured call does the same work.
 */
import { Bench } from 'tinybench';
import {
  ModelGuest,
  modelSide,
  parsePolicySpec,
  parseProfileSpec,
  runFuzz,
  searchDivergence,
} from '../guest-harness/index.js';
import type { BenchOptions, BenchRow, BenchSuite } from './suite.js';

const SEED = 0x5eed;

function mean(bench: Bench, name: string): number {
  const r = bench.getTask(name)?.result;
  if (r === undefined || r.state !== 'completed')
    throw new Error(`experiment: task ${name} did not complete`);
  return r.latency.mean;
}

export const experimentSuite: BenchSuite = {
  name: 'experiment',
  description:
    'random model steps/s: fuzz campaign (invariants checked after each step), divergence search (two model configurations), model VM boots/s',
  async run(options: BenchOptions): Promise<BenchRow[]> {
    const { quick, log } = options;
    const policy = parsePolicySpec('linux-6.11')[0]!;
    const profile = parseProfileSpec('genoa')[0]!;
    const runs = quick ? 10 : 40;
    // Steps per call are fixed by the seed; measured once outside the timed loop.
    const fuzzSteps = runFuzz({ policy, profile, seed: SEED, runs }).steps;
    let searchSteps = 0;
    const a = modelSide(policy, profile);
    // Two sides that never diverge: every call does the same generation and runs, no shrinking.
    const b = modelSide(policy, profile);
    const search = () =>
      searchDivergence({
        a,
        b,
        seed: SEED,
        runs,
        onRun: (steps, shrinking) => {
          if (!shrinking) searchSteps += steps;
        },
      });
    await search();
    const searchStepsPerCall = searchSteps;
    log(
      `experiment: ${runs} runs per call: fuzz ${fuzzSteps} steps, search ${searchStepsPerCall} steps per side`,
    );

    const bench = new Bench({
      time: quick ? 200 : 2000,
      iterations: quick ? 2 : 5,
      warmupIterations: 1,
      throws: true,
    });
    bench.add('fuzz', () => {
      runFuzz({ policy, profile, seed: SEED, runs });
    });
    bench.add('search', async () => {
      await search();
    });
    bench.add('boot', () => {
      ModelGuest.boot({
        policyName: policy.name,
        policy: policy.policy,
        profileName: profile.name,
        profile: profile.profile,
        vcpus: 4,
      });
    });
    await bench.run();
    const perSecond = (steps: number, ms: number) => (steps * 1000) / ms;
    const fuzz = perSecond(fuzzSteps, mean(bench, 'fuzz'));
    // Each scenario step runs on both sides: a search step is two model steps.
    const searchRate = perSecond(2 * searchStepsPerCall, mean(bench, 'search'));
    const boots = 1000 / mean(bench, 'boot');
    return [
      {
        suite: 'experiment',
        case: `fuzz, linux-6.11 / genoa, ${runs} runs`,
        metric: 'steps/s',
        value: fuzz,
        perSecond: fuzz,
        notes: `${fuzzSteps} steps per campaign; a fresh VM per run; every invariant after every step`,
      },
      {
        suite: 'experiment',
        case: `search, linux-6.11 vs linux-6.11, ${runs} sequences`,
        metric: 'steps/s',
        value: searchRate,
        perSecond: searchRate,
        notes: 'model steps on both sides (a fresh VM per scenario and side), observations compared',
      },
      {
        suite: 'experiment',
        case: 'model VM boot (4 vCPUs, launched, kernel up)',
        metric: 'boots/s',
        value: boots,
        perSecond: boots,
      },
    ];
  },
};
