/**
 * The host's mapping of a vCPU's GHCB (`kvm_vcpu_map` of the GHCB GPA, `sev_es_sync_from_ghcb`,
 * `sev_es_sync_to_ghcb` + unmap before the next VMRUN) and the GHCB return codes
 * (`svm_vmgexit_success` / `_bad_input` / `_no_action`) [LX] arch/x86/kvm/svm/sev.c, svm.h.
 */
import { AccessKind } from '../../psp-firmware/index.js';
import { AP_RESET_HOLD } from '../kvm-constants.js';
import type { Vcpu } from '../vcpu.js';
import { GHCB_HV_RESP, GhcbView } from './layout.js';

/**
 * kvm_vcpu_map: the GHCB page through the VM's memslots. Undefined when no slot maps the GPA, or
 * when the host could not write the page (model choice: a page the RMP assigns to a guest fails
 * the host write check; real KVM would map the shared backing page instead and the guest would see
 * no response either — both are "resume the guest without doing anything").
 */
export function mapGhcb(vcpu: Vcpu, gpa: bigint): GhcbView | undefined {
  const spa = vcpu.vm.memory.translateBig(gpa);
  if (spa < 0) return undefined;
  const { platform } = vcpu.vm;
  if (platform.hostAccess(spa, AccessKind.WRITE) !== 0) return undefined;
  vcpu.ghcbMap = { gpa, spa };
  return new GhcbView(platform.memory, spa);
}

/** The mapped GHCB, if any. */
export function currentGhcb(vcpu: Vcpu): GhcbView | undefined {
  return vcpu.ghcbMap === undefined ? undefined : new GhcbView(vcpu.vm.platform.memory, vcpu.ghcbMap.spa);
}

/**
 * sev_es_sync_from_ghcb: zero the registers, load RAX/RBX/RCX/RDX/RSI, CPL and the exit fields
 * (each only if valid, except the exit code/info fields), snapshot the valid bitmap, then clear the
 * GHCB's valid bitmap.
 */
export function syncFromGhcb(vcpu: Vcpu, ghcb: GhcbView): void {
  vcpu.validBitmap = ghcb.validBitmap();
  const regs = vcpu.regs;
  regs.rax = ghcb.isValid('rax') ? ghcb.get('rax') : 0n;
  regs.rbx = ghcb.isValid('rbx') ? ghcb.get('rbx') : 0n;
  regs.rcx = ghcb.isValid('rcx') ? ghcb.get('rcx') : 0n;
  regs.rdx = ghcb.isValid('rdx') ? ghcb.get('rdx') : 0n;
  regs.rsi = ghcb.isValid('rsi') ? ghcb.get('rsi') : 0n;
  vcpu.cpl = ghcb.isValid('cpl') ? Number(ghcb.get('cpl')) : 0;
  vcpu.exitCode = ghcb.get('sw_exit_code');
  vcpu.exitInfo1 = ghcb.get('sw_exit_info_1');
  vcpu.exitInfo2 = ghcb.get('sw_exit_info_2');
  vcpu.swScratch = ghcb.isValid('sw_scratch') ? ghcb.get('sw_scratch') : 0n;
  ghcb.setValidBitmap(0n, 0n);
}

/**
 * sev_es_unmap_ghcb, run before every VMRUN: clear the AP Reset Hold type; if a GHCB is mapped, copy
 * RAX/RBX/RCX/RDX back (marking them valid) and unmap it.
 */
export function unmapGhcb(vcpu: Vcpu): void {
  vcpu.apResetHoldType = AP_RESET_HOLD.NONE;
  const ghcb = currentGhcb(vcpu);
  if (ghcb === undefined) return;
  ghcb.set('rax', vcpu.regs.rax);
  ghcb.set('rbx', vcpu.regs.rbx);
  ghcb.set('rcx', vcpu.regs.rcx);
  ghcb.set('rdx', vcpu.regs.rdx);
  vcpu.ghcbMap = undefined;
}

/** svm_vmgexit_set_return_code: SW_EXITINFO1/2 written into the mapped GHCB. */
export function vmgexitSetResult(vcpu: Vcpu, info1: bigint, info2: bigint): void {
  const ghcb = currentGhcb(vcpu);
  if (ghcb === undefined) return;
  ghcb.set('sw_exit_info_1', info1);
  ghcb.set('sw_exit_info_2', info2);
}

/** svm_vmgexit_success(data) = (0, data). */
export function vmgexitSuccess(vcpu: Vcpu, data: bigint): void {
  vmgexitSetResult(vcpu, GHCB_HV_RESP.NO_ACTION, data);
}

/** svm_vmgexit_bad_input(code) = (2, code). */
export function vmgexitBadInput(vcpu: Vcpu, code: bigint): void {
  vmgexitSetResult(vcpu, GHCB_HV_RESP.MALFORMED_INPUT, code);
}
