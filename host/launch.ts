/**
 * The SNP launch ioctls (KVM_SEV_SNP_LAUNCH_START / _UPDATE / _FINISH) through the firmware's typed
 * commands, in KVM's order ([LX] arch/x86/kvm/svm/sev.c snp_launch_start, snp_context_create,
 * snp_launch_update + sev_gmem_post_populate, snp_launch_update_vmsa, snp_launch_finish).
 * Each returns KVM's ioctl value and `argp->error` (the firmware status), never throws on bad input.
 */
import {
  BSP_EIP,
  buildVmsa,
  type Firmware,
  SevStatus,
  sevStatusName,
  VmmType,
} from '../psp-firmware/index.js';
import {
  ERRNO,
  errnoName,
  KVM_SEV_SNP_FINISH_DATA_SIZE,
  KVM_SEV_SNP_ID_AUTH_SIZE,
  KVM_SEV_SNP_ID_BLOCK_SIZE,
  KVM_SEV_SNP_PAGE_TYPE,
  PAGE_SIZE,
  SNP_PAGE_TYPE_VMSA,
  SNP_POLICY_MASK_RSVD_MBO,
  SNP_POLICY_MASK_VALID,
} from './kvm-constants.js';
import { rmpMakePrivate, rmpMakeShared, rmpMarkFirmware } from './rmp-ops.js';
import type { Vm } from './vm.js';

/** An ioctl's result: `ret` (0 or -errno) and `fwError` (argp->error, the firmware status, 0 if none). */
export interface LaunchResult {
  readonly ret: number;
  readonly fwError: number;
  /** One line naming the layer (kvm or firmware) and the reason. */
  readonly detail: string;
  /** KVM_SEV_SNP_LAUNCH_UPDATE: pages processed (params.gfn_start / len advance by this much). */
  readonly pages?: number;
}

export interface LaunchStartParams {
  /** Guest policy (bit 17 must be set; only SNP_POLICY_MASK_VALID bits allowed). */
  readonly policy: bigint;
  readonly gosvw?: Uint8Array;
  /** Must be 0. */
  readonly flags?: number;
}

export interface LaunchUpdateParams {
  readonly gfnStart: number;
  /** Source bytes (params.uaddr / len): a positive multiple of 4 KiB. Updated in place for a rejected CPUID page. */
  readonly data: Uint8Array;
  /** KVM_SEV_SNP_PAGE_TYPE_NORMAL / ZERO / UNMEASURED / SECRETS / CPUID. */
  readonly type: number;
  readonly flags?: number;
}

export interface LaunchFinishParams {
  /** 96-byte ID block (id_block_en when given) and its 4096-byte ID auth. */
  readonly idBlock?: Uint8Array;
  readonly idAuth?: Uint8Array;
  readonly authKeyEn?: boolean;
  readonly vcekDisabled?: boolean;
  /** 32 bytes of HOST_DATA. */
  readonly hostData?: Uint8Array;
  readonly flags?: number;
  /**
   * Launch VMSA registers the VMM set (sev_es_sync_vmsa copies them): the APs' reset EIP from OVMF's
   * SEV-ES reset block (the BSP starts at 0xFFFFFFF0), the vCPU signature QEMU puts in RDX, the VMM.
   */
  readonly apEip?: number;
  readonly vcpuSignature?: number;
  readonly vmmType?: VmmType;
}

const ok = (detail: string, pages?: number): LaunchResult => ({
  ret: 0,
  fwError: 0,
  detail,
  ...(pages === undefined ? {} : { pages }),
});
const kvmError = (errno: number, detail: string): LaunchResult => ({
  ret: -errno,
  fwError: 0,
  detail: `kvm: ${detail} (-${errnoName(errno)})`,
});

function fwFailure(fw: Firmware, status: number, what: string): LaunchResult {
  return {
    ret: -ERRNO.EIO,
    fwError: status,
    detail: `firmware: ${what} failed with ${sevStatusName(status)} (${fw.lastError?.reason ?? ''}) (-EIO)`,
  };
}

/** snp_alloc_firmware_page: a host page made Firmware-owned (rmp_mark_pages_firmware). */
function allocFirmwarePage(vm: Vm): number | undefined {
  const page = vm.kvm.alloc.allocPage();
  if (page === undefined) return undefined;
  return rmpMarkFirmware(vm.platform, page) === 0 ? page : undefined;
}

/**
 * snp_page_reclaim: SNP_PAGE_RECLAIM then RMPUPDATE to hypervisor-owned. Returns false when the page
 * stays unusable (a failure leaks it, as Linux does).
 */
function reclaimPage(vm: Vm, fw: Firmware, spa: number): boolean {
  return fw.pageReclaim(spa) === SevStatus.SUCCESS && rmpMakeShared(vm.platform, spa) === 0;
}

/** snp_free_firmware_page: reclaimed, then back to the host allocator (leaked if the reclaim failed). */
function freeFirmwarePage(vm: Vm, fw: Firmware, spa: number): void {
  if (reclaimPage(vm, fw, spa)) vm.kvm.alloc.free(spa);
}

/**
 * snp_decommission_context: SNP_DECOMMISSION (which unbinds the ASID), then the context page back to
 * the host (snp_free_firmware_page). A failed DECOMMISSION keeps the context (Linux WARNs and returns
 * the error). Returns the firmware status; SUCCESS when there is no context.
 */
export function snpDecommissionContext(vm: Vm, fw: Firmware): number {
  const gctx = vm.gctxPa;
  if (gctx === undefined) return SevStatus.SUCCESS;
  const status = fw.decommission(gctx);
  if (status !== SevStatus.SUCCESS) return status;
  freeFirmwarePage(vm, fw, gctx);
  vm.gctxPa = undefined;
  return SevStatus.SUCCESS;
}

/** KVM_SEV_SNP_LAUNCH_START: policy checks, SNP_GCTX_CREATE, SNP_LAUNCH_START, SNP_ACTIVATE. */
export function snpLaunchStart(vm: Vm, params: LaunchStartParams): LaunchResult {
  const fw = vm.kvm.firmware;
  if (!vm.isSnp || fw === undefined) return kvmError(ERRNO.ENOTTY, 'not an SNP VM (or no SNP firmware)');
  if (vm.gctxPa !== undefined) return kvmError(ERRNO.EINVAL, 'an SNP context already exists for this VM');
  if ((params.flags ?? 0) !== 0) return kvmError(ERRNO.EINVAL, `flags must be 0, got ${params.flags}`);
  if ((params.policy & ~SNP_POLICY_MASK_VALID) !== 0n) {
    return kvmError(
      ERRNO.EINVAL,
      `policy 0x${params.policy.toString(16)} has bits outside SNP_POLICY_MASK_VALID`,
    );
  }
  if ((params.policy & SNP_POLICY_MASK_RSVD_MBO) === 0n) {
    return kvmError(ERRNO.EINVAL, `policy 0x${params.policy.toString(16)} lacks bit 17 (must be one)`);
  }
  const gctx = allocFirmwarePage(vm);
  if (gctx === undefined) return kvmError(ERRNO.ENOTTY, 'snp_context_create: no firmware page');
  const created = fw.gctxCreate(gctx);
  if (created !== SevStatus.SUCCESS) {
    freeFirmwarePage(vm, fw, gctx);
    return { ...fwFailure(fw, created, 'SNP_GCTX_CREATE'), ret: -ERRNO.ENOTTY };
  }
  vm.gctxPa = gctx;
  const started = fw.launchStart({
    gctxPaddr: gctx,
    policy: params.policy,
    ...(params.gosvw === undefined ? {} : { gosvw: params.gosvw }),
  });
  if (started !== SevStatus.SUCCESS) {
    const r = fwFailure(fw, started, 'SNP_LAUNCH_START');
    snpDecommissionContext(vm, fw);
    return r;
  }
  const activated = fw.activate(gctx, vm.asid);
  if (activated !== SevStatus.SUCCESS) {
    const r = fwFailure(fw, activated, 'SNP_ACTIVATE');
    snpDecommissionContext(vm, fw);
    return r;
  }
  vm.launchState = 'launching';
  return ok(`launch started: context 0x${gctx.toString(16)}, ASID ${vm.asid}`);
}

const UPDATE_TYPES: ReadonlySet<number> = new Set(Object.values(KVM_SEV_SNP_PAGE_TYPE));

/**
 * sev_gmem_post_populate for page `i` of a KVM_SEV_SNP_LAUNCH_UPDATE: the page must be private and
 * still hypervisor-owned; it is filled from the source (zeroed for ZERO), made Pre-Guest
 * (rmp_make_private, immutable) and handed to SNP_LAUNCH_UPDATE. A firmware failure reclaims the page
 * (a rejected CPUID page is copied back to the source). Returns the failure, or undefined.
 */
function launchUpdatePage(
  vm: Vm,
  fw: Firmware,
  gctx: number,
  params: LaunchUpdateParams,
  i: number,
): LaunchResult | undefined {
  const { data, type } = params;
  const gfn = params.gfnStart + i;
  const gpa = gfn * PAGE_SIZE;
  const spa = vm.memory.translate(gpa);
  if (spa < 0 || !vm.isPrivate(gpa)) {
    return kvmError(ERRNO.EINVAL, `GPA 0x${gpa.toString(16)} is not private guest memory`);
  }
  if (vm.platform.firmwareRead(spa / PAGE_SIZE)?.assigned === true) {
    return kvmError(ERRNO.EEXIST, `GFN 0x${gfn.toString(16)} RMP entry is not in the initial shared state`);
  }
  if (type === KVM_SEV_SNP_PAGE_TYPE.ZERO) vm.platform.memory.fill(spa, PAGE_SIZE, 0);
  else vm.platform.memory.write(spa, data.subarray(i * PAGE_SIZE, (i + 1) * PAGE_SIZE));
  const made = rmpMakePrivate(vm.platform, spa, gpa, vm.asid, true);
  if (made !== 0) {
    return kvmError(ERRNO.EIO, `rmp_make_private of 0x${spa.toString(16)}: RMPUPDATE status ${made}`);
  }
  const status = fw.launchUpdate({ gctxPaddr: gctx, address: spa, pageType: type, pageSize: 0 });
  if (status === SevStatus.SUCCESS) return undefined;
  const failure = fwFailure(fw, status, `SNP_LAUNCH_UPDATE of GPA 0x${gpa.toString(16)}`);
  reclaimPage(vm, fw, spa);
  if (type === KVM_SEV_SNP_PAGE_TYPE.CPUID && status === SevStatus.INVALID_PARAM) {
    data.set(vm.platform.memory.read(spa, PAGE_SIZE), i * PAGE_SIZE);
  }
  return failure;
}

/**
 * KVM_SEV_SNP_LAUNCH_UPDATE: KVM's checks of the parameters, then every page in turn
 * (`launchUpdatePage`). As kvm_gmem_populate does, a failure after some pages returns 0 with the
 * count; a failure of the first page is the error itself.
 */
export function snpLaunchUpdate(vm: Vm, params: LaunchUpdateParams): LaunchResult {
  const fw = vm.kvm.firmware;
  const gctx = vm.gctxPa;
  if (!vm.isSnp || fw === undefined || gctx === undefined) {
    return kvmError(ERRNO.EINVAL, 'no SNP launch in progress (KVM_SEV_SNP_LAUNCH_START first)');
  }
  const { data, type, gfnStart } = params;
  if (data.length === 0 || data.length % PAGE_SIZE !== 0) {
    return kvmError(ERRNO.EINVAL, `len must be a positive multiple of 4096, got ${data.length}`);
  }
  if ((params.flags ?? 0) !== 0) return kvmError(ERRNO.EINVAL, `flags must be 0, got ${params.flags}`);
  if (!UPDATE_TYPES.has(type)) return kvmError(ERRNO.EINVAL, `page type ${type} is not one KVM accepts`);
  if (!Number.isSafeInteger(gfnStart) || gfnStart < 0)
    return kvmError(ERRNO.EINVAL, `bad gfn_start ${gfnStart}`);
  const npages = data.length / PAGE_SIZE;
  for (let i = 0; i < npages; i++) {
    const failure = launchUpdatePage(vm, fw, gctx, params, i);
    if (failure === undefined) continue;
    return i > 0 ? ok(`${i} pages done; page ${i} failed: ${failure.detail}`, i) : failure;
  }
  return ok(`${npages} pages measured`, npages);
}

/**
 * KVM_SEV_SNP_LAUNCH_FINISH: every vCPU's launch VMSA is synced (the VMM's reset registers with
 * SEV_FEATURES = vmsa_features), made Pre-Guest at INITIAL_VMSA_GPA and measured with
 * SNP_LAUNCH_UPDATE(VMSA); then SNP_LAUNCH_FINISH with the ID block, ID auth and HOST_DATA.
 */
export function snpLaunchFinish(vm: Vm, params: LaunchFinishParams = {}): LaunchResult {
  const fw = vm.kvm.firmware;
  if (!vm.isSnp || fw === undefined) return kvmError(ERRNO.ENOTTY, 'not an SNP VM (or no SNP firmware)');
  if (vm.gctxPa === undefined)
    return kvmError(ERRNO.EINVAL, 'no SNP context (KVM_SEV_SNP_LAUNCH_START first)');
  if ((params.flags ?? 0) !== 0) return kvmError(ERRNO.EINVAL, `flags must be 0, got ${params.flags}`);
  if (params.idBlock !== undefined && params.idBlock.length !== KVM_SEV_SNP_ID_BLOCK_SIZE) {
    return kvmError(
      ERRNO.EINVAL,
      `the ID block is ${KVM_SEV_SNP_ID_BLOCK_SIZE} bytes, got ${params.idBlock.length}`,
    );
  }
  if (params.idBlock !== undefined && params.idAuth?.length !== KVM_SEV_SNP_ID_AUTH_SIZE) {
    return kvmError(ERRNO.EINVAL, `an ID block needs a ${KVM_SEV_SNP_ID_AUTH_SIZE}-byte ID auth`);
  }
  if (params.hostData !== undefined && params.hostData.length !== KVM_SEV_SNP_FINISH_DATA_SIZE) {
    return kvmError(
      ERRNO.EINVAL,
      `host_data is ${KVM_SEV_SNP_FINISH_DATA_SIZE} bytes, got ${params.hostData.length}`,
    );
  }
  const vmmType = params.vmmType ?? VmmType.QEMU;
  for (const vcpu of vm.vcpus) {
    const pa = vcpu.launchVmsaPa;
    if (pa === undefined) continue;
    const image = buildVmsa({
      eip: vcpu.isBsp ? BSP_EIP : (params.apEip ?? BSP_EIP),
      vcpuSignature: params.vcpuSignature ?? 0,
      sevFeatures: vm.vmsaFeatures,
      vmmType,
    });
    vm.platform.memory.write(pa, image);
    const made = rmpMakePrivate(vm.platform, pa, vm.launchVmsaGpa, vm.asid, true);
    if (made !== 0)
      return kvmError(ERRNO.EIO, `rmp_make_private of VMSA 0x${pa.toString(16)}: RMPUPDATE status ${made}`);
    const status = fw.launchUpdate({
      gctxPaddr: vm.gctxPa,
      address: pa,
      pageType: SNP_PAGE_TYPE_VMSA,
      pageSize: 0,
    });
    if (status !== SevStatus.SUCCESS) {
      const r = fwFailure(fw, status, `SNP_LAUNCH_UPDATE(VMSA) of vCPU ${vcpu.vcpuId}`);
      reclaimPage(vm, fw, pa);
      return r;
    }
    vcpu.guestStateProtected = true;
  }
  // psp_copy_user_blob: the ID block and ID auth in host pages, freed after the command.
  let idBlockPaddr = 0;
  let idAuthPaddr = 0;
  if (params.idBlock !== undefined && params.idAuth !== undefined) {
    const a = vm.kvm.alloc.allocPage();
    const b = vm.kvm.alloc.allocPage();
    if (a === undefined || b === undefined) {
      if (a !== undefined) vm.kvm.alloc.free(a);
      return kvmError(ERRNO.ENOMEM, 'no host page for the ID block');
    }
    vm.platform.memory.write(a, params.idBlock);
    vm.platform.memory.write(b, params.idAuth);
    idBlockPaddr = a;
    idAuthPaddr = b;
  }
  const status = fw.launchFinish({
    gctxPaddr: vm.gctxPa,
    idBlockPaddr,
    idAuthPaddr,
    idBlockEn: params.idBlock !== undefined,
    authKeyEn: params.authKeyEn === true,
    vcekDisabled: params.vcekDisabled === true,
    ...(params.hostData === undefined ? {} : { hostData: params.hostData }),
  });
  if (idBlockPaddr !== 0) {
    vm.kvm.alloc.free(idBlockPaddr);
    vm.kvm.alloc.free(idAuthPaddr);
  }
  if (status !== SevStatus.SUCCESS) return fwFailure(fw, status, 'SNP_LAUNCH_FINISH');
  vm.launchState = 'running';
  return ok(`launch finished: ${vm.vcpus.length} vCPU VMSAs measured`);
}
