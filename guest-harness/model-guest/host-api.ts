/**
 * Everything the model's guest uses from the layers below, in one place, through their public
 * entries: the host (KVM model) and the platform (PSP firmware, RMP, CPU). The model's guest is the
 * guest kernel and module of a real SNP guest expressed against these models; it changes host state
 * only through what a guest can do (memory, RMP instructions, the GHCB MSR, VMGEXIT) and what a VMM
 * does (KVM ioctls).
 */
export {
  type Activity,
  enumerate,
  GHCB_FIELD,
  GHCB_MSR,
  GHCB_PROTOCOL_VERSION_OFFSET,
  GHCB_USAGE_OFFSET,
  GHCB_VALID_BITMAP_OFFSET,
  type GuestEntry,
  type GuestExit,
  getPreset,
  type HostPolicy,
  INITIAL_VMSA_GPA,
  INVALID_PAGE,
  type Interleaving,
  KVM_MP_STATE,
  Kvm,
  kvmSetMpState,
  mpStateName,
  PAGE_SIZE,
  PMD_SIZE,
  PRESET_NAMES,
  parsePolicy,
  presetPolicy,
  type RunOutcome,
  runOrder,
  type Steps,
  SVM_EXIT,
  SVM_VMGEXIT,
  snpLaunchFinish,
  snpLaunchStart,
  type Vcpu,
  type Vm,
} from '../../host/index.js';
export {
  AccessKind,
  createSnpSystem,
  type GuestContext,
  loadProfile,
  type PlatformProfile,
  type SnpSystem,
} from '../../psp-firmware/index.js';
