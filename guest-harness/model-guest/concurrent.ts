/**
 * Model-only `concurrent` steps: AP Creation requests issued at the same time from several vCPUs,
 * run through the host's interleaving scheduler. Each issuer's KVM_RUN (the guest writes its GHCB
 * and executes VMGEXIT, KVM handles it) and each target vCPU's thread are activities; every
 * feasible order of their atomic steps is replayed on a fresh guest (boot + the scenario's earlier
 * steps), and the orders are grouped by what they end in.
 *
 * Model choice: an issuer's entry into the guest (the "enter guest mode" and "VMRUN" steps before
 * its VMGEXIT) is taken when the activity starts; it cannot interact with another issuer's request.
 */
import type { ConcurrentRequest } from '../scenario/index.js';
import { apCreationRequest } from '../scenario/index.js';
import type { ModelGuest } from './guest.js';
import { mpStateLabel } from './guest.js';
import {
  type Activity,
  enumerate,
  type GuestEntry,
  type GuestExit,
  INVALID_PAGE,
  type Interleaving,
  PAGE_SIZE,
  type Steps,
} from './host-api.js';
import { CALL_FUNCTION_SINGLE_VECTOR, ghcbOf, ghcbPage } from './machine.js';

/** Complete orders tried at most; beyond it the result says `truncated=1`. */
export const MAX_CONCURRENT_RUNS = 1000;

interface World {
  readonly guest: ModelGuest;
}

/** What one order ended in: each request's GHCB answer and each target's state. */
interface Ending {
  readonly answers: readonly string[];
  readonly targets: Readonly<Record<string, string>>;
  readonly vm: string;
}

export interface ConcurrentResult {
  /** Protocol-style values: r<j>_sw_exit_info1/2 (or `varies`), orders, outcomes, truncated. */
  readonly values: Record<string, string>;
  /** One line per distinct outcome, for the model state's events. */
  readonly outcomes: readonly string[];
}

/** The guest code of an issuer's VMGEXIT: its GHCB written as the module writes it, then VMGEXIT. */
function issuerAction(
  guest: ModelGuest,
  index: number,
  request: ConcurrentRequest,
  pages: ReadonlyMap<string, number>,
) {
  const m = guest.machine;
  // The module's event; a handle naming no page is sent as SW_EXITINFO2 = 0 (nothing to refuse here).
  const event = guest.module.apCreationEvent(apCreationRequest(request, pages));
  const ghcb = ghcbPage(event.fields, event.valid, m.vm.ghcbVersion);
  const gpa = m.cpus[index]!.ghcbGpa;
  return (entry: GuestEntry): GuestExit => {
    const fault = m.write(entry.guest, gpa, ghcb, 0);
    if (fault !== undefined) return fault;
    entry.writeGhcbMsr(BigInt(gpa));
    return { kind: 'vmgexit' };
  };
}

/** An activity over a host KVM_RUN iteration, with the steps before `in guest` taken at start. */
function kvmRunActivity(
  name: string,
  steps: (world: World) => Steps<unknown>,
  skipEntry: boolean,
): Activity<World> {
  return {
    name,
    start: function* (world: World): Steps<unknown> {
      const gen = steps(world);
      let next = gen.next();
      while (
        skipEntry &&
        next.done !== true &&
        next.value.kind === 'point' &&
        /: (enter guest mode|VMRUN)$/.test(next.value.label)
      ) {
        next = gen.next();
      }
      while (next.done !== true) {
        yield next.value;
        next = gen.next();
      }
      return next.value;
    },
  };
}

/** Prepares a fresh guest for the step: each issuer's request becomes the next thing its CPU does. */
function prepare(
  guest: ModelGuest,
  requests: readonly ConcurrentRequest[],
  pages: ReadonlyMap<string, number>,
): void {
  const m = guest.machine;
  for (const request of requests) {
    const cpu = m.cpus[request.from];
    if (cpu === undefined) continue;
    // The module runs its request on that CPU (smp_call_function_single): an IPI wakes it.
    if (request.from !== 0) m.vm.sendFixed(cpu.apicId, CALL_FUNCTION_SINGLE_VECTOR);
    cpu.action = issuerAction(guest, request.from, request, pages);
  }
}

/** Each issuer resumes and reads its GHCB, the VM runs on, and the targets' states are taken. */
function ending(guest: ModelGuest, requests: readonly ConcurrentRequest[]): Ending {
  const m = guest.machine;
  const answers = requests.map((request) => {
    const cpu = m.cpus[request.from];
    if (cpu === undefined || cpu.action !== undefined) return 'not-issued';
    const r = m.run(request.from, (entry) => {
      const bytes = m.read(entry.guest, cpu.ghcbGpa, PAGE_SIZE, 0);
      if (!(bytes instanceof Uint8Array)) return { exit: bytes, value: 'unreadable' };
      const ghcb = ghcbOf(bytes);
      const i1 = ghcb.get('sw_exit_info_1');
      const i2 = ghcb.get('sw_exit_info_2');
      return { exit: { kind: 'intr' } as GuestExit, value: `0x${i1.toString(16)},0x${i2.toString(16)}` };
    });
    return 'stopped' in r ? 'no-answer' : r.value;
  });
  m.settle(0);
  const targets: Record<string, string> = {};
  for (const apic of new Set(requests.map((r) => r.apic))) {
    const v = m.vm.vcpus.find((x) => x.vcpuId === apic);
    if (v === undefined) continue;
    const vmsa = v.vmcbVmsaPa === INVALID_PAGE ? 'INVALID_PAGE' : `0x${v.vmcbVmsaPa.toString(16)}`;
    targets[`vcpu${apic}`] = `${mpStateLabel(v.mpState)} vmsa=${vmsa}`;
  }
  return { answers, targets, vm: guest.stopped === undefined ? 'alive' : 'dead' };
}

/**
 * Runs `requests` issued together. `setup` returns a fresh guest in the state right before the step
 * (called once per explored order prefix). Without `orders`, every interleaving of the issuers'
 * and targets' atomic steps is enumerated with the host's scheduler; with `orders` (permutations of
 * the request indexes), each order runs the requests one after the other, each to completion.
 */
export function runConcurrent(
  setup: () => ModelGuest,
  requests: readonly ConcurrentRequest[],
  pages: ReadonlyMap<string, number>,
  orders?: readonly (readonly number[])[],
  interleaveTargets = false,
): ConcurrentResult {
  const issuers = new Set(requests.map((r) => r.from));
  const spec: Interleaving<World> = {
    setup(): World {
      const guest = setup();
      prepare(guest, requests, pages);
      return { guest };
    },
    activities: [
      ...requests.map((request, j) =>
        kvmRunActivity(
          `request ${j} (vCPU ${request.from})`,
          (world) => world.guest.machine.vcpu(request.from).runSteps(world.guest.machine.guestCode),
          true,
        ),
      ),
      ...[...new Set(requests.map((r) => r.apic))]
        .filter((apic) => interleaveTargets && !issuers.has(apic))
        .map((apic) =>
          kvmRunActivity(
            `target vCPU ${apic}`,
            (world) => {
              const m = world.guest.machine;
              const v = m.vm.vcpus.find((x) => x.vcpuId === apic);
              return v === undefined ? nothing() : v.runSteps(m.guestCode, { whenBlocked: 'wait' });
            },
            false,
          ),
        ),
    ],
    observe: (world) => ending(world.guest, requests),
  };

  const endings: { ending: Ending; count: number; example?: readonly string[] }[] = [];
  let runs = 0;
  let truncated = false;
  const add = (e: Ending, count = 1, example?: readonly string[]) => {
    const same = endings.find((x) => JSON.stringify(x.ending) === JSON.stringify(e));
    if (same) same.count += count;
    else endings.push({ ending: e, count, ...(example !== undefined ? { example } : {}) });
  };
  if (orders !== undefined) {
    for (const order of orders) {
      const guest = setup();
      prepare(guest, requests, pages);
      for (const j of order) {
        const request = requests[j]!;
        guest.machine.vcpu(request.from).run(guest.machine.guestCode);
      }
      runs++;
      add(ending(guest, requests));
    }
  } else {
    const e = enumerate(spec, { maxRuns: MAX_CONCURRENT_RUNS });
    runs = e.runs;
    truncated = e.truncated;
    for (const o of e.outcomes)
      add(
        o.observation as Ending,
        o.count,
        o.example.trace.map((t) => t.label),
      );
  }
  const values: Record<string, string> = {
    orders: String(runs),
    outcomes: String(endings.length),
    vm_dead_outcomes: String(endings.filter((e) => e.ending.vm === 'dead').length),
    truncated: truncated ? '1' : '0',
  };
  requests.forEach((_, j) => {
    const seen = new Set(endings.map((e) => e.ending.answers[j] ?? 'none'));
    const only = seen.size === 1 ? [...seen][0] : undefined;
    const [i1, i2] = only?.includes(',') ? only.split(',') : ['varies', 'varies'];
    values[`r${j}_sw_exit_info1`] = i1 ?? 'varies';
    values[`r${j}_sw_exit_info2`] = i2 ?? 'varies';
  });
  const outcomes = endings.map((e, k) => {
    const answers = e.ending.answers.map((a, j) => `r${j}=(${a})`).join(' ');
    const targets = Object.entries(e.ending.targets)
      .map(([t, st]) => `${t} ${st}`)
      .join(' ');
    const order = e.example === undefined ? '' : `; first order: ${e.example.join(' > ')}`;
    return `outcome ${k + 1} (${e.count} order${e.count === 1 ? '' : 's'}): ${answers} ${targets} vm ${e.ending.vm}${order}`;
  });
  return { values, outcomes };
}

/** An activity with no steps (a target APIC ID that names no vCPU). */
function nothing(): Steps<unknown> {
  return [][Symbol.iterator]() as unknown as Steps<unknown>;
}
