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
  GENMASK_51_0,
  GHCB_FIELD,
  GHCB_HV_FT,
  GHCB_MSR,
  GHCB_MSR_GPA_VALUE_POS,
  GHCB_MSR_HV_FT_POS,
  GHCB_MSR_INFO_MASK,
  GHCB_PROTOCOL_VERSION_OFFSET,
  GHCB_USAGE_OFFSET,
  GHCB_VALID_BITMAP_OFFSET,
  type GhcbField,
  type GuestEntry,
  type GuestExit,
  ghcbBitmapIndex,
  type HostPolicy,
  INITIAL_VMSA_GPA,
  INVALID_PAGE,
  type Interleaving,
  KVM_MP_STATE,
  Kvm,
  kvmSetMpState,
  PAGE_SIZE,
  PRESET_NAMES,
  parsePolicy,
  presetPolicy,
  pscRequest,
  type RunOutcome,
  regGpaRequest,
  SNP_PAGE_STATE_PRIVATE,
  SNP_PAGE_STATE_SHARED,
  type Steps,
  SVM_VMGEXIT,
  snpLaunchFinish,
  snpLaunchStart,
  termRequest,
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
