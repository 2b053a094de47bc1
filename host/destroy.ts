/**
 * VM teardown: the last reference to an SEV VM goes (QEMU closes the VM, vCPU and guest_memfd fds)
 * and KVM releases what it holds, in the order of [LX] virt/kvm/kvm_main.c kvm_destroy_vm →
 * arch/x86/kvm/x86.c kvm_arch_destroy_vm:
 *  1. `sev_vm_destroy` (svm_vm_destroy): for SNP, `snp_decommission_context` (SNP_DECOMMISSION
 *     unbinds the ASID; the context page is reclaimed and freed). If it fails, Linux WARNs and leaks
 *     the ASID; otherwise `sev_asid_free` puts the ASID in `sev_reclaim_asid_map`: it is reused only
 *     after WBINVD on all CPUs and SNP_DF_FLUSH (`Kvm`'s ASID recycling, `sev_flush_asids`).
 *  2. `kvm_destroy_vcpus` → `sev_free_vcpu`: KVM's launch VMSA page is made shared
 *     (`kvm_rmp_make_shared`, 4K) and freed; a failure leaks it.
 *  3. guest_memfd's pages are freed → `sev_gmem_invalidate`: every assigned page goes back to the
 *     hypervisor (`rmp_make_shared`; a 2 MB RMP entry PSMASHed first unless the whole 2 MB goes at
 *     once); a failure leaks the page (WARN). Model choice: this runs after 1–2 (the guest_memfd inode
 *     is evicted after its release dropped the VM reference); the firmware does not look at guest
 *     pages in DECOMMISSION, and SNP_ACTIVATE of a reused ASID needs them gone (RMP counter 0).
 * The memory returns to KVM's page allocator. Nothing throws; a VM destroyed twice is refused.
 */
import { RMP_PG_SIZE_2M, sevStatusName } from '../psp-firmware/index.js';
import { PAGE_SIZE, PMD_SIZE } from './kvm-constants.js';
import { snpDecommissionContext } from './launch.js';
import type { RunOutcome } from './outcome.js';
import { rmpMakeShared } from './rmp-ops.js';
import type { Vm } from './vm.js';

/** What `Kvm.destroyVm` did. */
export type VmDestroyResult =
  | {
      readonly ok: true;
      readonly asid: number;
      /** `reclaim`: reusable after WBINVD + SNP_DF_FLUSH; `leaked`: SNP_DECOMMISSION failed. */
      readonly asidState: 'reclaim' | 'leaked';
      /** SNP_DECOMMISSION's status (0 when there was no SNP context). */
      readonly decommissionStatus: number;
      /** Private pages made hypervisor-owned again: guest memory, launch VMSAs, the context page. */
      readonly pagesReclaimed: number;
      /** SPAs that could not be made hypervisor-owned (leaked, as Linux leaks them). */
      readonly pagesLeaked: readonly number[];
      readonly layer: 'kvm' | 'firmware';
      readonly detail: string;
    }
  | { readonly ok: false; readonly layer: 'kvm'; readonly detail: string };

const hex = (n: number) => `0x${n.toString(16)}`;

/** sev_gmem_invalidate over one memslot's backing [spa, spa + bytes). */
function gmemInvalidate(vm: Vm, start: number, bytes: number, leaked: number[]): number {
  const end = start + bytes;
  let released = 0;
  for (let spa = start; spa < end; ) {
    const entry = vm.platform.firmwareRead(spa / PAGE_SIZE);
    const head = vm.platform.firmwareRead((spa - (spa % PMD_SIZE)) / PAGE_SIZE);
    const in2M = head?.assigned === true && head.pageSize === 1;
    if (!in2M && entry?.assigned !== true) {
      spa += PAGE_SIZE;
      continue;
    }
    const whole2M = in2M && spa % PMD_SIZE === 0 && spa + PMD_SIZE <= end;
    if (whole2M) {
      const status = rmpMakeShared(vm.platform, spa, RMP_PG_SIZE_2M);
      if (status === 0) released += PMD_SIZE / PAGE_SIZE;
      else for (let p = spa; p < spa + PMD_SIZE; p += PAGE_SIZE) leaked.push(p);
      spa += PMD_SIZE;
      continue;
    }
    if (in2M) vm.platform.psmash(spa - (spa % PMD_SIZE)); // WARN_ONCE on failure; the update below decides
    if (rmpMakeShared(vm.platform, spa) === 0) released++;
    else leaked.push(spa);
    spa += PAGE_SIZE;
  }
  return released;
}

/**
 * kvm_destroy_vm for `vm` (see the module comment). `freeAsid(asid)` is `sev_asid_free`, called only
 * when the ASID is not leaked.
 */
export function destroyVm(vm: Vm, freeAsid: (asid: number) => void): VmDestroyResult {
  if (vm.destroyed)
    return { ok: false, layer: 'kvm', detail: `kvm: VM (ASID ${vm.asid}) is already destroyed` };
  vm.destroyed = true;
  const gone: RunOutcome = {
    kind: 'vm-stopped',
    events: [],
    layer: 'kvm',
    detail: `the VM (ASID ${vm.asid}) was destroyed`,
    vmStopped: true,
  };
  vm.stop(gone);
  // No vCPU thread is left: whatever a VMRUN marked in use was released at its #VMEXIT.
  for (const vcpu of vm.vcpus) vm.platform.vmexit(vcpu.index);

  const leaked: number[] = [];
  let released = 0;
  // 1. sev_vm_destroy
  const fw = vm.kvm.firmware;
  const gctx = vm.gctxPa;
  const decommissionStatus = fw === undefined ? 0 : snpDecommissionContext(vm, fw);
  const asidLeaked = decommissionStatus !== 0;
  if (gctx !== undefined && !asidLeaked) {
    // snp_free_firmware_page: reclaimed (and freed) unless SNP_PAGE_RECLAIM or the RMPUPDATE failed.
    if (vm.platform.firmwareRead(gctx / PAGE_SIZE)?.assigned === false) released++;
    else leaked.push(gctx);
  }
  if (!asidLeaked) freeAsid(vm.asid);
  // 2. sev_free_vcpu
  for (const vcpu of vm.vcpus) {
    const pa = vcpu.launchVmsaPa;
    if (pa === undefined) continue;
    if (vm.isSnp) {
      if (rmpMakeShared(vm.platform, pa) !== 0) {
        leaked.push(pa);
        continue;
      }
      released++;
    }
    vm.kvm.alloc.free(pa);
    vcpu.launchVmsaPa = undefined;
  }
  // 3. guest_memfd: sev_gmem_invalidate, then the pages go back to the host.
  for (const slot of vm.memory.slots) {
    if (vm.isSnp) released += gmemInvalidate(vm, slot.spa, slot.bytes, leaked);
    const lost = new Set(leaked);
    for (let spa = slot.spa; spa < slot.spa + slot.bytes; spa += PAGE_SIZE)
      if (!lost.has(spa)) vm.kvm.alloc.free(spa);
  }
  const asidState = asidLeaked ? 'leaked' : 'reclaim';
  const parts = [
    asidLeaked
      ? `firmware: SNP_DECOMMISSION failed with ${sevStatusName(decommissionStatus)}: ASID ${vm.asid} leaked`
      : `kvm: ASID ${vm.asid} awaits WBINVD + SNP_DF_FLUSH before reuse`,
    `${released} private page(s) made shared`,
  ];
  if (leaked.length > 0)
    parts.push(`${leaked.length} page(s) leaked (${leaked.slice(0, 4).map(hex).join(', ')})`);
  return {
    ok: true,
    asid: vm.asid,
    asidState,
    decommissionStatus,
    pagesReclaimed: released,
    pagesLeaked: leaked,
    layer: asidLeaked ? 'firmware' : 'kvm',
    detail: parts.join('; '),
  };
}
