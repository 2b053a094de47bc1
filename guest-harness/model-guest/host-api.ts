/**
 * Everything the model's guest uses from the layers below, in one place: the host (KVM model) and
 * the platform (PSP firmware, RMP, CPU). The model's guest is the guest kernel and module of a real
 * SNP guest expressed against these models; it never changes host state except through what a
 * guest can do (memory, RMP instructions, the GHCB MSR, VMGEXIT) and what a VMM does (KVM ioctls).
 */

export {
  GHCB_FIELD,
  GHCB_PROTOCOL_VERSION_OFFSET,
  GHCB_USAGE_OFFSET,
  GHCB_VALID_BITMAP_OFFSET,
} from '../../host/ghcb/layout.js';
export { GHCB_MSR } from '../../host/ghcb/msr-protocol.js';
export { Kvm } from '../../host/kvm.js';
export {
  INITIAL_VMSA_GPA,
  INVALID_PAGE,
  KVM_MP_STATE,
  mpStateName,
  PAGE_SIZE,
  PMD_SIZE,
} from '../../host/kvm-constants.js';
export { snpLaunchFinish, snpLaunchStart } from '../../host/launch.js';
export { kvmSetMpState } from '../../host/mp-state.js';
export type { GuestEntry, GuestExit, RunOutcome } from '../../host/outcome.js';
export type { HostPolicy } from '../../host/policy/knobs.js';
export { getPreset, PRESET_NAMES } from '../../host/policy/presets.js';
export { parsePolicy, presetPolicy } from '../../host/policy/schema.js';
export { SVM_EXIT, SVM_VMGEXIT } from '../../host/svm-constants.js';
export type { Vcpu } from '../../host/vcpu.js';
export type { Vm } from '../../host/vm.js';
export {
  AccessKind,
  createSnpSystem,
  type GuestContext,
  loadProfile,
  type PlatformProfile,
  type SnpSystem,
} from '../../psp-firmware/index.js';
