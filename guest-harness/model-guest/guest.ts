/**
 * The model's guest: a booted model machine with the snpsim module loaded, answering agent
 * requests as a real guest's agent does, plus what only a model can do: host-side steps
 * (KVM_SET_MP_STATE, one KVM_RUN of a vCPU) and its internal state for experiments.
 */
import type { AgentHello, AgentReply, AgentRequest } from '../protocol/index.js';
import type { ModelState } from '../runner/observation.js';
import { MP_STATES } from '../scenario/index.js';
import {
  type HostPolicy,
  INVALID_PAGE,
  KVM_MP_STATE,
  kvmSetMpState,
  PAGE_SIZE,
  type PlatformProfile,
} from './host-api.js';
import { type GuestStopped, isStopped, Machine } from './machine.js';
import { SnpsimModule } from './module.js';

/** Version the model reports as its agent and module (the versions it mirrors). */
export const MODEL_AGENT_VERSION = '0.1.0';
export const MODEL_MODULE_VERSION = '0.1.0';

export interface ModelGuestConfig {
  readonly policyName: string;
  readonly policy: HostPolicy;
  readonly profileName: string;
  readonly profile: PlatformProfile;
  readonly vcpus: number;
  /** SEV_STATUS of the guest (default SEV | SEV-ES | SNP = 0x7). */
  readonly sevStatus?: bigint;
}

const MP_STATE_NAME: ReadonlyMap<number, string> = new Map([
  ...Object.entries(MP_STATES).map(([name, value]) => [value, name] as const),
  [KVM_MP_STATE.SNPSIM_OFFLINE, 'OFFLINE'],
]);

/** A KVM_MP_STATE value's name without the prefix (OFFLINE for the reviewer's state). */
export function mpStateLabel(state: number): string {
  return MP_STATE_NAME.get(state) ?? `0x${state.toString(16)}`;
}

export class ModelGuest {
  readonly config: ModelGuestConfig;
  readonly machine: Machine;
  readonly module: SnpsimModule;

  private constructor(config: ModelGuestConfig, machine: Machine) {
    this.config = config;
    this.machine = machine;
    this.module = new SnpsimModule(machine);
  }

  /** Boots a fresh VM (launch, firmware, kernel, every AP online) and loads the module. */
  static boot(config: ModelGuestConfig): ModelGuest {
    const machine = Machine.boot({
      policyName: config.policyName,
      policy: config.policy,
      profile: config.profile,
      vcpus: config.vcpus,
      ...(config.sevStatus !== undefined ? { sevStatus: config.sevStatus } : {}),
    });
    return new ModelGuest(config, machine);
  }

  /** Why the guest is gone, or undefined while it answers. */
  get stopped(): string | undefined {
    return this.machine.stoppedReason;
  }

  /** The platform details a hello line carries (PROTOCOL.md). */
  hello(): AgentHello {
    return {
      protocol: 1,
      agent: MODEL_AGENT_VERSION,
      backend: 'sim',
      kernel: 'none',
      module: MODEL_MODULE_VERSION,
      sevStatus: this.machine.sevStatus,
      vmpl: 0,
      cpus: this.machine.cpus.filter((c) => c.online).length,
      possibleCpus: this.machine.cpus.length,
      policy: this.config.policyName,
      profile: this.config.profileName,
      hostSteps: true,
      extra: {},
    };
  }

  /** One agent request; GuestStopped when the guest is gone (no answer on hardware either). */
  execute(request: AgentRequest): AgentReply | GuestStopped {
    if (request.verb === 'hello') {
      const gone = this.stopped;
      return gone !== undefined ? { stopped: gone } : { status: 'ok', verb: 'hello', hello: this.hello() };
    }
    if (request.verb === 'host-set-mp-state') return this.setMpState(request.vcpu, request.state);
    return this.module.execute(request);
  }

  /** Host step: KVM_SET_MP_STATE (ret 0 or -errno), then the vCPUs run. */
  setMpState(vcpu: number, state: number): AgentReply | GuestStopped {
    const gone = this.stopped;
    if (gone !== undefined) return { stopped: gone };
    const v = this.machine.vm.vcpus[vcpu];
    // No such vCPU: the VMM has no vCPU fd to issue the ioctl on.
    if (v === undefined) return { status: 'err', verb: 'host-set-mp-state', code: 'failed', errno: 2 };
    const ret = kvmSetMpState(v, state);
    this.machine.settle(0);
    return { status: 'ok', verb: 'host-set-mp-state', ret };
  }

  /** Model-only host step: one KVM_RUN iteration of `vcpu` now; its outcome as protocol tokens. */
  hostRun(vcpu: number): Record<string, string> | GuestStopped {
    const gone = this.stopped;
    if (gone !== undefined) return { stopped: gone };
    const v = this.machine.vm.vcpus[vcpu];
    if (v === undefined) return { exit: 'no-such-vcpu' };
    const outcome = v.run(this.machine.guestCode);
    const exit =
      outcome.kind === 'exit'
        ? `vmexit-${outcome.exit}`
        : outcome.kind === 'userspace'
          ? `kvm-exit-${outcome.exitReason}`
          : outcome.kind === 'errno'
            ? `errno${outcome.errno}`
            : outcome.kind;
    return { exit, mp_state: mpStateLabel(v.mpState).toLowerCase().replace(/_/g, '-') };
  }

  /** The batch ends: the module releases the session's pages where safe. */
  closeSession(): void {
    if (this.stopped === undefined) this.module.close();
  }

  /** Internal state after a step: every vCPU, and the RMP entry of every page handle. */
  state(pageNames: ReadonlyMap<number, string> = new Map()): ModelState {
    const hex = (v: bigint | number) => `0x${v.toString(16)}`;
    const vcpus = this.machine.vm.vcpus.map((v) => ({
      index: v.index,
      apicId: v.vcpuId,
      mpState: mpStateLabel(v.mpState),
      pvUnhalted: v.pvUnhalted,
      vmsaPa: v.vmcbVmsaPa === INVALID_PAGE ? 'INVALID_PAGE' : hex(v.vmcbVmsaPa),
      ...(v.reqUpdateProtectedGuestState || v.snpApWaitingForReset || v.snpVmsaUpdateOnInit
        ? {
            pending: `request=${v.reqUpdateProtectedGuestState ? 1 : 0} waiting=${v.snpApWaitingForReset || v.snpVmsaUpdateOnInit ? 1 : 0} gpa=${v.snpVmsaGpa === INVALID_PAGE ? 'INVALID_PAGE' : hex(v.snpVmsaGpa)}`,
          }
        : {}),
    }));
    const pages: ModelState['pages'] = {};
    for (const [h, name] of pageNames) {
      const p = this.module.page(h);
      if (p === undefined) continue;
      const spa = this.machine.spaOf(p.gpa);
      const e = spa < 0 ? undefined : this.machine.system.platform.firmwareRead(Math.floor(spa / PAGE_SIZE));
      pages[name] = {
        gpa: hex(p.gpa),
        assigned: e?.assigned ?? false,
        validated: e?.validated ?? false,
        vmsa: e?.vmsa ?? false,
        asid: e?.asid ?? 0,
        pageSize: e?.pageSize ?? 0,
        immutable: e?.immutable ?? false,
      };
    }
    const stopped = this.stopped;
    return {
      vcpus,
      pages,
      ...(stopped !== undefined ? { stopped } : {}),
      ...(this.machine.events.length > 0 ? { events: [...this.machine.events] } : {}),
    };
  }
}

export { type GuestStopped, isStopped };
