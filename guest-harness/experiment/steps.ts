/**
 * Random AP-creation sequences as fast-check model-based commands: each command appends scenario
 * steps (the scenario format of guest-harness/scenario) to a sink — a scenario being built (search)
 * or a running model guest (fuzz). The commands' model tracks what the loader's sequence rules need
 * (pages allocated before use, a concurrent group last), so every generated sequence is a valid
 * scenario. Values are drawn from the interesting ones (the corpus' malformed fields, offline
 * CPUs, bad APIC IDs) and shrink toward the plain case (CREATE of a Linux VMSA on CPU 1).
 */
import fc from 'fast-check';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import type { MpStateName, Step } from '../scenario/index.js';

/** What the generated steps go to. */
export interface StepSink {
  /** `command` is the generating command as text (for counterexamples). */
  addSteps(steps: readonly Step[], command: string): void;
}

/** The commands' model: how many pages exist, whether a concurrent group closed the scenario. */
export interface GenModel {
  pages: number;
  ended: boolean;
}

export type StepCommand<R extends StepSink> = fc.Command<GenModel, R>;

export interface StepOptions {
  /** Generate host steps (KVM_SET_MP_STATE): model-backed targets only. */
  readonly hostSteps: boolean;
  /** Generate model-only steps (host-run, concurrent groups): the in-process model only. */
  readonly modelOnly: boolean;
  /** vCPUs of the scenario's VM (default 4; the loader's default). */
  readonly vcpus?: number;
}

/** At most this many VMSA pages per generated scenario. */
const MAX_PAGES = 4;
const pageName = (model: GenModel, k: number) => `p${k % model.pages}`;

/** A malformed field of an AP Creation request (the corpus' malformed-* cases). */
type Malformation =
  | { readonly kind: 'rax'; readonly rax: string }
  | { readonly kind: 'gpa'; readonly gpa: string }
  | { readonly kind: 'vmpl'; readonly vmpl: number }
  | { readonly kind: 'no-rax' }
  | { readonly kind: 'code'; readonly code: number };

const MALFORMATIONS: fc.Arbitrary<Malformation | undefined> = fc.oneof(
  { weight: 6, arbitrary: fc.constant(undefined) },
  {
    weight: 2,
    // 0x0: SNPActive clear; 0x21: DebugSwap claimed; 0x9: RestrictedInjection; 0x19: both injection modes.
    arbitrary: fc.constantFrom('0x21', '0x0', '0x9', '0x19').map((rax) => ({ kind: 'rax' as const, rax })),
  },
  {
    weight: 2,
    // 0x0 and 0x200000: 2 MiB aligned; 0x1008: unaligned; bit 51: the C-bit; bit 48: a reserved
    // GPA bit (guest MAXPHYADDR 48); 0x80000000: no memslot (guest RAM is 32 MiB).
    arbitrary: fc
      .constantFrom('0x200000', '0x1008', '0x0', '0x8000001001000', '0x1000001001000', '0x80000000')
      .map((gpa) => ({ kind: 'gpa' as const, gpa })),
  },
  { weight: 1, arbitrary: fc.constantFrom(1, 2, 3).map((vmpl) => ({ kind: 'vmpl' as const, vmpl })) },
  { weight: 1, arbitrary: fc.constant({ kind: 'no-rax' as const }) },
  { weight: 1, arbitrary: fc.constantFrom(3, 0xffff).map((code) => ({ kind: 'code' as const, code })) },
);

interface CommandSpec {
  /** How the command reads in a counterexample. */
  readonly text: string;
  /** It names a page (`p#k` = the k-th allocated page, modulo the pages there are). */
  readonly needsPage?: boolean;
  /** Extra condition on the model. */
  readonly when?: (model: Readonly<GenModel>) => boolean;
  readonly steps: (model: Readonly<GenModel>) => Step[];
  /** What the command changes in the model. */
  readonly update?: (model: GenModel) => void;
}

/** A command: a check on the model, the steps it appends, and how it reads in a counterexample. */
class GenCommand<R extends StepSink> implements StepCommand<R> {
  constructor(private readonly spec: CommandSpec) {}

  check(model: Readonly<GenModel>): boolean {
    const s = this.spec;
    return !model.ended && (s.needsPage !== true || model.pages > 0) && (s.when?.(model) ?? true);
  }

  run(model: GenModel, real: R): void {
    const steps = this.spec.steps(model);
    this.spec.update?.(model);
    real.addSteps(steps, this.spec.text);
  }

  toString(): string {
    return this.spec.text;
  }
}

/** The AP Creation step of a request, with at most one malformed field. */
function apStep(
  request: 'create' | 'create-on-init' | 'destroy',
  apic: number,
  page: string | undefined,
  bad: Malformation | undefined,
): Step {
  const base = {
    op: 'ap-creation' as const,
    request: bad?.kind === 'code' ? bad.code : request,
    apic,
  };
  const target = bad?.kind === 'gpa' ? { gpa: bad.gpa } : page !== undefined ? { page } : {};
  switch (bad?.kind) {
    case 'rax':
      return { ...base, ...target, rax: bad.rax };
    case 'vmpl':
      return { ...base, ...target, vmpl: bad.vmpl };
    case 'no-rax':
      return { ...base, ...target, valid: ['exit_code', 'info1', 'info2'] };
    default:
      return { ...base, ...target };
  }
}

/**
 * The command arbitraries. Weights are given by repetition (fast-check picks among the list
 * uniformly): allocations and AP Creation requests come most often.
 */
export function stepCommandArbitraries<R extends StepSink>(
  options: StepOptions,
): fc.Arbitrary<StepCommand<R>>[] {
  const command = (spec: CommandSpec): StepCommand<R> => new GenCommand<R>(spec);
  const cpus = Math.max(2, options.vcpus ?? 4);
  // APs first (shrinks to CPU 1), then the BSP (self-target, the kernel's CPU) and an APIC ID no
  // vCPU has.
  const aps = Array.from({ length: cpus - 1 }, (_, i) => i + 1);
  const apic = fc.constantFrom(...aps, 0, 0xff);
  const ap = fc.constantFrom(...aps);
  const page = fc.nat(MAX_PAGES - 1);
  const bad = (b: Malformation | undefined) => (b === undefined ? '' : `,${JSON.stringify(b)}`);

  const alloc = fc
    .record({
      placement: fc.constantFrom('split' as const, '2m-aligned' as const),
      memory: fc.constantFrom('private' as const, 'shared' as const, 'unvalidated' as const),
      template: fc.constantFrom('linux' as const, 'ovmf' as const, 'zero' as const),
      sevFeatures: fc.constantFrom(undefined, '0x21', '0x0'),
      setVmsa: fc.constantFrom(true, false),
    })
    .map((o) =>
      command({
        text: `alloc(${o.placement},${o.memory},${o.template}${o.sevFeatures ? `,sev_features=${o.sevFeatures}` : ''}${o.setVmsa ? ',vmsa' : ''})`,
        when: (m) => m.pages < MAX_PAGES,
        steps: (m) => {
          const name = `p${m.pages}`;
          return [
            {
              op: 'vmsa-alloc',
              page: name,
              ...(o.placement !== 'split' ? { placement: o.placement } : {}),
              ...(o.memory !== 'private' ? { memory: o.memory } : {}),
            },
            {
              op: 'vmsa-init',
              page: name,
              ...(o.template !== 'linux' ? { template: o.template } : {}),
              ...(o.sevFeatures !== undefined ? { fields: { sev_features: o.sevFeatures } } : {}),
            },
            ...(o.setVmsa ? [{ op: 'rmpadjust' as const, page: name, vmsa: true }] : []),
          ];
        },
        update: (m) => {
          m.pages += 1;
        },
      }),
    );
  const create = fc
    .record({
      request: fc.constantFrom('create' as const, 'create-on-init' as const),
      apic,
      page,
      bad: MALFORMATIONS,
    })
    .map((o) =>
      command({
        text: `${o.request}(apic=${o.apic},p#${o.page}${bad(o.bad)})`,
        needsPage: o.bad?.kind !== 'gpa',
        steps: (m) => [
          apStep(o.request, o.apic, o.bad?.kind === 'gpa' ? undefined : pageName(m, o.page), o.bad),
        ],
      }),
    );
  const destroy = fc
    .record({
      apic,
      bad: fc.option(fc.constantFrom<Malformation>({ kind: 'code', code: 3 }, { kind: 'vmpl', vmpl: 1 }), {
        nil: undefined,
        freq: 4,
      }),
    })
    .map((o) =>
      command({
        text: `destroy(apic=${o.apic}${bad(o.bad)})`,
        steps: () => [apStep('destroy', o.apic, undefined, o.bad)],
      }),
    );
  const onPage = (text: string, step: (name: string) => Step) =>
    page.map((k) =>
      command({ text: `${text}(p#${k})`, needsPage: true, steps: (m) => [step(pageName(m, k))] }),
    );
  const hotplug = fc.record({ online: fc.boolean(), cpu: ap }).map((o) =>
    command({
      text: `cpu-${o.online ? 'online' : 'offline'}(${o.cpu})`,
      steps: () => [{ op: o.online ? 'cpu-online' : 'cpu-offline', cpu: o.cpu }],
    }),
  );

  const arbs: fc.Arbitrary<StepCommand<R>>[] = [
    alloc,
    alloc,
    alloc,
    create,
    create,
    create,
    create,
    destroy,
    destroy,
    onPage('rmpadjust-set', (name) => ({ op: 'rmpadjust', page: name, vmsa: true })),
    onPage('rmpadjust-clear', (name) => ({ op: 'rmpadjust', page: name, vmsa: false })),
    onPage('pvalidate', (name) => ({ op: 'pvalidate', page: name })),
    onPage('pvalidate-rescind', (name) => ({ op: 'pvalidate', page: name, validate: false })),
    onPage('wait-marker', (name) => ({ op: 'wait-marker', page: name })),
    onPage('wait-marker', (name) => ({ op: 'wait-marker', page: name })),
    onPage('vmsa-free', (name) => ({ op: 'vmsa-free', page: name })),
    hotplug,
    hotplug,
    apic.map((a) => command({ text: `init-sipi(${a})`, steps: () => [{ op: 'init-sipi', apic: a }] })),
    apic.map((a) => command({ text: `pv-kick(${a})`, steps: () => [{ op: 'pv-kick', apic: a }] })),
  ];
  if (options.hostSteps) {
    const state = fc.constantFrom<MpStateName>(
      'RUNNABLE',
      'HALTED',
      'UNINITIALIZED',
      'INIT_RECEIVED',
      'AP_RESET_HOLD',
      'STOPPED',
    );
    arbs.push(
      fc.record({ vcpu: ap, state }).map((o) =>
        command({
          text: `set-mp-state(${o.vcpu},${o.state})`,
          steps: () => [{ op: 'host-set-mp-state', vcpu: o.vcpu, state: o.state }],
        }),
      ),
    );
  }
  if (options.modelOnly) {
    arbs.push(ap.map((v) => command({ text: `host-run(${v})`, steps: () => [{ op: 'host-run', vcpu: v }] })));
    // Two requests at once from two issuers (never the target, CPU 1): every interleaving is explored.
    const issuers = Array.from({ length: cpus }, (_, i) => i).filter((i) => i !== 1);
    const request = fc.constantFrom('create' as const, 'destroy' as const);
    arbs.push(
      fc
        .record({
          from: fc.uniqueArray(fc.constantFrom(...issuers), { minLength: 2, maxLength: 2 }),
          requests: fc.tuple(request, request),
          pages: fc.tuple(page, page),
        })
        .map((o) =>
          command({
            text: `concurrent(${o.requests[0]} from ${o.from[0]}, ${o.requests[1]} from ${o.from[1]} -> apic 1)`,
            needsPage: true,
            steps: (m) => [
              {
                op: 'concurrent',
                requests: ([0, 1] as const).map((j) => ({
                  from: o.from[j]!,
                  request: o.requests[j],
                  apic: 1,
                  ...(o.requests[j] === 'create' ? { page: pageName(m, o.pages[j]) } : {}),
                })),
              },
            ],
            update: (m) => {
              m.ended = true;
            },
          }),
        ),
    );
  }
  return arbs;
}

/** The steps a command sequence appends, running its checks as fc.modelRun does. */
export function runCommands<R extends StepSink>(real: R, commands: Iterable<StepCommand<R>>): R {
  fc.modelRun(() => ({ model: { pages: 0, ended: false }, real }), commands);
  return real;
}

/** A sink that collects the steps and the commands that made them. */
export class StepList implements StepSink {
  readonly steps: Step[] = [];
  readonly commands: string[] = [];
  /** Index into `commands` of each step's command. */
  readonly owners: number[] = [];
  addSteps(steps: readonly Step[], command: string): void {
    for (const step of steps) {
      this.steps.push(step);
      this.owners.push(this.commands.length);
    }
    this.commands.push(command);
  }

  /** The first `count` steps and the commands they came from. */
  prefix(count: number): StepList {
    const out = new StepList();
    let last = -1;
    for (let i = 0; i < Math.min(count, this.steps.length); i++) {
      const owner = this.owners[i]!;
      if (owner !== last) {
        out.commands.push(this.commands[owner]!);
        last = owner;
      }
      out.steps.push(this.steps[i]!);
      out.owners.push(out.commands.length - 1);
    }
    return out;
  }
}

/** A replay token: fast-check's shrink path, then `@` and the commands' replay path. */
export const REPLAY_PATTERN = /^[0-9]+(:[0-9]+)*(@[A-Za-z0-9+/]*:[A-Za-z0-9+/]*)?$/;

/**
 * The token that replays a counterexample of fc.commands: the shrink path alone is not enough,
 * because the commands' shrinker also follows which commands ran (fast-check's replayPath).
 */
export function replayToken(path: string, counterexample: Iterable<unknown>): string {
  const commands = /replayPath="([A-Za-z0-9+/]*:[A-Za-z0-9+/]*)"/.exec(String(counterexample))?.[1];
  return commands === undefined ? path : `${path}@${commands}`;
}

/** The shrink path and the commands' replay path of a token (checked by REPLAY_PATTERN first). */
export function parseReplayToken(token: string): { readonly path: string; readonly replayPath?: string } {
  const at = token.indexOf('@');
  return at < 0 ? { path: token } : { path: token.slice(0, at), replayPath: token.slice(at + 1) };
}

/** fast-check's check(), with a replay that does not match its seed turned into an input error. */
export function replayable<T>(token: string | undefined, check: () => T): T {
  try {
    return check();
  } catch (error) {
    if (token !== undefined && /^Unable to replay|replayPath/.test((error as Error).message)) {
      throw new SnpsimError(
        SnpsimErrorCode.INPUT_INVALID,
        `--path ${token} does not replay a counterexample of this seed (another --max-commands, configuration or snpsim version?): ${(error as Error).message}`,
      );
    }
    throw error;
  }
}
