/**
 * The KVM module on one platform: host page allocation, SEV ASIDs, VM creation
 * (KVM_CREATE_VM(KVM_X86_SNP_VM) + KVM_SEV_INIT2) and destruction [LX] arch/x86/kvm/svm/sev.c
 * __sev_guest_init, sev_asid_new, sev_asid_free, __sev_recycle_asids, sev_flush_asids.
 */
import { type Firmware, type Platform, SevStatus, sevStatusName } from '../psp-firmware/index.js';
import { destroyVm, type VmDestroyResult } from './destroy.js';
import { ERRNO, errnoName, GHCB_VERSION_MAX, KVM_MAX_VCPUS, PAGE_SIZE } from './kvm-constants.js';
import { PhysAllocator } from './memory.js';
import type { HostPolicy } from './policy/knobs.js';
import { SVM_SEV_FEAT } from './svm-constants.js';
import { Vm } from './vm.js';

export interface KvmOptions {
  readonly platform: Platform;
  /** The PSP firmware (needed for the SNP launch ioctls). */
  readonly firmware?: Firmware;
  /** System memory KVM allocates from (default: 1 MiB up to the end of platform memory). */
  readonly hostMemory?: { readonly start: number; readonly end: number };
  /**
   * C-bit position (CPUID Fn8000_001F_EBX[5:0], `sev_enc_bit`), reported by SEV_INFO and
   * unreserved in guest GPAs. 51 on Milan and Genoa (default).
   */
  readonly cbitPosition?: number;
  /** `sev_supported_vmsa_features`: 6.11 allows only DebugSwap (bit 5) in KVM_SEV_INIT2. */
  readonly supportedVmsaFeatures?: bigint;
  /**
   * min_sev_asid (CPUID Fn8000_001F_EDX, a BIOS setting): SEV-ES/SNP guests use ASIDs
   * 1 .. min_sev_asid - 1. Default 100 (model choice: room for 99 SNP VMs).
   */
  readonly minSevAsid?: number;
}

export interface VmConfig {
  readonly policy: HostPolicy;
  /** KVM_X86_SNP_VM (default) or an SEV-ES VM (KVM_X86_SEV_ES_VM, no RMP protection). */
  readonly vmType?: 'snp' | 'sev-es';
  /** KVM_SEV_INIT2.vmsa_features; SNPActive is forced on for SNP VMs. Default 0 (so 0x1). */
  readonly vmsaFeatures?: bigint;
  /** KVM_SEV_INIT2.ghcb_version (0 = default 2). */
  readonly ghcbVersion?: number;
  /** Guest MAXPHYADDR used by page_address_valid (default 48). */
  readonly guestMaxPhyAddr?: number;
  /** Guest memory slots; each is backed by newly allocated system memory. */
  readonly memory?: readonly { readonly gpa: number; readonly bytes: number }[];
  /** vCPUs to create (ids 0 .. n-1). Default 0. */
  readonly vcpus?: number;
}

export type VmCreateResult =
  | { readonly ok: true; readonly vm: Vm }
  | { readonly ok: false; readonly errno: number; readonly detail: string };

export class Kvm {
  readonly platform: Platform;
  readonly firmware: Firmware | undefined;
  readonly alloc: PhysAllocator;
  readonly cbitPosition: number;
  readonly supportedVmsaFeatures: bigint;
  readonly minSevAsid: number;
  /** `sev_asid_bitmap`: ASIDs bound to a VM or awaiting reclaim. */
  readonly #asids = new Set<number>();
  /** `sev_reclaim_asid_map`: ASIDs of destroyed VMs, reusable after WBINVD + SNP_DF_FLUSH. */
  readonly #reclaim = new Set<number>();

  constructor(options: KvmOptions) {
    this.platform = options.platform;
    this.firmware = options.firmware;
    const end = options.hostMemory?.end ?? options.platform.memory.memoryBytes;
    const start = options.hostMemory?.start ?? Math.min(0x10_0000, end - PAGE_SIZE);
    this.alloc = new PhysAllocator(start, end);
    this.cbitPosition = options.cbitPosition ?? 51;
    this.supportedVmsaFeatures = options.supportedVmsaFeatures ?? SVM_SEV_FEAT.DEBUG_SWAP;
    this.minSevAsid = options.minSevAsid ?? 100;
  }

  /**
   * KVM_CREATE_VM + KVM_SEV_INIT2 + memslots + vCPUs. Bad input is a negative errno with a reason
   * naming the layer; a VM that could not be completed gives back the pages it took and its ASID.
   */
  createVm(config: VmConfig): VmCreateResult {
    const fail = (errno: number, detail: string): VmCreateResult => ({
      ok: false,
      errno: -errno,
      detail: `kvm: ${detail}`,
    });
    const isSnp = (config.vmType ?? 'snp') === 'snp';
    const requested = config.vmsaFeatures ?? 0n;
    if (requested < 0n || (requested & ~this.supportedVmsaFeatures) !== 0n) {
      return fail(
        ERRNO.EINVAL,
        `KVM_SEV_INIT2: vmsa_features 0x${requested.toString(16)} has bits outside the supported 0x${this.supportedVmsaFeatures.toString(16)}`,
      );
    }
    const ghcbVersion = BigInt(config.ghcbVersion ?? 0);
    if (ghcbVersion < 0n || ghcbVersion > GHCB_VERSION_MAX) {
      return fail(ERRNO.EINVAL, `KVM_SEV_INIT2: ghcb_version ${ghcbVersion} exceeds GHCB_VERSION_MAX 2`);
    }
    const maxPhy = config.guestMaxPhyAddr ?? 48;
    if (!Number.isInteger(maxPhy) || maxPhy < 32 || maxPhy > 52) {
      return fail(ERRNO.EINVAL, `guestMaxPhyAddr must be an integer in 32..52, got ${maxPhy}`);
    }
    const count = config.vcpus ?? 0;
    if (!Number.isInteger(count) || count < 0 || count > KVM_MAX_VCPUS) {
      return fail(ERRNO.EINVAL, `vcpus must be an integer in 0..1024, got ${count}`);
    }
    const asid = this.#asidNew();
    if (typeof asid === 'string') return fail(ERRNO.EBUSY, asid);
    const vm = new Vm(this, {
      policy: config.policy,
      isSnp,
      asid,
      vmsaFeatures: isSnp ? requested | SVM_SEV_FEAT.SNP_ACTIVE : requested,
      ghcbVersion: ghcbVersion === 0n ? 2n : ghcbVersion,
      guestMaxPhyAddr: maxPhy,
    });
    for (const slot of config.memory ?? []) {
      const added = vm.addMemory(slot.gpa, slot.bytes);
      if (added.ret !== 0) {
        this.#release(vm);
        return fail(-added.ret, added.reason ?? 'memslot rejected');
      }
    }
    for (let id = 0; id < count; id++) {
      const v = vm.createVcpu(id);
      if (typeof v === 'number') {
        this.#release(vm);
        return fail(-v, `KVM_CREATE_VCPU ${id} failed (-${errnoName(v)})`);
      }
    }
    this.#asids.add(asid);
    return { ok: true, vm };
  }

  /**
   * The pages of a VM that was never completed (nothing in it ran or was made private): its memslots'
   * backing and its launch VMSA pages go back to the allocator. Its ASID was never entered in
   * sev_asid_bitmap, so it is free again.
   */
  #release(vm: Vm): void {
    for (const slot of vm.memory.slots)
      for (let spa = slot.spa; spa < slot.spa + slot.bytes; spa += PAGE_SIZE) this.alloc.free(spa);
    for (const vcpu of vm.vcpus) if (vcpu.launchVmsaPa !== undefined) this.alloc.free(vcpu.launchVmsaPa);
  }

  /**
   * The VM's last reference goes (QEMU exits): kvm_destroy_vm, see destroy.ts. The ASID moves to the
   * reclaim map unless SNP_DECOMMISSION failed (then it is leaked, as Linux leaks it).
   */
  destroyVm(vm: Vm): VmDestroyResult {
    if (vm.kvm !== this) return { ok: false, layer: 'kvm', detail: 'kvm: the VM belongs to another Kvm' };
    return destroyVm(vm, (asid) => this.#reclaim.add(asid));
  }

  /** SEV-ES/SNP ASIDs (1 .. min_sev_asid - 1): bound to a VM, and awaiting reclaim. */
  get sevAsids(): { readonly bound: readonly number[]; readonly reclaim: readonly number[] } {
    const sorted = (s: Iterable<number>) => [...s].sort((a, b) => a - b);
    return {
      bound: sorted([...this.#asids].filter((a) => !this.#reclaim.has(a))),
      reclaim: sorted(this.#reclaim),
    };
  }

  /**
   * sev_asid_new for an SEV-ES/SNP VM: the lowest ASID in 1 .. min_sev_asid - 1 not in
   * sev_asid_bitmap; when there is none, __sev_recycle_asids once and retry. Returns the ASID or why
   * there is none (-EBUSY).
   */
  #asidNew(): number | string {
    const free = () => {
      for (let asid = 1; asid < this.minSevAsid; asid++) if (!this.#asids.has(asid)) return asid;
      return undefined;
    };
    const asid = free();
    if (asid !== undefined) return asid;
    const recycled = this.#recycleAsids();
    if (recycled !== undefined) return `no free SEV-ES/SNP ASID (${recycled})`;
    return free() ?? 'no free SEV-ES/SNP ASID';
  }

  /**
   * __sev_recycle_asids → sev_flush_asids: with ASIDs to reclaim, WBINVD on all CPUs ("SNP firmware
   * requires use of WBINVD for ASID recycling") then SNP_DF_FLUSH; on success the reclaimed ASIDs
   * are free again. Returns why it could not recycle, or undefined.
   */
  #recycleAsids(): string | undefined {
    if (this.#reclaim.size === 0) return 'none awaits reclaim';
    this.platform.wbinvd();
    const fw = this.firmware;
    if (fw !== undefined) {
      const status = fw.dfFlush();
      if (status !== SevStatus.SUCCESS) {
        return `firmware: SNP_DF_FLUSH failed with ${sevStatusName(status)}: ${fw.lastError?.reason ?? ''}`;
      }
    }
    for (const asid of this.#reclaim) this.#asids.delete(asid);
    this.#reclaim.clear();
    return undefined;
  }
}
