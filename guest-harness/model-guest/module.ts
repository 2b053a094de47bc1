/**
 * The guest kernel module and agent, expressed against the model: each agent request does what
 * guest-harness/agent (snpsim-agent.c, snpsim_proto.c) and guest-harness/kmod (snpsim_guest.c,
 * snpsim_vmsa.c, snpsim_cpu.c, snpsim_ghcb.c) do on hardware, with the same refusals (status,
 * errno, reason) and the same safety rules for VMSA pages. Requests run on the BSP (the CPU the
 * agent runs on); AP Creation goes through the BSP's registered GHCB.
 */
import type {
  AgentErrorCode,
  AgentReply,
  AgentRequest,
  VmsaMemory,
  VmsaPlacement,
} from '../protocol/index.js';
import { defaultValid, RMPADJUST_RDX_CLEAR_VMSA } from '../scenario/index.js';
import {
  GENMASK_51_0,
  GHCB_MSR,
  GHCB_MSR_HV_FT_POS,
  GHCB_MSR_INFO_MASK,
  type GhcbField,
  KVM_HC_KICK_CPU,
  PAGE_SIZE,
  pscRequest,
  RmpStatus,
  SNP_PAGE_STATE_PRIVATE,
  SNP_PAGE_STATE_SHARED,
  SVM_EXIT,
  SVM_VMGEXIT,
  SVM_VMGEXIT_AP_DESTROY,
} from './host-api.js';
import { ERRNO as E, type GuestStopped, isStopped, type Machine, VALID_FIELD } from './machine.js';
import { buildVmsa, fitsWidth, stubPage, VMSA_FIELD_LAYOUT, VMSA_SIZE, writeBytes } from './vmsa.js';

/** 2 MiB = 2^9 pages. // snpsim_vmsa.c SNPSIM_ORDER_2M */
const ORDER_2M = 9;

/** Module refusal reasons as the agent writes them (snpsim_proto.c sp_module_reasons). */
type Reason =
  | 'bad-argument'
  | 'ghcb-unknown'
  | 'ap-may-run'
  | 'unvalidated'
  | 'needs-2m-aligned'
  | 'no-stub'
  | 'page-kept';

/** One VMSA page of the module (struct snpsim_page). */
interface ModulePage {
  readonly blockGpa: number;
  readonly order: 0 | 9;
  /** The VMSA page itself (the second page of an order-1 block, or the first of a 2 MiB block). */
  readonly gpa: number;
  readonly memory: VmsaMemory;
  shared: boolean;
  unvalidated: boolean;
  rescinded: boolean;
  adjusted2m: boolean;
  sevFeatures: bigint;
  stubGpa: number | undefined;
  cookie: number;
  readonly suspects: Set<number>;
  refStamp: number;
  refUnknown: boolean;
  kept: boolean;
  leak: boolean;
}

export type ModuleResult = AgentReply | GuestStopped;

function fail(verb: AgentRequest['verb'], code: AgentErrorCode, errno?: number, reason?: Reason): AgentReply {
  return {
    status: 'err',
    verb,
    code,
    ...(errno !== undefined ? { errno } : {}),
    ...(reason !== undefined ? { extra: { reason } } : {}),
  };
}

/** GHCB_MSR_PSC_RESP with error code 0 in [63:32]. // [LX] GHCB_MSR_PSC_RESP_VAL */
function pscDone(msr: bigint): boolean {
  return (msr & GHCB_MSR_INFO_MASK) === GHCB_MSR.PSC_RESP && msr >> 32n === 0n;
}

/** A deterministic stand-in for get_random_u32() | 1: cookies differ per page, runs are reproducible. */
function cookieFor(gpa: number, serial: number): number {
  let x = (gpa ^ Math.imul(serial, 0x9e3779b1)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b) >>> 0;
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35) >>> 0;
  return ((x ^ (x >>> 16)) | 1) >>> 0;
}

/** The module's state in one guest: every page not yet returned, and one session's handles. */
export class SnpsimModule {
  readonly #machine: Machine;
  readonly #pages: ModulePage[] = [];
  readonly #handles = new Map<number, ModulePage>();
  #serial = 0;

  constructor(machine: Machine) {
    this.#machine = machine;
  }

  /** The page behind handle `h` (for state reports). */
  page(h: number): { readonly gpa: number; readonly stubGpa: number | undefined } | undefined {
    return this.#handles.get(h);
  }

  /** Executes one agent request. */
  execute(request: AgentRequest): ModuleResult {
    const m = this.#machine;
    const gone = m.stoppedReason;
    if (gone !== undefined) return { stopped: gone };
    switch (request.verb) {
      case 'hello':
        throw new Error('hello is answered by the guest, not the module');
      case 'hv-features': {
        const msr = m.msrProtocol(0, GHCB_MSR.HV_FT_REQ);
        if (isStopped(msr)) return msr;
        return {
          status: 'ok',
          verb: 'hv-features',
          msr,
          features: (msr >> GHCB_MSR_HV_FT_POS) & GENMASK_51_0,
        };
      }
      case 'sev-info': {
        const msr = m.msrProtocol(0, GHCB_MSR.SEV_INFO_REQ);
        if (isStopped(msr)) return msr;
        // GHCB_MSR_SEV_INFO: [63:48] max, [47:32] min protocol version, [31:24] C-bit. // [LX] sev-common.h
        return {
          status: 'ok',
          verb: 'sev-info',
          msr,
          max: Number((msr >> 48n) & 0xffffn),
          min: Number((msr >> 32n) & 0xffffn),
          cbit: Number((msr >> 24n) & 0xffn),
        };
      }
      case 'vmsa-alloc':
        return this.#alloc(request.h, request.placement, request.memory);
      case 'ap-creation':
        return this.#apCreation(request);
      case 'cpu-offline':
      case 'cpu-online': {
        // The agent itself: sysfs online = 0 / 1, the APIC ID from the module (CPU_APIC).
        if (request.cpu >= m.cpus.length) return fail(request.verb, 'failed', E.ENOENT);
        const r = request.verb === 'cpu-offline' ? m.cpuDown(request.cpu) : m.cpuUp(request.cpu);
        if (isStopped(r)) return r;
        if (r !== 0) return fail(request.verb, 'failed', r);
        return { status: 'ok', verb: request.verb, apic: m.cpus[request.cpu]!.apicId };
      }
      case 'init-sipi': {
        // INIT assert, INIT de-assert (ignored by KVM for an x2APIC), one SIPI. x2APIC mode: any
        // 32-bit destination. A destination no vCPU has is dropped by the APIC bus.
        m.vm.sendInit(request.apic);
        m.vm.sendSipi(request.apic, request.vector & 0xff);
        m.settle(0);
        return { status: 'ok', verb: 'init-sipi' };
      }
      case 'pv-kick': {
        // kvm_hypercall2(KVM_HC_KICK_CPU, 0, apic): VMMCALL → #VC → the kernel's GHCB
        // (vc_handle_vmmcall + kvm_sev_es_hcall_prepare: RAX, RBX, RCX, RDX, RSI and CPL).
        const r = m.naeCall(
          0,
          {
            sw_exit_code: BigInt(SVM_EXIT.VMMCALL),
            rax: BigInt(KVM_HC_KICK_CPU),
            rbx: 0n,
            rcx: BigInt(request.apic),
            rdx: 0n,
            rsi: 0n,
            cpl: 0n,
          },
          ['sw_exit_code', 'sw_exit_info_1', 'sw_exit_info_2', 'rax', 'rbx', 'rcx', 'rdx', 'rsi', 'cpl'],
          ['rax'],
        );
        if (isStopped(r)) return r;
        m.settle(0);
        return { status: 'ok', verb: 'pv-kick', ret: Number(BigInt.asIntN(64, r.regs.rax ?? 0n)) };
      }
      case 'host-set-mp-state':
        throw new Error('host-set-mp-state is a host step, not a module operation');
      default:
        return this.#onHandle(request);
    }
  }

  #onHandle(
    request: Extract<
      AgentRequest,
      {
        verb:
          | 'vmsa-init'
          | 'vmsa-set'
          | 'vmsa-poke'
          | 'rmpadjust'
          | 'pvalidate'
          | 'wait-marker'
          | 'vmsa-free';
      }
    >,
  ): ModuleResult {
    const p = this.#handles.get(request.h);
    if (p === undefined) return fail(request.verb, 'bad-handle');
    switch (request.verb) {
      case 'vmsa-init':
        return this.#init(p, request.template, request.stub);
      case 'vmsa-set': {
        const { offset, width } = VMSA_FIELD_LAYOUT[request.field];
        if (!fitsWidth(request.value, width))
          return fail('vmsa-set', 'bad-request', undefined, 'bad-argument');
        return this.#store(p, 'vmsa-set', offset, width, request.value);
      }
      case 'vmsa-poke':
        if (request.offset + request.width > VMSA_SIZE || !fitsWidth(request.value, request.width)) {
          return fail('vmsa-poke', 'bad-request', undefined, 'bad-argument');
        }
        return this.#store(p, 'vmsa-poke', request.offset, request.width, request.value);
      case 'rmpadjust': {
        // 2 MiB on a split page would change RMP entries of memory the kernel owns.
        if (request.size === 1 && p.order !== ORDER_2M)
          return fail('rmpadjust', 'failed', E.EINVAL, 'needs-2m-aligned');
        if (request.size === 1) p.adjusted2m = true;
        const r = this.#machine.rmpadjust(
          0,
          request.size === 1 ? p.blockGpa : p.gpa,
          request.size,
          request.rdx,
        );
        if (isStopped(r)) return r;
        return { status: 'ok', verb: 'rmpadjust', eax: r.eax };
      }
      case 'pvalidate': {
        if (request.size === 1 && p.order !== ORDER_2M)
          return fail('pvalidate', 'failed', E.EINVAL, 'needs-2m-aligned');
        if (request.validate === 0) p.rescinded = true;
        const r = this.#machine.pvalidate(
          0,
          request.size === 1 ? p.blockGpa : p.gpa,
          request.size,
          request.validate,
        );
        if (isStopped(r)) return r;
        if (r.eax === 0) p.unvalidated = request.validate === 0;
        return { status: 'ok', verb: 'pvalidate', eax: r.eax, cf: r.cf };
      }
      case 'wait-marker': {
        if (p.stubGpa === undefined || p.cookie === 0)
          return fail('wait-marker', 'failed', E.EINVAL, 'no-stub');
        // The model has no clock: "timeout_ms later" is "after every vCPU ran until it sleeps".
        this.#machine.settle(0);
        const gone = this.#machine.stoppedReason;
        if (gone !== undefined) return { stopped: gone };
        return {
          status: 'ok',
          verb: 'wait-marker',
          ran: this.#machine.marker(p.stubGpa) === p.cookie ? 1 : 0,
        };
      }
      case 'vmsa-free': {
        const r = this.#free(p);
        if (isStopped(r)) return r;
        if (!(r.status === 'err' && r.code === 'busy')) this.#handles.delete(request.h);
        return r;
      }
    }
  }

  /** snpsim_page_alloc */
  #alloc(h: number, placement: VmsaPlacement, memory: VmsaMemory): ModuleResult {
    const m = this.#machine;
    if (this.#handles.has(h)) return fail('vmsa-alloc', 'bad-handle');
    let blockGpa: number;
    let gpa: number;
    let order: 0 | 9;
    if (placement === 'split') {
      // Linux's snp_alloc_vmsa_page(): second page of an order-1 block, never 2 MiB aligned.
      const block = m.allocPages(1, true);
      if (isStopped(block)) return block;
      if (block === undefined) return fail('vmsa-alloc', 'failed', E.ENOMEM);
      m.freePages(block);
      blockGpa = block + PAGE_SIZE;
      gpa = blockGpa;
      order = 0;
    } else {
      const block = m.allocPages(ORDER_2M, true);
      if (isStopped(block)) return block;
      if (block === undefined) return fail('vmsa-alloc', 'failed', E.ENOMEM);
      blockGpa = block;
      gpa = block;
      order = ORDER_2M;
    }
    const p: ModulePage = {
      blockGpa,
      order,
      gpa,
      memory,
      shared: false,
      unvalidated: false,
      rescinded: false,
      adjusted2m: false,
      sevFeatures: 0n,
      stubGpa: undefined,
      cookie: 0,
      suspects: new Set(),
      refStamp: 0,
      refUnknown: false,
      kept: false,
      leak: false,
    };
    if (memory === 'shared') {
      // set_memory_decrypted → snp_set_memory_shared: rescind, then the page state change.
      const rescind = m.pvalidate(0, gpa, 0, 0);
      if (isStopped(rescind)) return rescind;
      const psc = m.msrProtocol(0, pscRequest(BigInt(gpa / PAGE_SIZE), SNP_PAGE_STATE_SHARED));
      if (isStopped(psc)) return psc;
      if (rescind.eax !== 0 || !pscDone(psc)) {
        // Page state unknown: never reuse it (as Linux's dma-direct does).
        p.leak = true;
        p.kept = true;
        this.#pages.push(p);
        return fail('vmsa-alloc', 'failed', E.EIO, 'page-kept');
      }
      p.shared = true;
    } else if (memory === 'unvalidated') {
      const r = m.pvalidate(0, gpa, 0, 0);
      if (isStopped(r)) return r;
      if (r.eax !== 0) {
        m.freePages(gpa);
        return fail('vmsa-alloc', 'failed', E.EIO);
      }
      p.unvalidated = true;
      p.rescinded = true;
    }
    this.#pages.push(p);
    this.#handles.set(h, p);
    return { status: 'ok', verb: 'vmsa-alloc', gpa: BigInt(gpa) };
  }

  /** snpsim_page_init: the template, optionally pointing at a fresh stub page below 4 GiB. */
  #init(p: ModulePage, template: 'linux' | 'ovmf' | 'zero', stub: 0 | 1): ModuleResult {
    const m = this.#machine;
    if (p.unvalidated) return fail('vmsa-init', 'failed', E.EACCES, 'unvalidated');
    if (stub === 1 && p.stubGpa === undefined) {
      const page = m.allocPages(0, true);
      if (isStopped(page)) return page;
      if (page === undefined) return fail('vmsa-init', 'failed', E.ENOMEM);
      p.stubGpa = page;
    }
    const vmsa = buildVmsa(template, {
      sevStatus: m.sevStatus,
      ...(stub === 1 && p.stubGpa !== undefined ? { stubPa: p.stubGpa } : {}),
    });
    const cbit: 0 | 1 = p.shared ? 0 : 1;
    if (stub === 1 && p.stubGpa !== undefined) {
      this.#serial += 1;
      p.cookie = cookieFor(p.gpa, this.#serial);
      const code = stubPage(p.cookie);
      const r = m.run(0, (entry) => ({
        exit: m.write(entry.guest, p.stubGpa!, code, 1) ?? { kind: 'intr' },
        value: 0,
      }));
      if (isStopped(r)) return r;
    } else {
      p.cookie = 0;
    }
    const r = m.run(0, (entry) => ({
      exit: m.write(entry.guest, p.gpa, vmsa, cbit) ?? { kind: 'intr' },
      value: 0,
    }));
    if (isStopped(r)) return r;
    p.sevFeatures = new DataView(vmsa.buffer).getBigUint64(VMSA_FIELD_LAYOUT.sev_features.offset, true);
    return { status: 'ok', verb: 'vmsa-init', sevFeatures: p.sevFeatures };
  }

  /** snpsim_page_store: a little-endian write into the VMSA page. */
  #store(
    p: ModulePage,
    verb: 'vmsa-set' | 'vmsa-poke',
    offset: number,
    width: 1 | 2 | 4 | 8,
    value: bigint,
  ): ModuleResult {
    const m = this.#machine;
    if (p.unvalidated) return fail(verb, 'failed', E.EACCES, 'unvalidated');
    const bytes = new Uint8Array(width);
    writeBytes(new DataView(bytes.buffer), 0, width, value);
    const r = m.run(0, (entry) => ({
      exit: m.write(entry.guest, p.gpa + offset, bytes, p.shared ? 0 : 1) ?? { kind: 'intr' },
      value: 0,
    }));
    if (isStopped(r)) return r;
    p.sevFeatures = new DataView(
      m.peek(p.gpa + VMSA_FIELD_LAYOUT.sev_features.offset, 8).buffer,
    ).getBigUint64(0, true);
    return verb === 'vmsa-set' ? { status: 'ok', verb } : { status: 'ok', verb };
  }

  /**
   * The NAE event an `ap-creation` request writes to the GHCB (snpsim_op_ap_creation): each raw
   * override, else SW_EXITCODE 0x80000013, SW_EXITINFO1 = APIC ID [63:32] | VMPL [19:16] | request
   * [15:0], SW_EXITINFO2 = the page's GPA, RAX = the SEV_FEATURES last written to the page, and the
   * valid bits. `badHandle`: the event needs the page of a handle that names none.
   */
  apCreationEvent(request: Extract<AgentRequest, { verb: 'ap-creation' }>): {
    readonly fields: Readonly<Record<'sw_exit_code' | 'sw_exit_info_1' | 'sw_exit_info_2' | 'rax', bigint>>;
    readonly valid: readonly GhcbField[];
    readonly badHandle: boolean;
  } {
    const fromHandle = request.info2 === undefined && request.gpa === undefined;
    const needsPage = request.h !== undefined && (fromHandle || request.rax === undefined);
    const page = needsPage ? this.#handles.get(request.h!) : undefined;
    return {
      fields: {
        sw_exit_code: request.exitCode ?? SVM_VMGEXIT.AP_CREATION,
        sw_exit_info_1:
          request.info1 ??
          (BigInt(request.apic) << 32n) | (BigInt(request.vmpl) << 16n) | BigInt(request.request),
        sw_exit_info_2: request.info2 ?? request.gpa ?? BigInt(page?.gpa ?? 0),
        rax: request.rax ?? page?.sevFeatures ?? 0n,
      },
      valid: (request.valid ?? defaultValid(request.request)).map((v) => VALID_FIELD[v]),
      badHandle: needsPage && page === undefined,
    };
  }

  /** snpsim_op_ap_creation + snpsim_nae_call: the raw NAE event through the BSP's registered GHCB. */
  #apCreation(request: Extract<AgentRequest, { verb: 'ap-creation' }>): ModuleResult {
    const m = this.#machine;
    const event = this.apCreationEvent(request);
    if (event.badHandle) return fail('ap-creation', 'bad-handle');
    const { sw_exit_code: exitCode, sw_exit_info_1: info1, sw_exit_info_2: info2 } = event.fields;
    // Anything but a DESTROY may make the hypervisor run the page at SW_EXITINFO2 on that vCPU.
    if (exitCode === SVM_VMGEXIT.AP_CREATION && (info1 & 0xffffn) !== BigInt(SVM_VMGEXIT_AP_DESTROY))
      this.#referencedBy(info2, Number(info1 >> 32n));
    // snpsim_kernel_ghcb: the GHCB is the page whose GPA the GHCB MSR holds (0x000 or 0x013).
    const bsp = m.cpus[0]!;
    if (!bsp.ghcbRegistered) return fail('ap-creation', 'failed', E.EAGAIN, 'ghcb-unknown');
    const r = m.naeCall(0, event.fields, event.valid);
    if (isStopped(r)) return r;
    m.settle(0);
    return { status: 'ok', verb: 'ap-creation', swExitInfo1: r.info1, swExitInfo2: r.info2 };
  }

  /** snpsim_pages_referenced_by: pages whose GPA is SW_EXITINFO2's frame (C-bit ignored). */
  #referencedBy(info2: bigint, apic: number): void {
    const cbit = BigInt(this.#machine.kvm.cbitPosition);
    const frame = info2 & ~0xfffn & ~(1n << cbit);
    const cpu = this.#machine.cpus.findIndex((c) => c.apicId === apic);
    for (const p of this.#pages) {
      if (BigInt(p.gpa) !== frame) continue;
      p.refStamp = this.#machine.nextStamp();
      if (cpu < 0) p.refUnknown = true;
      else p.suspects.add(cpu);
    }
  }

  /** snpsim_page_unreachable: every CPU the page was handed to was brought online by Linux since. */
  #unreachable(p: ModulePage): boolean {
    if (p.refUnknown) return false;
    for (const cpu of p.suspects) {
      const c = this.#machine.cpus[cpu]!;
      if (!c.online || c.onlineStamp <= p.refStamp) return false;
    }
    return true;
  }

  /** snpsim_page_return / snpsim_page_free. */
  #free(p: ModulePage): ModuleResult {
    const m = this.#machine;
    if (p.leak) return fail('vmsa-free', 'failed', E.EIO, 'page-kept');
    if (!this.#unreachable(p)) return fail('vmsa-free', 'busy', undefined, 'ap-may-run');
    const keep = (reply: AgentReply): AgentReply => {
      p.kept = true;
      return reply;
    };
    if (p.shared) {
      // set_memory_encrypted → snp_set_memory_private: page state change, then validate.
      const psc = m.msrProtocol(0, pscRequest(BigInt(p.gpa / PAGE_SIZE), SNP_PAGE_STATE_PRIVATE));
      if (isStopped(psc)) return psc;
      const v = m.pvalidate(0, p.gpa, 0, 1);
      if (isStopped(v)) return v;
      if (!pscDone(psc) || v.eax !== 0) {
        p.leak = true;
        return keep(fail('vmsa-free', 'failed', E.EIO, 'page-kept'));
      }
      p.shared = false;
    }
    if (p.rescinded) {
      for (let i = 0; i < 2 ** p.order; i++) {
        const v = m.pvalidate(0, p.blockGpa + i * PAGE_SIZE, 0, 1);
        if (isStopped(v)) return v;
        if (v.eax !== 0) return keep(fail('vmsa-free', 'failed', E.EIO, 'page-kept'));
      }
      p.rescinded = false;
      p.unvalidated = false;
    }
    if (p.adjusted2m) {
      const eax = this.#clear2m(p);
      if (isStopped(eax)) return eax;
      if (eax !== 0) return keep({ status: 'ok', verb: 'vmsa-free', eax, freed: 0 });
      p.adjusted2m = false;
    }
    const clear = m.rmpadjust(0, p.gpa, 0, RMPADJUST_RDX_CLEAR_VMSA);
    if (isStopped(clear)) return clear;
    if (clear.eax !== 0) return keep({ status: 'ok', verb: 'vmsa-free', eax: clear.eax, freed: 0 });
    if (p.stubGpa !== undefined) m.freePages(p.stubGpa);
    m.freePages(p.blockGpa, p.order);
    this.#pages.splice(this.#pages.indexOf(p), 1);
    return { status: 'ok', verb: 'vmsa-free', eax: 0, freed: 1 };
  }

  /** snpsim_clear_2m: 2 MiB clear, or per 4 KiB page when the entry was smashed. */
  #clear2m(p: ModulePage): number | GuestStopped {
    const m = this.#machine;
    const whole = m.rmpadjust(0, p.blockGpa, 1, RMPADJUST_RDX_CLEAR_VMSA);
    if (isStopped(whole)) return whole;
    if (whole.eax !== RmpStatus.FAIL_SIZEMISMATCH) return whole.eax;
    for (let i = 0; i < 2 ** p.order; i++) {
      const r = m.rmpadjust(0, p.blockGpa + i * PAGE_SIZE, 0, RMPADJUST_RDX_CLEAR_VMSA);
      if (isStopped(r)) return r;
      if (r.eax !== 0) return r.eax;
    }
    return 0;
  }

  /** Handles still open: the session is closing (snpsim_ctl_release). */
  close(): void {
    for (const p of this.#handles.values()) {
      const r = this.#free(p);
      if (isStopped(r)) break;
    }
    this.#handles.clear();
  }
}
