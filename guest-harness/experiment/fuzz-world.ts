/**
 * The world of one fuzz run: a booted model guest (platform, firmware, KVM, the guest kernel and
 * the snpsim module), two data pages the guest owns, and the operations a hostile host and a
 * guest can perform on it. After every operation the invariants (invariants.ts) are checked; a
 * violation is thrown as InvariantViolation.
 *
 * Probes wrap the platform's PVALIDATE, RMPADJUST, RMPUPDATE and VMRUN on this instance to record
 * what they did (they change nothing). Mutants replace one platform behaviour with a wrong one, so
 * a campaign can show that it catches the bug (a check of the checker; never for real results).
 */

import {
  PAGE_SIZE,
  PMD_SIZE,
  pscRequest,
  VMGEXIT_PSC_OP_PRIVATE,
  VMGEXIT_PSC_OP_SHARED,
  type Vm,
} from '../../host/index.js';
import {
  AccessKind,
  type GuestContext,
  MappingSize,
  type Platform,
  RMPADJUST_VMSA,
  SevStatus,
  SnpPolicy,
  VC_PAGE_NOT_VALIDATED,
  VmrunFailure,
  VmsaOffset,
} from '../../psp-firmware/index.js';
import { isStopped, ModelGuest, type NamedPolicy, type NamedProfile } from '../model-guest/index.js';
import {
  RMPADJUST_RDX_CLEAR_VMSA,
  RMPADJUST_RDX_SET_VMSA,
  type Step,
  stepRequests,
} from '../scenario/index.js';
import { checkTransition, describeEntry, InvariantViolation, type PageView } from './invariants.js';
import type { StepSink } from './steps.js';

/** Wrong behaviours a campaign must catch: name -> what breaks. */
export const MUTANTS = Object.freeze({
  'host-write-assigned': 'the host access check lets every host write through (assigned pages included)',
  'rmpupdate-keeps-validated': 'RMPUPDATE keeps the Validated bit of the page it reassigns',
  'rmpupdate-sets-validated': 'RMPUPDATE assigning a page to a guest sets Validated',
  'rmpupdate-ignores-immutable': 'RMPUPDATE rewrites immutable entries',
  'vmrun-ignores-vmsa-bit': 'VMRUN enters a page whose RMP VMSA bit is clear',
  'no-vc-on-unvalidated': 'a guest access to its unvalidated page gets no #VC',
  'dbg-ignores-policy': 'SNP_DBG_DECRYPT / SNP_DBG_ENCRYPT copy guest memory whatever the guest policy',
} as const);
export type MutantName = keyof typeof MUTANTS;

/** Data pages the fuzz's guest owns. */
export const DATA_PAGES = 2;
/** Bytes of a data page the guest writes and checks (a whole page costs time, not coverage). */
const PATTERN_BYTES = 64;
/** vCPUs of the fuzzed VM (the scenario default). */
const VCPUS = 4;
/** A page the host can aim at. */
export type HostTarget =
  | { readonly kind: 'data'; readonly i: number }
  | { readonly kind: 'vmsa-page'; readonly k: number }
  | { readonly kind: 'launch-vmsa'; readonly vcpu: number }
  | { readonly kind: 'ghcb'; readonly cpu: number }
  | { readonly kind: 'gctx' }
  | { readonly kind: 'kernel'; readonly page: number };

export type RmpTargetState = 'hypervisor' | 'guest' | 'guest-remap' | 'firmware' | 'other-asid' | 'guest-2m';

/** One fuzz operation (the AP Creation family comes as scenario steps, steps.ts). */
export type FuzzOp =
  | { readonly op: 'guest-write' | 'guest-read'; readonly d: number }
  | { readonly op: 'guest-pvalidate'; readonly d: number; readonly validate: boolean }
  | { readonly op: 'guest-rmpadjust'; readonly d: number; readonly vmsa: boolean }
  | { readonly op: 'guest-psc'; readonly d: number; readonly shared: boolean }
  | { readonly op: 'host-write'; readonly target: HostTarget; readonly mapping2M: boolean }
  | { readonly op: 'host-rmpupdate'; readonly target: HostTarget; readonly state: RmpTargetState }
  | { readonly op: 'host-psmash'; readonly target: HostTarget }
  | { readonly op: 'fw-dbg'; readonly target: HostTarget; readonly encrypt: boolean }
  | { readonly op: 'fw-reclaim'; readonly target: HostTarget }
  | { readonly op: 'nmi'; readonly apic: number };

export function describeTarget(t: HostTarget): string {
  switch (t.kind) {
    case 'data':
      return `data${t.i}`;
    case 'vmsa-page':
      return `p#${t.k}`;
    case 'launch-vmsa':
      return `launch-vmsa${t.vcpu}`;
    case 'ghcb':
      return `ghcb${t.cpu}`;
    case 'gctx':
      return 'gctx';
    case 'kernel':
      return `kernel-page${t.page}`;
  }
}

export function describeOp(o: FuzzOp): string {
  switch (o.op) {
    case 'guest-write':
    case 'guest-read':
      return `${o.op}(data${o.d})`;
    case 'guest-pvalidate':
      return `guest-pvalidate(data${o.d},${o.validate ? 'validate' : 'rescind'})`;
    case 'guest-rmpadjust':
      return `guest-rmpadjust(data${o.d},vmsa ${o.vmsa ? 'set' : 'clear'})`;
    case 'guest-psc':
      return `guest-psc(data${o.d},${o.shared ? 'shared' : 'private'})`;
    case 'host-write':
      return `host-write(${describeTarget(o.target)}${o.mapping2M ? ',2M mapping' : ''})`;
    case 'host-rmpupdate':
      return `host-rmpupdate(${describeTarget(o.target)},${o.state})`;
    case 'host-psmash':
    case 'fw-reclaim':
      return `${o.op}(${describeTarget(o.target)})`;
    case 'fw-dbg':
      return `fw-dbg-${o.encrypt ? 'encrypt' : 'decrypt'}(${describeTarget(o.target)})`;
    case 'nmi':
      return `nmi(${o.apic})`;
  }
}

export interface FuzzWorldConfig {
  readonly policy: NamedPolicy;
  readonly profile: NamedProfile;
  readonly mutant?: MutantName;
}

/** What the probes saw during one operation. */
interface Seen {
  readonly validated: Set<number>;
  readonly vmsaSet: Set<number>;
  readonly violations: InvariantViolation[];
}

function pattern(serial: number): Uint8Array {
  const out = new Uint8Array(PATTERN_BYTES);
  let x = (serial * 0x9e3779b1) >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

const same = (a: Uint8Array, b: Uint8Array) => a.length === b.length && a.every((v, i) => v === b[i]);
const hex = (v: number | bigint) => `0x${v.toString(16)}`;

export class FuzzWorld implements StepSink {
  readonly guest: ModelGuest;
  readonly platform: Platform;
  readonly vm: Vm;
  /** GPAs of the data pages. */
  readonly data: readonly number[];
  /** What the guest last wrote to each data page, while it is known. */
  readonly #shadow: (Uint8Array | undefined)[];
  /** Scenario page name -> module handle (in allocation order, as the loader assigns them). */
  readonly #pages = new Map<string, number>();
  /** A hypervisor page the firmware's DBG commands copy to and from. */
  readonly #scratch: number;
  readonly #seen: Seen = { validated: new Set(), vmsaSet: new Set(), violations: [] };
  #serial = 0;
  /** Model steps executed (operations and scenario steps). */
  steps = 0;
  /** What was executed, in order (a counterexample's operations). */
  readonly log: string[] = [];

  private constructor(guest: ModelGuest, data: number[], scratch: number) {
    this.guest = guest;
    this.platform = guest.machine.system.platform;
    this.vm = guest.machine.vm;
    this.data = data;
    this.#shadow = data.map(() => undefined);
    this.#scratch = scratch;
  }

  /** Boots the guest, takes its data pages and writes them once, then installs probes and mutant. */
  static boot(config: FuzzWorldConfig): FuzzWorld {
    const guest = ModelGuest.boot({
      policyName: config.policy.name,
      policy: config.policy.policy,
      profileName: config.profile.name,
      profile: config.profile.profile,
      vcpus: VCPUS,
    });
    const m = guest.machine;
    const data: number[] = [];
    for (let i = 0; i < DATA_PAGES; i++) {
      const gpa = m.allocPages(0, true);
      if (gpa === undefined || isStopped(gpa)) throw new Error('fuzz: the model guest has no data page');
      data.push(gpa);
    }
    const scratch = m.kvm.alloc.allocPage();
    if (scratch === undefined) throw new Error('fuzz: no host page for the firmware to copy to');
    const world = new FuzzWorld(guest, data, scratch);
    for (let i = 0; i < DATA_PAGES; i++) world.#guestWrite(i);
    if (config.mutant !== undefined) world.#mutate(config.mutant);
    world.#probe();
    return world;
  }

  // ---- the operations -----------------------------------------------------------------------

  /** Scenario steps (the AP Creation family) executed as the guest's agent would. */
  addSteps(steps: readonly Step[], command: string): void {
    for (const step of steps) {
      this.#checked(steps.length === 1 ? command : `${command}: ${step.op}`, () => {
        if (step.op === 'vmsa-alloc') this.#pages.set(step.page, this.#pages.size);
        if (step.op === 'host-run') {
          this.guest.hostRun(step.vcpu);
          return;
        }
        for (const request of stepRequests(step, this.#pages)) {
          if (isStopped(this.guest.execute(request))) break;
        }
      });
    }
  }

  /** One fuzz operation. */
  apply(o: FuzzOp): void {
    this.#checked(describeOp(o), () => this.#run(o));
    // A full recount costs a pass over the RMP: after the host's own RMP writes, and at the end.
    if (o.op === 'host-rmpupdate' || o.op === 'host-psmash' || o.op === 'fw-reclaim') this.#checkCounters();
  }

  /** The end of a run: the checks too costly for every step. */
  finish(): void {
    this.#checkCounters();
  }

  #checkCounters(): void {
    const problems = this.platform.rmp.verifyCounters();
    if (problems.length > 0) throw new InvariantViolation('rmp-counters', problems.join('; '));
  }

  #run(o: FuzzOp): void {
    const m = this.guest.machine;
    switch (o.op) {
      case 'guest-write':
        this.#guestWrite(o.d);
        return;
      case 'guest-read':
        this.#guestRead(o.d);
        return;
      case 'guest-pvalidate':
        m.pvalidate(0, this.data[o.d]!, 0, o.validate ? 1 : 0);
        return;
      case 'guest-rmpadjust':
        m.rmpadjust(0, this.data[o.d]!, 0, o.vmsa ? RMPADJUST_RDX_SET_VMSA : RMPADJUST_RDX_CLEAR_VMSA);
        return;
      case 'guest-psc':
        // The MSR protocol's operations have the NAE entries' values (1 private, 2 shared).
        m.msrProtocol(
          0,
          pscRequest(
            BigInt(this.data[o.d]! / PAGE_SIZE),
            o.shared ? VMGEXIT_PSC_OP_SHARED : VMGEXIT_PSC_OP_PRIVATE,
          ),
        );
        return;
      case 'host-write':
        this.#hostWrite(o.target, o.mapping2M);
        return;
      case 'host-rmpupdate': {
        const spa = this.#resolve(o.target);
        if (spa !== undefined)
          this.platform.rmpupdate(
            spa - (o.state === 'guest-2m' ? spa % PMD_SIZE : 0),
            this.#rmpState(spa, o.state),
          );
        return;
      }
      case 'host-psmash': {
        const spa = this.#resolve(o.target);
        if (spa !== undefined) this.platform.psmash(spa - (spa % PMD_SIZE));
        return;
      }
      case 'fw-dbg': {
        const spa = this.#resolve(o.target);
        const gctx = this.vm.gctxPa;
        const fw = m.system.firmware;
        if (spa === undefined || gctx === undefined) return;
        const status = o.encrypt
          ? fw.dbgEncrypt(gctx, this.#scratch, spa)
          : fw.dbgDecrypt(gctx, spa, this.#scratch);
        const policy = fw.guestContext(gctx)?.policy ?? 0n;
        if (status === SevStatus.SUCCESS && (policy & SnpPolicy.DEBUG) === 0n) {
          this.#seen.violations.push(
            new InvariantViolation(
              'dbg-non-debug-guest',
              `SNP_DBG_${o.encrypt ? 'ENCRYPT' : 'DECRYPT'} of SPA ${hex(spa)} succeeded for guest policy ${hex(policy)}`,
            ),
          );
        }
        return;
      }
      case 'fw-reclaim': {
        const spa = this.#resolve(o.target);
        if (spa !== undefined) m.system.firmware.pageReclaim(spa);
        return;
      }
      case 'nmi':
        this.vm.sendNmi(o.apic);
        m.settle(0);
        return;
    }
  }

  /** The guest writes a fresh pattern to data page `d` (C-bit set) and remembers it. */
  #guestWrite(d: number): void {
    const gpa = this.data[d]!;
    const bytes = pattern(++this.#serial);
    const done = this.#onBsp(gpa, AccessKind.WRITE, (spa) => this.platform.memory.write(spa, bytes));
    if (done) this.#shadow[d] = bytes;
  }

  /** The guest reads data page `d` (C-bit set): data only from its own validated page, as written. */
  #guestRead(d: number): void {
    const gpa = this.data[d]!;
    this.#onBsp(gpa, AccessKind.READ, (spa) => {
      const page = this.#view(spa);
      const e = page.entry;
      if (!(e?.assigned === true && e.asid === this.vm.asid && page.gpa === gpa && e.validated)) {
        this.#seen.violations.push(
          new InvariantViolation(
            'unvalidated-read',
            `the guest read GPA ${hex(gpa)} whose RMP entry is ${describeEntry(e)}`,
          ),
        );
      }
      const got = this.platform.memory.read(spa, PATTERN_BYTES);
      const want = this.#shadow[d];
      if (want !== undefined && !same(got, want)) {
        this.#seen.violations.push(
          new InvariantViolation(
            'guest-memory-integrity',
            `data page at GPA ${hex(gpa)} changed behind the guest (RMP entry ${describeEntry(e)})`,
          ),
        );
      }
    });
  }

  /**
   * One guest access on the BSP through the RMP check: `use(spa)` when allowed; a #NPF goes to the
   * host (which may fault the page in) and the access is retried; a #VC means no data (model
   * choice: this guest survives it, so the run goes on). True when the access went through.
   */
  #onBsp(gpa: number, kind: AccessKind, use: (spa: number) => void): boolean {
    let allowed = false;
    this.guest.machine.run(0, (entry) => {
      const fault = this.platform.guestAccess(entry.guest, gpa, kind, 1);
      if (fault === 0) {
        use(entry.guest.translate(gpa));
        allowed = true;
        return { exit: { kind: 'intr' }, value: 0 };
      }
      if (fault >= 2 ** 32) return { exit: { kind: 'npf', gpa, exitInfo1: fault }, value: fault };
      return { exit: { kind: 'intr' }, value: fault };
    });
    return allowed;
  }

  /** The host writes through a mapping it makes of `target`, if the RMP check lets it. */
  #hostWrite(target: HostTarget, mapping2M: boolean): void {
    const spa = this.#resolve(target);
    if (spa === undefined) return;
    const mapping = mapping2M ? MappingSize.SIZE_2M : MappingSize.SIZE_4K;
    if (this.platform.hostAccess(spa, AccessKind.WRITE, mapping) !== 0) return;
    // Allowed: nothing the mapping covers may be assigned.
    const first = mapping2M ? spa - (spa % PMD_SIZE) : spa - (spa % PAGE_SIZE);
    for (let at = first; at < first + (mapping2M ? PMD_SIZE : PAGE_SIZE); at += PAGE_SIZE) {
      const e = this.#view(at).entry;
      if (e?.assigned === true) {
        this.#seen.violations.push(
          new InvariantViolation(
            'host-write-guest-memory',
            `the host got a writable ${mapping2M ? '2 MB' : '4 KiB'} mapping of SPA ${hex(spa)} over SPA ${hex(at)}, ${describeEntry(e)}`,
          ),
        );
        break;
      }
    }
    this.platform.memory.write(spa, pattern(0x5eed + ++this.#serial));
  }

  #rmpState(spa: number, state: RmpTargetState) {
    const own = this.#ownGpa(spa);
    const guest = { assigned: true, asid: this.vm.asid, gpa: own, pageSize: 0 as const, immutable: false };
    switch (state) {
      case 'hypervisor':
        return { assigned: false, asid: 0, gpa: 0, pageSize: 0 as const, immutable: false };
      case 'guest':
        return guest;
      case 'guest-remap':
        return { ...guest, gpa: own + PAGE_SIZE };
      case 'firmware':
        // [LX] rmp_make_firmware(): assigned, ASID 0, immutable.
        return { assigned: true, asid: 0, gpa: 0, pageSize: 0 as const, immutable: true };
      case 'other-asid':
        return { ...guest, asid: this.vm.asid + 1 };
      case 'guest-2m':
        return { ...guest, gpa: own - (own % PMD_SIZE), pageSize: 1 as const };
    }
  }

  /** The page's GPA in this guest (memslot reverse map), or its entry's GPA, or 0. */
  #ownGpa(spa: number): number {
    for (const s of this.vm.memory.slots)
      if (spa >= s.spa && spa < s.spa + s.bytes) return s.gpa + (spa - s.spa);
    return this.#view(spa).gpa;
  }

  /** A host target's SPA, or undefined when it does not exist (yet). */
  #resolve(t: HostTarget): number | undefined {
    const m = this.guest.machine;
    const translate = (gpa: number | undefined) => {
      const spa = gpa === undefined ? -1 : m.spaOf(gpa);
      return spa < 0 ? undefined : spa;
    };
    switch (t.kind) {
      case 'data':
        return translate(this.data[t.i]);
      case 'vmsa-page': {
        const handles = [...this.#pages.values()];
        const h = handles.length === 0 ? undefined : handles[t.k % handles.length];
        return translate(h === undefined ? undefined : this.guest.module.page(h)?.gpa);
      }
      case 'launch-vmsa':
        return this.vm.vcpus[t.vcpu]?.launchVmsaPa;
      case 'ghcb':
        return translate(m.cpus[t.cpu]?.ghcbGpa);
      case 'gctx':
        return this.vm.gctxPa;
      case 'kernel':
        return translate(t.page * PAGE_SIZE);
    }
  }

  // ---- invariants -----------------------------------------------------------------------------

  /** The entry governing the page at `spa` (a 2 MB entry for its 511 others) and the page's GPA. */
  #view(spa: number): PageView {
    const rmp = this.platform.rmp;
    const pfn = Math.floor(spa / PAGE_SIZE);
    if (!rmp.isCovered(pfn)) return { spa, entry: undefined, gpa: 0 };
    const head = rmp.authoritativePfn(pfn);
    const entry = rmp.entry(head);
    return { spa, entry, gpa: (entry?.gpa ?? 0) + (pfn - head) * PAGE_SIZE };
  }

  /** Every page the invariants watch: data, VMSA, GHCB, launch VMSA, guest context pages. */
  #watched(): number[] {
    const spas = new Set<number>();
    const add = (spa: number | undefined) => {
      if (spa !== undefined && spa >= 0) spas.add(spa - (spa % PAGE_SIZE));
    };
    for (let i = 0; i < this.data.length; i++) add(this.#resolve({ kind: 'data', i }));
    for (const h of this.#pages.values()) {
      const p = this.guest.module.page(h);
      if (p !== undefined) {
        add(this.guest.machine.spaOf(p.gpa));
        if (p.stubGpa !== undefined) add(this.guest.machine.spaOf(p.stubGpa));
      }
    }
    for (let v = 0; v < this.vm.vcpus.length; v++) {
      add(this.#resolve({ kind: 'launch-vmsa', vcpu: v }));
      add(this.#resolve({ kind: 'ghcb', cpu: v }));
    }
    add(this.vm.gctxPa);
    add(this.#scratch);
    return [...spas];
  }

  /** Runs `body` as one step and checks every invariant after it. */
  #checked(text: string, body: () => void): void {
    this.log.push(text);
    this.steps++;
    const watched = this.#watched();
    const before = watched.map((spa) => this.#view(spa));
    const seen = this.#seen;
    seen.validated.clear();
    seen.vmsaSet.clear();
    seen.violations.length = 0;
    try {
      body();
    } catch (error) {
      if (error instanceof InvariantViolation) throw error;
      throw new InvariantViolation('model-exception', `${text}: ${(error as Error).stack ?? String(error)}`);
    }
    const first = seen.violations[0];
    if (first !== undefined) throw first;
    // Validated again (by whoever): the guest accepts whatever the page holds from now on.
    this.data.forEach((gpa, d) => {
      const spa = this.guest.machine.spaOf(gpa);
      if (spa >= 0 && seen.validated.has(Math.floor(spa / PAGE_SIZE))) this.#shadow[d] = undefined;
    });
    for (const [i, spa] of watched.entries()) {
      const v = checkTransition(before[i]!, this.#view(spa), this.vm.asid, seen);
      if (v !== undefined) throw v;
    }
    for (const spa of this.#watched()) {
      const e = this.#view(spa).entry;
      if (
        e?.assigned === true &&
        this.platform.hostAccess(spa, AccessKind.WRITE, MappingSize.SIZE_4K) === 0
      ) {
        throw new InvariantViolation(
          'assigned-host-writable',
          `SPA ${hex(spa)} (${describeEntry(e)}) passes the host write check`,
        );
      }
    }
  }

  // ---- probes and mutants ---------------------------------------------------------------------

  #probe(): void {
    const p = this.platform;
    const seen = this.#seen;
    const rmp = p.rmp;
    const pfnsOf = (ctx: GuestContext, gpa: number, size: number) => {
      const out: number[] = [];
      const base = size === 1 ? gpa - (gpa % PMD_SIZE) : gpa - (gpa % PAGE_SIZE);
      for (let at = base; at < base + (size === 1 ? PMD_SIZE : PAGE_SIZE); at += PAGE_SIZE) {
        const spa = ctx.translate(at);
        if (spa >= 0) out.push(Math.floor(spa / PAGE_SIZE));
      }
      return out;
    };
    const ownedBy = (pfn: number, asid: number) =>
      rmp.isCovered(pfn) && rmp.entry(rmp.authoritativePfn(pfn))?.asid === asid;
    const pvalidate = p.pvalidate.bind(p);
    p.pvalidate = (ctx, gpa, size, validate) => {
      const r = pvalidate(ctx, gpa, size, validate);
      if (r.kind === 'eax' && r.eax === 0 && r.cf === 0 && validate === 1) {
        for (const pfn of pfnsOf(ctx, gpa, size)) if (ownedBy(pfn, ctx.asid)) seen.validated.add(pfn);
      }
      return r;
    };
    const rmpadjust = p.rmpadjust.bind(p);
    p.rmpadjust = (ctx, gpa, size, rdx) => {
      const r = rmpadjust(ctx, gpa, size, rdx);
      if (r.kind === 'eax' && r.eax === 0 && ctx.vmpl === 0 && (BigInt(rdx) & RMPADJUST_VMSA) !== 0n) {
        for (const pfn of pfnsOf(ctx, gpa, size)) if (ownedBy(pfn, ctx.asid)) seen.vmsaSet.add(pfn);
      }
      return r;
    };
    const rmpupdate = p.rmpupdate.bind(p);
    p.rmpupdate = (spa, state) => {
      const pfn = Math.floor(spa / PAGE_SIZE);
      const covered = rmp.isCovered(pfn);
      const immutable = covered && rmp.entry(pfn)?.immutable === true ? rmp.dump(pfn) : undefined;
      const r = rmpupdate(spa, state);
      if (immutable !== undefined && (r === 0 || !same(immutable, rmp.dump(pfn)))) {
        seen.violations.push(
          new InvariantViolation(
            'immutable-unchanged',
            `RMPUPDATE of immutable SPA ${hex(spa)} returned ${r}; now ${describeEntry(rmp.entry(pfn))}`,
          ),
        );
      }
      return r;
    };
    const vmrun = p.vmrun.bind(p);
    p.vmrun = (req) => {
      const r = vmrun(req);
      // An SNP-active VMSA must be this guest's VMSA page. A VMSA with SNPActive clear runs under
      // SEV-ES rules (hypervisor-owned page, no access to guest-owned memory): not this invariant.
      if (r.kind === 'entered' && r.snpActive) {
        const e = this.#view(req.vmsaPa).entry;
        if (!(e?.assigned === true && e.vmsa && e.asid === req.asid && req.asid === this.vm.asid)) {
          seen.violations.push(
            new InvariantViolation(
              'vmrun-non-vmsa',
              `VMRUN on CPU ${req.cpu} (ASID ${req.asid}) entered VMSA SPA ${hex(req.vmsaPa)}: ${describeEntry(e)}`,
            ),
          );
        }
      }
      return r;
    };
  }

  #mutate(mutant: MutantName): void {
    const p = this.platform;
    const rmp = p.rmp;
    switch (mutant) {
      case 'host-write-assigned': {
        const hostAccess = p.hostAccess.bind(p);
        p.hostAccess = (spa, kind, mapping) =>
          kind === AccessKind.WRITE ? 0 : hostAccess(spa, kind, mapping);
        return;
      }
      case 'rmpupdate-keeps-validated': {
        const rmpupdate = p.rmpupdate.bind(p);
        p.rmpupdate = (spa, state) => {
          const pfn = Math.floor(spa / PAGE_SIZE);
          const before = rmp.isCovered(pfn) ? rmp.entry(pfn) : undefined;
          const r = rmpupdate(spa, state);
          const after = rmp.isCovered(pfn) ? rmp.entry(pfn) : undefined;
          if (r === 0 && before?.validated === true && after !== undefined)
            p.firmwareWrite(pfn, { ...after, validated: true });
          return r;
        };
        return;
      }
      case 'rmpupdate-sets-validated': {
        const rmpupdate = p.rmpupdate.bind(p);
        p.rmpupdate = (spa, state) => {
          const r = rmpupdate(spa, state);
          const pfn = Math.floor(spa / PAGE_SIZE);
          const after = rmp.isCovered(pfn) ? rmp.entry(pfn) : undefined;
          if (r === 0 && after?.assigned === true && after.asid !== 0)
            p.firmwareWrite(pfn, { ...after, validated: true });
          return r;
        };
        return;
      }
      case 'rmpupdate-ignores-immutable': {
        const rmpupdate = p.rmpupdate.bind(p);
        p.rmpupdate = (spa, state) => {
          const pfn = Math.floor(spa / PAGE_SIZE);
          const before = rmp.isCovered(pfn) ? rmp.entry(pfn) : undefined;
          if (before?.immutable === true) p.firmwareWrite(pfn, { ...before, immutable: false });
          return rmpupdate(spa, state);
        };
        return;
      }
      case 'dbg-ignores-policy': {
        const fw = this.guest.machine.system.firmware;
        const copy = (src: number, dst: number) => {
          p.memory.write(dst, p.memory.read(src, PAGE_SIZE));
          return SevStatus.SUCCESS;
        };
        fw.dbgDecrypt = (_gctx, src, dst) => copy(src, dst);
        fw.dbgEncrypt = (_gctx, src, dst) => copy(src, dst);
        return;
      }
      case 'vmrun-ignores-vmsa-bit': {
        const vmrun = p.vmrun.bind(p);
        p.vmrun = (req) => {
          const r = vmrun(req);
          if (r.kind === 'vmexit' && r.reason === VmrunFailure.VMSA_BIT_CLEAR) {
            const sevFeatures = p.memory.readU64(req.vmsaPa + VmsaOffset.SEV_FEATURES);
            return { kind: 'entered', sevFeatures, snpActive: (sevFeatures & 1n) === 1n };
          }
          return r;
        };
        return;
      }
      case 'no-vc-on-unvalidated': {
        const guestAccess = p.guestAccess.bind(p);
        p.guestAccess = (ctx, gpa, kind, cbit) => {
          const r = guestAccess(ctx, gpa, kind, cbit);
          return r === VC_PAGE_NOT_VALIDATED ? 0 : r;
        };
        return;
      }
    }
  }
}
