/**
 * Test support for the host layer: a launched SNP VM on a real platform + firmware, and the guest
 * actions the harness's model guest would perform (GHCB set-up through the MSR protocol, NAE events
 * through a real shared GHCB page, VMSA preparation with PVALIDATE/RMPADJUST). Imports only the
 * public entries of the layers.
 */
import assert from 'node:assert/strict';
import {
  GHCB_MSR,
  type GhcbField,
  GhcbView,
  type GuestEntry,
  type GuestExit,
  getPreset,
  type HostPolicy,
  Kvm,
  pscRequest,
  type RunOutcome,
  regGpaRequest,
  SNP_PAGE_STATE_SHARED,
  SVM_SEV_FEAT,
  snpLaunchFinish,
  snpLaunchStart,
  type Vcpu,
  type Vm,
} from '../../host/index.js';
import {
  AccessKind,
  buildVmsa,
  createSnpSystem,
  type Firmware,
  type Platform,
  type PlatformProfile,
  VmmType,
} from '../../psp-firmware/index.js';

export const MiB = 1 << 20;
/** Guest RAM of the test VMs: [0, 8 MiB). */
export const GUEST_RAM = 8 * MiB;
/** The GHCB page each vCPU uses by default: one page per vCPU from 0x10000. */
export const ghcbGpaOf = (vcpuId: number): number => 0x10000 + vcpuId * 0x1000;
/** A VMSA page for AP Creation: not 2 MiB aligned (Linux's order-1 trick picks such a page). */
export const VMSA_GPA = 0x21000;
/** Guest policy with SMT allowed and the must-be-one bit 17 (the common default 0x30000). */
export const GUEST_POLICY = 0x30000n;
/** RMPADJUST RDX for "VMSA page, target VMPL1, no permissions" (Linux snp_set_vmsa). */
export const RMPADJUST_VMSA = 0x10001n;

export interface TestSystem {
  readonly platform: Platform;
  readonly firmware: Firmware;
  readonly kvm: Kvm;
  readonly vm: Vm;
}

export function policyOf(name: string): HostPolicy {
  const preset = getPreset(name);
  assert.ok(preset, `no preset ${name}`);
  return preset.policy;
}

/**
 * A platform with SNP initialised, KVM, and an SNP VM with `vcpus` vCPUs; launched (START + FINISH:
 * every launch VMSA measured) unless `launch` is false.
 */
export function makeSystem(
  policy: HostPolicy | string = 'linux-6.11',
  options: {
    readonly vcpus?: number;
    readonly launch?: boolean;
    readonly vmsaFeatures?: bigint;
    /** Platform profile (default genoa). */
    readonly profile?: PlatformProfile;
  } = {},
): TestSystem {
  const { platform, firmware } = createSnpSystem({
    memoryBytes: 64 * MiB,
    init: true,
    ...(options.profile === undefined ? {} : { profile: options.profile }),
  });
  const kvm = new Kvm({ platform, firmware });
  const created = kvm.createVm({
    policy: typeof policy === 'string' ? policyOf(policy) : policy,
    memory: [{ gpa: 0, bytes: GUEST_RAM }],
    vcpus: options.vcpus ?? 2,
    ...(options.vmsaFeatures === undefined ? {} : { vmsaFeatures: options.vmsaFeatures }),
  });
  assert.ok(created.ok, created.ok ? '' : created.detail);
  const { vm } = created;
  if (options.launch !== false) {
    const start = snpLaunchStart(vm, { policy: GUEST_POLICY });
    assert.equal(start.ret, 0, start.detail);
    const finish = snpLaunchFinish(vm, { apEip: 0xfffff000 });
    assert.equal(finish.ret, 0, finish.detail);
  }
  return { platform, firmware, kvm, vm };
}

/** Guest code that writes the GHCB MSR and executes VMGEXIT. */
export function vmgexitWith(msr: bigint): (e: GuestEntry) => GuestExit {
  return (e) => {
    e.writeGhcbMsr(msr);
    return { kind: 'vmgexit' };
  };
}

/** Guest code that halts. */
export const halt = (): GuestExit => ({ kind: 'hlt' });

/** One MSR-protocol VMGEXIT; returns the outcome and the MSR value the guest reads back. */
export function msrCall(vcpu: Vcpu, msr: bigint): { outcome: RunOutcome; response: bigint } {
  const outcome = vcpu.run(vmgexitWith(msr));
  return { outcome, response: vcpu.ghcbMsr };
}

/** Makes the vCPU's GHCB page shared (PSC) and registers it (MSR protocol 0x012 → 0x013). */
export function setupGhcb(vcpu: Vcpu, gpa: number = ghcbGpaOf(vcpu.vcpuId)): void {
  const gfn = BigInt(gpa >> 12);
  const psc = msrCall(vcpu, pscRequest(gfn, SNP_PAGE_STATE_SHARED));
  assert.equal(psc.response, GHCB_MSR.PSC_RESP, psc.outcome.detail);
  const reg = msrCall(vcpu, regGpaRequest(gfn));
  assert.equal(reg.response, (gfn << 12n) | GHCB_MSR.REG_GPA_RESP, reg.outcome.detail);
}

/** The GHCB page at `gpa` as the guest sees it (a shared page, so plain memory). */
export function ghcbAt(vm: Vm, gpa: number): GhcbView {
  const spa = vm.memory.translate(gpa);
  assert.ok(spa >= 0);
  return new GhcbView(vm.platform.memory, spa);
}

export interface NaeRequest {
  readonly exitCode: bigint;
  readonly info1: bigint;
  readonly info2: bigint;
  readonly rax?: bigint;
  readonly rbx?: bigint;
  readonly rcx?: bigint;
  readonly cpl?: bigint;
  readonly scratch?: bigint;
  readonly usage?: number;
  /** Fields to leave not marked valid even though written. */
  readonly invalid?: readonly GhcbField[];
}

/** Writes a full-protocol request into the GHCB as the guest does (fields + valid bits). */
export function writeGhcb(vm: Vm, gpa: number, req: NaeRequest): void {
  const g = ghcbAt(vm, gpa);
  g.setValidBitmap(0n, 0n);
  g.setUsage(req.usage ?? 0);
  g.setProtocolVersion(2);
  g.set('sw_exit_code', req.exitCode);
  g.set('sw_exit_info_1', req.info1);
  g.set('sw_exit_info_2', req.info2);
  if (req.rax !== undefined) g.set('rax', req.rax);
  if (req.rbx !== undefined) g.set('rbx', req.rbx);
  if (req.rcx !== undefined) g.set('rcx', req.rcx);
  if (req.cpl !== undefined) g.set('cpl', req.cpl);
  if (req.scratch !== undefined) g.set('sw_scratch', req.scratch);
  for (const f of req.invalid ?? []) g.setValid(f, false);
}

/** Guest code issuing a full-protocol VMGEXIT through the GHCB at `gpa`. */
export function naeCode(vm: Vm, gpa: number, req: NaeRequest): (e: GuestEntry) => GuestExit {
  return (e) => {
    writeGhcb(vm, gpa, req);
    e.writeGhcbMsr(BigInt(gpa));
    return { kind: 'vmgexit' };
  };
}

/** One NAE event from `vcpu`; returns the outcome and SW_EXITINFO1/2 as the guest reads them. */
export function nae(vcpu: Vcpu, req: NaeRequest, gpa: number = ghcbGpaOf(vcpu.vcpuId)) {
  const outcome = vcpu.run(naeCode(vcpu.vm, gpa, req));
  const g = ghcbAt(vcpu.vm, gpa);
  return { outcome, info1: g.get('sw_exit_info_1'), info2: g.get('sw_exit_info_2'), ghcb: g };
}

/** SW_EXITINFO1 of an AP Creation request: APIC ID in [63:32], request in [31:0]. */
export const apInfo1 = (apicId: number, request: number, vmpl = 0): bigint =>
  (BigInt(apicId) << 32n) | (BigInt(vmpl) << 16n) | BigInt(request);

/**
 * The guest prepares a VMSA page at `gpa` the way Linux does: PVALIDATE it (faulting it in through
 * KVM's #NPF handling first), write an INIT-state VMSA, RMPADJUST RDX 0x10001 to set the VMSA bit.
 */
export function prepareVmsa(vcpu: Vcpu, gpa: number = VMSA_GPA, sevFeatures?: bigint): void {
  const { vm } = vcpu;
  const features = sevFeatures ?? vm.vmsaFeatures;
  for (let attempt = 0; attempt < 3; attempt++) {
    let done = false;
    const outcome = vcpu.run((e) => {
      const pv = vm.platform.pvalidate(e.guest, gpa, 0, 1);
      if (pv.kind === 'npf') return { kind: 'npf', gpa, exitInfo1: pv.exitInfo1 };
      assert.equal(pv.kind, 'eax');
      assert.equal(vm.platform.guestAccess(e.guest, gpa, AccessKind.WRITE, 1), 0);
      const image = buildVmsa({
        eip: 0x9f000,
        vcpuSignature: 0,
        sevFeatures: features,
        vmmType: VmmType.QEMU,
      });
      vm.platform.memory.write(e.guest.translate(gpa), image);
      const adj = vm.platform.rmpadjust(e.guest, gpa, 0, RMPADJUST_VMSA);
      assert.deepEqual(adj, { kind: 'eax', eax: 0 });
      done = true;
      return { kind: 'intr' };
    });
    assert.notEqual(outcome.kind, 'errno', outcome.detail);
    if (done) return;
  }
  assert.fail('could not prepare the VMSA page');
}

/** INIT + SIPI to an AP that was never started, then one KVM_RUN to accept them (-EAGAIN). */
export function startAp(vm: Vm, apicId: number): void {
  vm.sendInit(apicId);
  vm.sendSipi(apicId, 0x9f);
  const r = vm.vcpu(apicId).run(halt);
  assert.equal(r.kind, 'errno', r.detail);
}

/** SNPActive | DebugSwap, the usual vmsa_features with debug_swap on. */
export const SNP_DEBUG_SWAP = SVM_SEV_FEAT.SNP_ACTIVE | SVM_SEV_FEAT.DEBUG_SWAP;

/**
 * Brings AP 1 to "running Linux on a guest-supplied VMSA, now HALTED" the way each policy allows:
 * INIT-SIPI from OVMF (launch VMSA), then CREATE from the BSP; policies that reject CREATE on a
 * created vCPU (strict) need a DESTROY first, as OVMF does.
 */
export function bringUpAp(sys: TestSystem, apicId = 1): void {
  const { vm } = sys;
  const bsp = vm.vcpu(0);
  const ap = vm.vcpu(apicId);
  startAp(vm, apicId);
  assert.equal(ap.run(halt).kind, 'exit');
  setupGhcb(bsp);
  prepareVmsa(bsp);
  if (vm.policy.rejectCreateWhenOnline !== 'never') {
    const d = nae(bsp, {
      exitCode: 0x8000_0013n,
      info1: apInfo1(apicId, 2),
      info2: 0n,
      rax: vm.vmsaFeatures,
    });
    assert.deepEqual([d.info1, d.info2], [0n, 0n]);
    ap.run(halt);
  }
  const c = nae(bsp, {
    exitCode: 0x8000_0013n,
    info1: apInfo1(apicId, 1),
    info2: BigInt(VMSA_GPA),
    rax: vm.vmsaFeatures,
  });
  assert.deepEqual([c.info1, c.info2], [0n, 0n], c.outcome.detail);
  const run = ap.run(halt);
  assert.equal(run.kind, 'exit', run.detail);
  assert.equal(ap.snpHasGuestVmsa || !vm.policy.applyViaVcpuReset, true);
}
