/**
 * The model's SNP guest machine: the platform (PSP firmware + RMP), KVM with one SNP VM launched the
 * way QEMU launches one, and the guest kernel a real SNP guest runs (the parts of Linux the harness
 * touches): its page allocator over accepted memory, its per-CPU GHCBs, CPU hotplug through AP
 * Creation (wakeup_cpu_via_vmgexit / sev_es_play_dead), and the code each vCPU executes once KVM
 * enters it (the host's guest-code hook).
 *
 * Every guest action goes through the models exactly as on hardware: memory accesses through the RMP
 * access checks in the issuing vCPU's guest context, RMPADJUST / PVALIDATE through the platform,
 * GHCB writes to the shared GHCB page, the GHCB MSR, and VMGEXIT handled by the host's KVM_RUN.
 */

import type { GhcbValidField } from '../protocol/index.js';
import { RMPADJUST_RDX_CLEAR_VMSA, RMPADJUST_RDX_SET_VMSA } from '../scenario/index.js';
import {
  AccessKind,
  APIC_SPIV_APIC_ENABLED,
  createSnpSystem,
  GHCB_FIELD,
  GHCB_HV_FT,
  GHCB_MSR,
  GHCB_MSR_GPA_VALUE_POS,
  GHCB_MSR_HV_FT_POS,
  GHCB_MSR_INFO_MASK,
  GHCB_VALID_BITMAP_OFFSET,
  type GhcbField,
  GhcbView,
  type GuestContext,
  type GuestEntry,
  type GuestExit,
  type HostPolicy,
  INITIAL_VMSA_GPA,
  KVM_ERRNO,
  Kvm,
  PAGE_SIZE,
  type PlatformProfile,
  pscRequest,
  type RunOutcome,
  regGpaRequest,
  SNP_PAGE_STATE_SHARED,
  type SnpSystem,
  SVM_VMGEXIT,
  SVM_VMGEXIT_AP_CREATE,
  snpLaunchFinish,
  snpLaunchStart,
  termRequest,
  type Vcpu,
  VMSA_SIZE,
  type Vm,
  VmcbSeg,
  VmsaOffset,
} from './host-api.js';
import { buildVmsa, readField, STUB_MARKER_OFFSET, writeField } from './vmsa.js';

/** Guest RAM of the model VM: one memslot at GPA 0. */
export const GUEST_RAM_BYTES = 32 * 1024 * 1024;
/** Guest memory below this is the kernel image and early allocations, never handed out. */
const KERNEL_RESERVED = 16 * 1024 * 1024;
/** System memory of the model platform (guest RAM, KVM's pages, firmware pages). */
const SYSTEM_BYTES = 64 * 1024 * 1024;
/**
 * Linux's real-mode trampoline (sev_es_trampoline_start), below 1 MiB: an AP VMSA Linux builds
 * starts here (cs.base = start_ip & ~0xfff, rip = start_ip & 0xfff). Model choice of address.
 */
export const TRAMPOLINE_GPA = 0x9f000;
/** SEV_STATUS of an SNP guest with no optional features: SEV | SEV-ES | SNP. // [LX] MSR_AMD64_SEV_*_BIT */
export const DEFAULT_SEV_STATUS = 0x7n;
/** Guest policy of the launch: SMT allowed (bit 16) | reserved-must-be-one (bit 17). // [LX] SNP_POLICY_MASK_* */
const LAUNCH_POLICY = 0x30000n;
/** CALL_FUNCTION_SINGLE_VECTOR: the IPI Linux's CPU hotplug sends. // [LX] arch/x86/include/asm/irq_vectors.h */
export const CALL_FUNCTION_SINGLE_VECTOR = 0xfb;
/** SPURIOUS_APIC_VECTOR. // [LX] arch/x86/include/asm/irq_vectors.h */
const SPURIOUS_APIC_VECTOR = 0xff;
/** What Linux writes to bring its APIC up: APIC_SPIV_APIC_ENABLED | the spurious vector. // [LX] apic.c */
const SVR_ENABLED = APIC_SPIV_APIC_ENABLED | SPURIOUS_APIC_VECTOR;
/** SVR with the APIC software-disabled (Linux's disable_local_APIC on the way down). */
const SVR_DISABLED = SPURIOUS_APIC_VECTOR;
/** GHCB usage 0 (the default usage the NAE events use). // [LX] GHCB_DEFAULT_USAGE */
const GHCB_DEFAULT_USAGE = 0;
/**
 * How often a guest re-executes an instruction the host resolved a #NPF for (a fault-in, a PSMASH, or
 * the VMM's conversion after KVM_EXIT_MEMORY_FAULT), before it is stuck.
 */
const MAX_FAULT_RETRIES = 8;
/** Scheduler rounds after which vCPUs that keep running count as spinning (the model's "time"). */
const MAX_SETTLE_ROUNDS = 64;
/**
 * The termination Linux requests on a #VC it cannot handle in kernel space (exc_vmm_communication:
 * sev_es_terminate(SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ)). // [LX] arch/x86/include/asm/sev-common.h
 */
const SEV_TERM_SET_GEN = 0;
const GHCB_SEV_ES_GEN_REQ = 0;

export interface MachineConfig {
  readonly policyName: string;
  readonly policy: HostPolicy;
  readonly profile: PlatformProfile;
  readonly vcpus: number;
  /** SEV_STATUS of the guest (MSR 0xC0010131); the VM's vmsa_features are SEV_STATUS >> 2. */
  readonly sevStatus?: bigint;
}

/** The guest kernel is gone: the VM stopped, or the BSP no longer runs the kernel. */
export interface GuestStopped {
  readonly stopped: string;
}

export function isStopped(value: unknown): value is GuestStopped {
  return typeof value === 'object' && value !== null && 'stopped' in value;
}

/** What the Linux code on a CPU is doing (the model's view of the guest kernel, not KVM's). */
type LinuxPhase = 'parked-by-firmware' | 'booting' | 'running' | 'dying' | 'held' | 'stray';

interface LinuxCpu {
  readonly index: number;
  readonly apicId: number;
  /** cpu_online(). */
  online: boolean;
  phase: LinuxPhase;
  /** per_cpu(sev_vmsa): the VMSA page Linux created for this CPU (the BSP: none, it keeps its launch VMSA). */
  linuxVmsaGpa: number | undefined;
  /** The CPU's GHCB page (shared), registered with GHCB_MSR_REG_GPA_REQ. */
  readonly ghcbGpa: number;
  ghcbRegistered: boolean;
  /** The snpsim module's CPU-online stamp (its hotplug callback). */
  onlineStamp: number;
  /** The next thing this CPU's guest does when entered (an injected action). */
  action: ((entry: GuestEntry) => GuestExit) | undefined;
}

/** A result of guest code run through an action, or the guest's end. */
export type Ran<T> = { readonly value: T; readonly outcome: RunOutcome } | GuestStopped;

/** Free pages of guest RAM, naturally aligned blocks of 2^order pages. */
class PageAllocator {
  readonly #free = new Set<number>();
  #next: number;
  readonly #end: number;

  constructor(start: number, end: number) {
    this.#next = start;
    this.#end = end;
  }

  /** 2^order pages, naturally aligned; undefined when guest RAM is exhausted. */
  alloc(order: number): number | undefined {
    const bytes = PAGE_SIZE * 2 ** order;
    if (order === 0) {
      const reused = this.#free.values().next();
      if (!reused.done) {
        this.#free.delete(reused.value);
        return reused.value;
      }
    }
    const base = Math.ceil(this.#next / bytes) * bytes;
    if (base + bytes > this.#end) return undefined;
    for (let p = this.#next; p < base; p += PAGE_SIZE) this.#free.add(p);
    this.#next = base + bytes;
    return base;
  }

  free(gpa: number, order = 0): void {
    for (let i = 0; i < 2 ** order; i++) this.#free.add(gpa + i * PAGE_SIZE);
  }
}

const hex = (v: bigint | number) => `0x${v.toString(16)}`;

/**
 * Linux errno values the guest kernel, the module and the agent return: KVM's table (host layer)
 * plus the ones only the guest side uses. // [LX] include/uapi/asm-generic/errno-base.h, errno.h
 */
export const ERRNO = Object.freeze({
  ...KVM_ERRNO,
  ENOENT: 2,
  EACCES: 13,
  EOPNOTSUPP: 95,
} as const);

/** The GHCB field behind each `valid=` name of the agent protocol. */
export const VALID_FIELD: Readonly<Record<GhcbValidField, GhcbField>> = Object.freeze({
  exit_code: 'sw_exit_code',
  info1: 'sw_exit_info_1',
  info2: 'sw_exit_info_2',
  rax: 'rax',
});

/**
 * The GHCB page a guest writes for one NAE event: the fields (CPL is a u8, the rest u64), their
 * valid-bitmap bits, the protocol version and usage 0 (the kernel's ghcb_set_*() and
 * sev_es_ghcb_hv_call), encoded by the host's `GhcbView` (struct ghcb). `valid` is independent of
 * `fields`: a scenario may mark a field valid that it leaves zero, or write one it does not mark.
 */
export function ghcbPage(
  fields: Readonly<Partial<Record<GhcbField, bigint>>>,
  valid: readonly GhcbField[],
  version: bigint,
): Uint8Array {
  const page = new Uint8Array(PAGE_SIZE);
  const ghcb = ghcbOf(page);
  for (const [name, value] of Object.entries(fields) as [GhcbField, bigint][]) ghcb.set(name, value);
  ghcb.setValidBitmap(0n, 0n);
  for (const field of valid) ghcb.setValid(field, true);
  ghcb.setProtocolVersion(Number(version));
  ghcb.setUsage(GHCB_DEFAULT_USAGE);
  return page;
}

/** The host's `GhcbView` over a guest's copy of its GHCB page (what it wrote, or read back). */
export function ghcbOf(page: Uint8Array): GhcbView {
  return new GhcbView(
    { read: (at, length) => page.subarray(at, at + length), write: (at, bytes) => page.set(bytes, at) },
    0,
  );
}

export class Machine {
  readonly config: MachineConfig;
  readonly system: SnpSystem;
  readonly kvm: Kvm;
  readonly vm: Vm;
  readonly sevStatus: bigint;
  readonly cpus: LinuxCpu[] = [];
  /** HV features the kernel read at boot (GHCB MSR protocol). */
  hvFeatures = 0n;
  /** Host events of the current step, for reports. */
  readonly events: string[] = [];
  /** The snpsim module's stamp counter (online stamps and page references share it). */
  #stamp = 0;
  /** Set when the BSP can no longer run the kernel although the VM runs (e.g. it halted itself). */
  #lost: string | undefined;
  readonly #pages: PageAllocator;
  readonly #accepted = new Set<number>();

  private constructor(config: MachineConfig, system: SnpSystem, kvm: Kvm, vm: Vm) {
    this.config = config;
    this.system = system;
    this.kvm = kvm;
    this.vm = vm;
    this.sevStatus = config.sevStatus ?? DEFAULT_SEV_STATUS;
    this.#pages = new PageAllocator(KERNEL_RESERVED, GUEST_RAM_BYTES);
  }

  /**
   * Creates the platform and the VM, launches it (LAUNCH_START, LAUNCH_FINISH measuring every
   * vCPU's launch VMSA), lets the firmware park the APs (INIT-SIPI) and boots the kernel, which
   * registers its GHCBs and brings every AP online with AP Creation. Throws only on a model error.
   */
  static boot(config: MachineConfig): Machine {
    const system = createSnpSystem({ profile: config.profile, memoryBytes: SYSTEM_BYTES, init: true });
    const kvm = new Kvm({ platform: system.platform, firmware: system.firmware });
    const sevStatus = config.sevStatus ?? DEFAULT_SEV_STATUS;
    // KVM_SEV_INIT2.vmsa_features: what the guest sees as SEV_STATUS >> 2, without SNPActive (forced).
    const created = kvm.createVm({
      policy: config.policy,
      vmsaFeatures: (sevStatus >> 2n) & ~1n,
      memory: [{ gpa: 0, bytes: GUEST_RAM_BYTES }],
      vcpus: config.vcpus,
    });
    if (!created.ok) throw new Error(`model VM: ${created.detail}`);
    const vm = created.vm;
    const start = snpLaunchStart(vm, { policy: LAUNCH_POLICY });
    if (start.ret !== 0) throw new Error(`model VM launch: ${start.detail}`);
    const finish = snpLaunchFinish(vm, {});
    if (finish.ret !== 0) throw new Error(`model VM launch: ${finish.detail}`);
    const machine = new Machine(config, system, kvm, vm);
    machine.#bootKernel();
    machine.events.length = 0;
    return machine;
  }

  get policyName(): string {
    return this.config.policyName;
  }

  /** Why the guest is gone, or undefined while it runs. */
  get stoppedReason(): string | undefined {
    if (this.vm.stopped !== undefined) return this.vm.stopped.detail;
    if (this.#lost !== undefined) return this.#lost;
    const bsp = this.vm.vcpus[0];
    if (bsp !== undefined && bsp.vmsaGpa !== INITIAL_VMSA_GPA) {
      return 'the BSP no longer runs the guest kernel (its VMSA was replaced)';
    }
    return undefined;
  }

  nextStamp(): number {
    this.#stamp += 1;
    return this.#stamp;
  }

  vcpu(index: number): Vcpu {
    const v = this.vm.vcpus[index];
    if (v === undefined) throw new RangeError(`no vCPU ${index}`);
    return v;
  }

  // ---- running guest code -----------------------------------------------------------------

  /** The guest-code hook: what a vCPU executes once KVM entered it. */
  readonly guestCode = (entry: GuestEntry): GuestExit => {
    const cpu = this.cpus[entry.vcpuId];
    if (cpu === undefined) return { kind: 'hlt' };
    const vcpu = this.vcpu(cpu.index);
    if (cpu.action !== undefined && this.#inKernel(cpu, entry)) {
      const action = cpu.action;
      cpu.action = undefined;
      return action(entry);
    }
    if (entry.vmsaGpa === INITIAL_VMSA_GPA) {
      // The firmware's AP code (OVMF parks APs in a HLT loop after its INIT-SIPI bring-up); the
      // BSP, when entered with nothing to do, runs until the next interrupt.
      return cpu.index === 0 ? { kind: 'intr' } : { kind: 'hlt' };
    }
    if (cpu.linuxVmsaGpa !== undefined && entry.vmsaGpa === cpu.linuxVmsaGpa)
      return this.#linuxAp(cpu, entry, vcpu);
    return this.#interpret(entry);
  };

  /** The CPU is executing the guest kernel: the BSP on its launch VMSA, an AP on Linux's VMSA. */
  #inKernel(cpu: LinuxCpu, entry: GuestEntry): boolean {
    return cpu.index === 0 ? entry.vmsaGpa === INITIAL_VMSA_GPA : entry.vmsaGpa === cpu.linuxVmsaGpa;
  }

  /**
   * Runs `code` as the next thing the kernel does on CPU `index` (one KVM_RUN iteration), re-running
   * it when the host resolved a #NPF it raised: KVM faulted the private page in or PSMASHed it, or
   * the access's privacy differed from the page's memory attribute and the VMM converted the page on
   * KVM_EXIT_MEMORY_FAULT (QEMU re-enters, the instruction is retried). The guest is gone if the
   * vCPU cannot run the kernel, if the VMM stopped the VM (e.g. it does not convert), or if KVM keeps
   * resuming the instruction into the same fault (a spurious RMP #NPF).
   */
  run<T>(index: number, code: (entry: GuestEntry) => { exit: GuestExit; value: T }): Ran<T> {
    const cpu = this.cpus[index]!;
    const vcpu = this.vcpu(index);
    for (let attempt = 0; attempt <= MAX_FAULT_RETRIES; attempt++) {
      const gone = this.stoppedReason;
      if (gone !== undefined) return { stopped: gone };
      let result: { exit: GuestExit; value: T } | undefined;
      cpu.action = (entry) => {
        result = code(entry);
        return result.exit;
      };
      const outcome = vcpu.run(this.guestCode);
      this.#record(index, outcome);
      if (cpu.action !== undefined) {
        cpu.action = undefined;
        if (outcome.vmStopped || this.vm.stopped !== undefined) return { stopped: outcome.detail };
        const lost = `CPU ${index} could not run the guest kernel: ${outcome.detail}`;
        // Without its BSP the kernel answers nothing more (a real guest hangs: SSH times out).
        if (index === 0) this.#lost = lost;
        return { stopped: lost };
      }
      // A memory-fault exit the VMM did not resolve stops the VM here; one it converted is retried.
      if (outcome.vmStopped) return { stopped: outcome.detail };
      if (result !== undefined && result.exit.kind !== 'npf') return { value: result.value, outcome };
    }
    const stuck = `CPU ${index} keeps faulting on the same instruction (KVM resumes it into the same #NPF)`;
    // A kernel CPU spinning on a fault answers nothing more (a real guest hangs: SSH times out).
    if (index === 0) this.#lost = stuck;
    return { stopped: stuck };
  }

  /**
   * Lets time pass: runs every vCPU but the kernel's issuing CPU until each one sleeps, the VM
   * stops, or MAX_SETTLE_ROUNDS rounds went by with something still running (then it spins).
   */
  settle(exclude: number = 0): void {
    for (let round = 0; round < MAX_SETTLE_ROUNDS; round++) {
      let progressed = false;
      for (const vcpu of this.vm.vcpus) {
        if (vcpu.index === exclude) continue;
        if (this.vm.stopped !== undefined) return;
        const outcome = vcpu.run(this.guestCode);
        this.#record(vcpu.index, outcome);
        if (outcome.kind !== 'blocked' && outcome.kind !== 'vm-stopped') progressed = true;
        if (outcome.vmStopped) return;
      }
      if (!progressed) return;
    }
    this.events.push(`vCPUs still running after ${MAX_SETTLE_ROUNDS} rounds (spinning)`);
  }

  #record(index: number, outcome: RunOutcome): void {
    if (outcome.kind === 'blocked' && !outcome.spinning && outcome.events.length === 0) return;
    if (
      outcome.kind === 'exit' &&
      (outcome.exit === 'intr' || outcome.exit === 'hlt') &&
      outcome.events.length === 0
    )
      return;
    this.events.push(`vCPU ${index}: ${outcome.layer}: ${outcome.detail}`);
  }

  // ---- guest memory -------------------------------------------------------------------------

  /** A guest data access check in `ctx`; 0 or the fault (0x404 #VC, or an NPF EXITINFO1). */
  check(ctx: GuestContext, gpa: number, write: boolean, cbit: 0 | 1): number {
    return this.system.platform.guestAccess(ctx, gpa, write ? AccessKind.WRITE : AccessKind.READ, cbit);
  }

  /** Writes guest memory through the RMP checks of `ctx`; the fault if one page fails. */
  write(ctx: GuestContext, gpa: number, bytes: Uint8Array, cbit: 0 | 1): GuestExit | undefined {
    for (let done = 0; done < bytes.length; ) {
      const at = gpa + done;
      const n = Math.min(PAGE_SIZE - (at % PAGE_SIZE), bytes.length - done);
      const fault = this.check(ctx, at, true, cbit);
      if (fault !== 0) return this.#fault(at, fault);
      this.system.platform.memory.write(ctx.translate(at), bytes.subarray(done, done + n));
      done += n;
    }
    return undefined;
  }

  /** Reads guest memory through the RMP checks of `ctx`. */
  read(ctx: GuestContext, gpa: number, length: number, cbit: 0 | 1): Uint8Array | GuestExit {
    const out = new Uint8Array(length);
    for (let done = 0; done < length; ) {
      const at = gpa + done;
      const n = Math.min(PAGE_SIZE - (at % PAGE_SIZE), length - done);
      const fault = this.check(ctx, at, false, cbit);
      if (fault !== 0) return this.#fault(at, fault);
      out.set(this.system.platform.memory.read(ctx.translate(at), n), done);
      done += n;
    }
    return out;
  }

  /** A fault as the guest meets it: #NPF goes to the host; #VC kills the kernel (no handler for it here). */
  #fault(gpa: number, code: number): GuestExit {
    if (code >= 2 ** 32) return { kind: 'npf', gpa: gpa - (gpa % PAGE_SIZE), exitInfo1: code };
    return { kind: 'shutdown' };
  }

  /** The system physical address of a guest page (host view, for state reports). */
  spaOf(gpa: number): number {
    return this.vm.memory.translate(gpa);
  }

  /** Host view of guest bytes (no RMP check): what the CPU reads from a VMSA or code page. */
  peek(gpa: number, length: number): Uint8Array {
    return this.system.platform.memory.read(this.spaOf(gpa), length);
  }

  // ---- the kernel's page allocator ----------------------------------------------------------

  /**
   * 2^order pages the kernel allocator hands out: accepted (validated) memory, zeroed when asked.
   * Undefined when guest memory is exhausted; GuestStopped when the guest died meanwhile.
   */
  allocPages(order: number, zero: boolean): number | undefined | GuestStopped {
    const gpa = this.#pages.alloc(order);
    if (gpa === undefined) return undefined;
    for (let i = 0; i < 2 ** order; i++) {
      const accepted = this.accept(gpa + i * PAGE_SIZE);
      if (isStopped(accepted)) return accepted;
    }
    if (zero) {
      const r = this.run(0, (entry) => ({
        exit: this.write(entry.guest, gpa, new Uint8Array(PAGE_SIZE * 2 ** order), 1) ?? { kind: 'intr' },
        value: undefined,
      }));
      if (isStopped(r)) return r;
    }
    return gpa;
  }

  freePages(gpa: number, order = 0): void {
    this.#pages.free(gpa, order);
  }

  /**
   * Accepts a page the first time the kernel uses it (unaccepted memory): PVALIDATE, after which
   * the host has faulted the private page in. Idempotent.
   */
  accept(gpa: number): undefined | GuestStopped {
    if (this.#accepted.has(gpa)) return undefined;
    const r = this.pvalidate(0, gpa, 0, 1);
    if (isStopped(r)) return r;
    this.#accepted.add(gpa);
    return undefined;
  }

  /** PVALIDATE on CPU `index`: EAX and CF, or the guest's end (a #VC/#GP/#UD the kernel cannot survive). */
  pvalidate(
    index: number,
    gpa: number,
    size: number,
    validate: number,
  ): { eax: number; cf: 0 | 1 } | GuestStopped {
    const r = this.run(index, (entry) => {
      const res = this.system.platform.pvalidate(entry.guest, gpa, size, validate);
      if (res.kind === 'eax')
        return { exit: { kind: 'intr' } as GuestExit, value: { eax: res.eax, cf: res.cf } };
      if (res.kind === 'npf')
        return { exit: { kind: 'npf', gpa, exitInfo1: res.exitInfo1 }, value: undefined };
      return { exit: this.#terminate(entry), value: undefined };
    });
    if (isStopped(r)) return r;
    return r.value ?? { stopped: 'the kernel died in PVALIDATE' };
  }

  /** RMPADJUST on CPU `index`: EAX, or the guest's end. */
  rmpadjust(index: number, gpa: number, size: number, rdx: bigint): { eax: number } | GuestStopped {
    const r = this.run(index, (entry) => {
      const res = this.system.platform.rmpadjust(entry.guest, gpa, size, rdx);
      if (res.kind === 'eax') return { exit: { kind: 'intr' } as GuestExit, value: { eax: res.eax } };
      if (res.kind === 'npf')
        return { exit: { kind: 'npf', gpa, exitInfo1: res.exitInfo1 }, value: undefined };
      return { exit: this.#terminate(entry), value: undefined };
    });
    if (isStopped(r)) return r;
    return r.value ?? { stopped: 'the kernel died in RMPADJUST' };
  }

  /**
   * An exception the kernel cannot handle in this context (#VC 0x404 on its own page, #GP, #UD):
   * the guest is terminated through the GHCB MSR protocol with Linux's reason for an unhandled #VC
   * (set 0, GHCB_SEV_ES_GEN_REQ). Model choice: #GP and #UD end the same way (Linux would oops).
   */
  #terminate(entry: GuestEntry): GuestExit {
    entry.writeGhcbMsr(termRequest(SEV_TERM_SET_GEN, GHCB_SEV_ES_GEN_REQ));
    return { kind: 'vmgexit' };
  }

  // ---- GHCB ---------------------------------------------------------------------------------

  /**
   * A GHCB MSR protocol exchange on CPU `index`, as the module does it: save the MSR, write the
   * request, VMGEXIT, read the response, restore the MSR.
   */
  msrProtocol(index: number, request: bigint): bigint | GuestStopped {
    let saved = 0n;
    const exit = this.run(index, (entry) => {
      saved = entry.readGhcbMsr();
      entry.writeGhcbMsr(request);
      return { exit: { kind: 'vmgexit' } as GuestExit, value: undefined };
    });
    if (isStopped(exit)) return exit;
    const back = this.run(index, (entry) => {
      const response = entry.readGhcbMsr();
      entry.writeGhcbMsr(saved);
      return { exit: { kind: 'intr' } as GuestExit, value: response };
    });
    return isStopped(back) ? back : back.value;
  }

  /**
   * A full-protocol NAE event through CPU `index`'s registered GHCB: the fields and valid bits as
   * given, protocol version and usage as the kernel sets them, the GHCB GPA in the MSR, VMGEXIT,
   * then the guest resumes and reads SW_EXITINFO1/2 and the registers it asks for.
   */
  naeCall(
    index: number,
    fields: Readonly<Partial<Record<GhcbField, bigint>>>,
    valid: readonly GhcbField[],
    read: readonly GhcbField[] = [],
  ): { info1: bigint; info2: bigint; regs: Record<string, bigint> } | GuestStopped {
    const cpu = this.cpus[index]!;
    const gpa = cpu.ghcbGpa;
    let saved = 0n;
    const page = ghcbPage(fields, valid, this.vm.ghcbVersion);
    const exit = this.run(index, (entry) => {
      saved = entry.readGhcbMsr();
      const fault = this.write(entry.guest, gpa, page, 0);
      if (fault !== undefined) return { exit: fault, value: undefined };
      entry.writeGhcbMsr(BigInt(gpa));
      return { exit: { kind: 'vmgexit' } as GuestExit, value: undefined };
    });
    if (isStopped(exit)) return exit;
    const back = this.run(index, (entry) => {
      const bytes = this.read(entry.guest, gpa, PAGE_SIZE, 0);
      if (!(bytes instanceof Uint8Array)) return { exit: bytes, value: undefined };
      const ghcb = ghcbOf(bytes);
      const regs: Record<string, bigint> = {};
      for (const r of read) regs[r] = ghcb.get(r);
      const result = { info1: ghcb.get('sw_exit_info_1'), info2: ghcb.get('sw_exit_info_2'), regs };
      // vc_ghcb_invalidate: what the kernel leaves behind.
      const clear = new Uint8Array(8 + 16);
      this.write(entry.guest, gpa + GHCB_FIELD.sw_exit_code, clear.subarray(0, 8), 0);
      this.write(entry.guest, gpa + GHCB_VALID_BITMAP_OFFSET, clear.subarray(8), 0);
      entry.writeGhcbMsr(saved);
      return { exit: { kind: 'intr' } as GuestExit, value: result };
    });
    if (isStopped(back)) return back;
    return back.value ?? { stopped: 'the kernel could not read its GHCB' };
  }

  // ---- the kernel's CPUs --------------------------------------------------------------------

  #bootKernel(): void {
    const n = this.vm.vcpus.length;
    // Per-CPU GHCB pages: the kernel's early boot pages, made shared (below KERNEL_RESERVED).
    for (let i = 0; i < n; i++) {
      this.cpus.push({
        index: i,
        apicId: this.vcpu(i).vcpuId,
        online: i === 0,
        phase: i === 0 ? 'running' : 'parked-by-firmware',
        linuxVmsaGpa: undefined,
        ghcbGpa: KERNEL_RESERVED - (i + 1) * PAGE_SIZE,
        ghcbRegistered: false,
        onlineStamp: 0,
        action: undefined,
      });
    }
    // OVMF's first AP bring-up: INIT-SIPI-SIPI against the launch VMSAs; the APs park in HLT.
    for (let i = 1; i < n; i++) {
      this.vm.sendInit(this.cpus[i]!.apicId);
      this.vm.sendSipi(this.cpus[i]!.apicId, 0);
    }
    this.settle(0);
    const bsp = this.registerGhcb(0);
    if (isStopped(bsp)) throw new Error(`model guest boot: ${bsp.stopped}`);
    const ft = this.msrProtocol(0, GHCB_MSR.HV_FT_REQ);
    if (isStopped(ft)) throw new Error(`model guest boot: ${ft.stopped}`);
    this.hvFeatures = (ft & GHCB_MSR_INFO_MASK) === GHCB_MSR.HV_FT_RESP ? ft >> GHCB_MSR_HV_FT_POS : 0n;
    // smp_init: bring up every AP with AP Creation (a policy may refuse; that CPU stays offline).
    for (let i = 1; i < n; i++) {
      const up = this.cpuUp(i);
      if (isStopped(up)) throw new Error(`model guest boot: ${up.stopped}`);
    }
  }

  /**
   * Makes CPU `index`'s GHCB page shared (page state change through the MSR protocol; the page was
   * never validated) and registers its GPA (GHCB_MSR_REG_GPA_REQ / _RESP), as Linux's
   * snp_register_ghcb_early does. Run on that CPU.
   */
  registerGhcb(index: number): undefined | GuestStopped {
    const cpu = this.cpus[index]!;
    const gfn = BigInt(cpu.ghcbGpa / PAGE_SIZE);
    // GHCB_MSR_PSC_REQ: GFN in [51:12], operation (2 = shared) in [55:52].
    const psc = this.msrProtocol(index, pscRequest(gfn, SNP_PAGE_STATE_SHARED));
    if (isStopped(psc)) return psc;
    const reg = this.msrProtocol(index, regGpaRequest(gfn));
    if (isStopped(reg)) return reg;
    if ((reg & GHCB_MSR_INFO_MASK) !== GHCB_MSR.REG_GPA_RESP || reg >> GHCB_MSR_GPA_VALUE_POS !== gfn) {
      return { stopped: `GHCB registration of CPU ${index} refused (response ${hex(reg)})` };
    }
    // The registration response stays in the MSR: the module finds the GHCB there.
    this.run(index, (entry) => {
      entry.writeGhcbMsr(reg);
      return { exit: { kind: 'intr' }, value: undefined };
    });
    cpu.ghcbRegistered = true;
    return undefined;
  }

  /**
   * Linux CPU online (cpu_up → wakeup_cpu_via_vmgexit): a fresh split VMSA page with the AP INIT
   * state at the trampoline, RMPADJUST (VMSA bit), AP Creation CREATE with RAX = SEV_FEATURES, then
   * the previous VMSA of that CPU is cleaned up and the kernel waits for the AP to come alive.
   * Returns 0 or a positive errno (what the sysfs write returns).
   */
  cpuUp(index: number): number | GuestStopped {
    const cpu = this.cpus[index];
    if (cpu === undefined) return ERRNO.ENOENT; // no such CPU directory
    if (cpu.online) return 0;
    // [LX] wakeup_cpu_via_vmgexit: -EOPNOTSUPP without GHCB_HV_FT_SNP_AP_CREATION (bit 1).
    if ((this.hvFeatures & GHCB_HV_FT.SNP_AP_CREATION) === 0n) return ERRNO.EOPNOTSUPP;
    const block = this.allocPages(1, true);
    if (isStopped(block)) return block;
    if (block === undefined) return ERRNO.ENOMEM;
    // snp_alloc_vmsa_page: split the order-1 block, free the first page, use the second.
    this.freePages(block);
    const vmsaGpa = block + PAGE_SIZE;
    const vmsa = buildVmsa('linux', { sevStatus: this.sevStatus });
    const view = new DataView(vmsa.buffer);
    // start_ip = the trampoline: cs.base = vector << 12, cs.selector = vector << 8, rip = start_ip & 0xfff.
    writeField(view, 'cs_base', BigInt(TRAMPOLINE_GPA & ~0xfff));
    writeField(view, 'cs_selector', BigInt((TRAMPOLINE_GPA >> 12) << 8));
    writeField(view, 'rip', BigInt(TRAMPOLINE_GPA & 0xfff));
    const filled = this.run(0, (entry) => ({
      exit: this.write(entry.guest, vmsaGpa, vmsa, 1) ?? { kind: 'intr' },
      value: 0,
    }));
    if (isStopped(filled)) return filled;
    const set = this.rmpadjust(0, vmsaGpa, 0, RMPADJUST_RDX_SET_VMSA);
    if (isStopped(set)) return set;
    if (set.eax !== 0) {
      this.freePages(vmsaGpa);
      return ERRNO.EINVAL; // "set VMSA page failed"
    }
    const sevFeatures = readField(view, 'sev_features');
    const r = this.naeCall(
      0,
      {
        sw_exit_code: SVM_VMGEXIT.AP_CREATION,
        sw_exit_info_1: (BigInt(cpu.apicId) << 32n) | BigInt(SVM_VMGEXIT_AP_CREATE),
        sw_exit_info_2: BigInt(vmsaGpa),
        rax: sevFeatures,
      },
      ['sw_exit_code', 'sw_exit_info_1', 'sw_exit_info_2', 'rax'],
    );
    if (isStopped(r)) return r;
    if ((r.info1 & 0xffff_ffffn) !== 0n) {
      // "SNP AP Creation error": snp_cleanup_vmsa, the page is freed only if the VMSA bit cleared.
      const clear = this.rmpadjust(0, vmsaGpa, 0, RMPADJUST_RDX_CLEAR_VMSA);
      if (!isStopped(clear) && clear.eax === 0) this.freePages(vmsaGpa);
      return ERRNO.EINVAL;
    }
    const previous = cpu.linuxVmsaGpa;
    cpu.linuxVmsaGpa = vmsaGpa;
    cpu.phase = 'booting';
    if (previous !== undefined) {
      const clear = this.rmpadjust(0, previous, 0, RMPADJUST_RDX_CLEAR_VMSA);
      if (isStopped(clear)) return clear;
      if (clear.eax === 0) this.freePages(previous);
    }
    this.settle(0);
    const gone = this.stoppedReason;
    if (gone !== undefined) return { stopped: gone };
    // settle() ran the AP's code, which moves the phase on.
    if ((cpu.phase as LinuxPhase) !== 'running') {
      // cpuhp_bp_sync_alive times out ("failed to report alive state"): -EIO.
      cpu.phase = 'stray';
      return ERRNO.EIO;
    }
    cpu.online = true;
    cpu.onlineStamp = this.nextStamp();
    return 0;
  }

  /**
   * Linux CPU offline (cpu_down): the CPU is sent an IPI and runs sev_es_play_dead (AP_HLT_LOOP).
   * The sysfs write succeeds even if the AP never reports dead (Linux logs and goes on).
   */
  cpuDown(index: number): number | GuestStopped {
    const cpu = this.cpus[index];
    if (cpu === undefined) return ERRNO.ENOENT;
    if (!cpu.online) return 0;
    if (index === 0) return ERRNO.EBUSY; // the BSP is not hot-pluggable here
    cpu.phase = cpu.phase === 'running' ? 'dying' : cpu.phase;
    this.vm.sendFixed(cpu.apicId, CALL_FUNCTION_SINGLE_VECTOR);
    this.settle(0);
    const gone = this.stoppedReason;
    if (gone !== undefined) return { stopped: gone };
    cpu.online = false;
    return 0;
  }

  /** The code of a Linux AP on its own VMSA. */
  #linuxAp(cpu: LinuxCpu, entry: GuestEntry, vcpu: Vcpu): GuestExit {
    // Pending interrupts are taken and acknowledged by the kernel's handlers.
    vcpu.lapic.irr.clear();
    switch (cpu.phase) {
      case 'booting': {
        if (!cpu.ghcbRegistered) {
          // Early AP startup: register this CPU's GHCB (the MSR protocol, no GHCB needed yet).
          const gfn = BigInt(cpu.ghcbGpa / PAGE_SIZE);
          cpu.ghcbRegistered = true;
          entry.writeGhcbMsr(regGpaRequest(gfn));
          return { kind: 'vmgexit' };
        }
        vcpu.lapic.writeSvr(SVR_ENABLED);
        cpu.phase = 'running';
        return { kind: 'hlt' };
      }
      case 'dying':
      case 'held': {
        if (cpu.phase === 'held') {
          // Back from AP_HLT_LOOP: SW_EXITINFO2 != 0 means a SIPI ended the hold (soft_restart_cpu);
          // nobody waits for this CPU then, so it stays in the model's stray loop.
          const info2 = this.read(entry.guest, cpu.ghcbGpa + GHCB_FIELD.sw_exit_info_2, 8, 0);
          if (info2 instanceof Uint8Array && new DataView(info2.buffer).getBigUint64(0, true) !== 0n) {
            cpu.phase = 'stray';
            return { kind: 'hlt' };
          }
        } else {
          vcpu.lapic.writeSvr(SVR_DISABLED);
        }
        cpu.phase = 'held';
        return this.#apHltLoop(cpu, entry);
      }
      case 'running':
      case 'stray':
      case 'parked-by-firmware':
        return { kind: 'hlt' };
    }
  }

  /** sev_es_ap_hlt_loop: SVM_VMGEXIT_AP_HLT_LOOP through the CPU's GHCB. */
  #apHltLoop(cpu: LinuxCpu, entry: GuestEntry): GuestExit {
    const page = ghcbPage(
      { sw_exit_code: SVM_VMGEXIT.AP_HLT_LOOP },
      ['sw_exit_code', 'sw_exit_info_1', 'sw_exit_info_2'],
      this.vm.ghcbVersion,
    );
    const fault = this.write(entry.guest, cpu.ghcbGpa, page, 0);
    if (fault !== undefined) return fault;
    entry.writeGhcbMsr(BigInt(cpu.ghcbGpa));
    return { kind: 'vmgexit' };
  }

  /**
   * Code at a VMSA the kernel did not build (the module's pages): the CPU executes the bytes at
   * CS.base + RIP. The model decodes the marker stub's three instructions (mov dword [disp16],
   * imm32 with an operand-size prefix; hlt; jmp rel8) and saves RIP back into the VMSA as #VMEXIT
   * does. Any other code: model choice, the AP halts (ap-creation.md E: unknown code is not run).
   */
  #interpret(entry: GuestEntry): GuestExit {
    const vmsa = this.system.platform.memory.read(entry.vmsaPa, VMSA_SIZE);
    const view = new DataView(vmsa.buffer);
    const csBase = Number(readField(view, 'cs_base'));
    let rip = Number(readField(view, 'rip'));
    const dsBase = Number(view.getBigUint64(VmsaOffset.DS + VmcbSeg.BASE, true));
    const save = () => this.system.platform.memory.write(entry.vmsaPa + VmsaOffset.RIP, le64(BigInt(rip)));
    for (let steps = 0; steps < 4; steps++) {
      const at = csBase + rip;
      if (this.spaOf(at) < 0) break;
      const code = this.peek(at, 9);
      if (code[0] === 0x66 && code[1] === 0xc7 && code[2] === 0x06) {
        const disp = code[3]! | (code[4]! << 8);
        const imm = new DataView(code.buffer).getUint32(5, true);
        const store = new Uint8Array(4);
        new DataView(store.buffer).setUint32(0, imm, true);
        const fault = this.write(entry.guest, dsBase + disp, store, 1);
        if (fault !== undefined) {
          save();
          return fault;
        }
        rip += 9;
        continue;
      }
      if (code[0] === 0xf4) {
        rip += 1;
        save();
        return { kind: 'hlt' };
      }
      if (code[0] === 0xeb) {
        rip = rip + 2 + ((code[1]! << 24) >> 24);
        continue;
      }
      break;
    }
    save();
    return { kind: 'hlt' };
  }

  /** The stub's marker word for the page at `stubGpa` (host view: the module polls it via its mapping). */
  marker(stubGpa: number): number {
    return new DataView(this.peek(stubGpa + STUB_MARKER_OFFSET, 4).buffer).getUint32(0, true);
  }
}

function le64(value: bigint): Uint8Array {
  const out = new Uint8Array(8);
  new DataView(out.buffer).setBigUint64(0, value, true);
  return out;
}
