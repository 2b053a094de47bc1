/**
 * Named host policy presets, one per KVM version of the SNP AP Creation support
 * (ap-creation.md §B.2–B.6) plus the reviewer's proposal. Presets are frozen data.
 */
import { GHCB_HV_FT_SUPPORTED_KVM } from '../ghcb/msr-protocol.js';
import type { HostPolicy } from './knobs.js';

export interface PolicyPreset {
  readonly name: string;
  /** One line for `snpsim policies`. */
  readonly summary: string;
  /** What the preset models and the choices made where the sources are silent. */
  readonly notes: string;
  readonly policy: HostPolicy;
}

const LINUX_6_11: HostPolicy = Object.freeze({
  errorEncoding: 'malformed',
  stateChangeOnError: true,
  raxRequired: 'notDestroy',
  sevFeaturesCheck: 'intInj',
  gpaCheckAtExit: true,
  reject2MAligned: true,
  vmplField: 'reject',
  allowSelfTarget: true,
  rejectCreateWhenOnline: 'never',
  kickUnderLock: true,
  kickWait: false,
  uninitializedTargetOnCreate: 'pending',
  applyViaVcpuReset: true,
  offlineState: 'HALTED',
  vmsaSentinel: 'invalidPage',
  initVmcbVmsa: 'launchUnlessGuest',
  clearPvUnhaltedOnCreate: true,
  clearPvUnhaltedOnRunnable: false,
  applyLookupFailure: 'stayOffline',
  invalidateGpaOnLookupFailure: false,
  refuseVmrunWithInvalidVmsa: false,
  failEntryReason: 'u32',
  ghcbValidationFailure: 'ghcbError',
  unregisteredGhcb: 'killVm',
  blockDefaultCase: 'warn',
  setMpStateOnOffline: 'allow',
  advertisedHvFeatures: GHCB_HV_FT_SUPPORTED_KVM,
  memoryFaultExit: 'convert',
} satisfies HostPolicy);

const RFC_V4: HostPolicy = Object.freeze({
  ...LINUX_6_11,
  errorEncoding: 'silent',
  raxRequired: 'all',
  gpaCheckAtExit: false,
  reject2MAligned: false,
  kickUnderLock: false,
  applyViaVcpuReset: false,
  offlineState: 'UNINITIALIZED',
  vmsaSentinel: 'zero',
  initVmcbVmsa: 'current',
  clearPvUnhaltedOnCreate: false,
  ghcbValidationFailure: 'killVm',
  blockDefaultCase: 'eintr',
} satisfies HostPolicy);

const V5_V9: HostPolicy = Object.freeze({
  ...RFC_V4,
  errorEncoding: 'gp',
  gpaCheckAtExit: true,
  offlineState: 'STOPPED',
  vmsaSentinel: 'invalidPage',
  clearPvUnhaltedOnCreate: true,
  applyLookupFailure: 'internalError',
} satisfies HostPolicy);

const RFC_V9: HostPolicy = Object.freeze({
  ...LINUX_6_11,
  errorEncoding: 'gp',
  raxRequired: 'all',
  uninitializedTargetOnCreate: 'runnable',
} satisfies HostPolicy);

const LINUX_6_15: HostPolicy = Object.freeze({
  ...LINUX_6_11,
  stateChangeOnError: false,
  sevFeaturesCheck: 'exact',
  invalidateGpaOnLookupFailure: true,
  refuseVmrunWithInvalidVmsa: true,
  failEntryReason: 'u64',
} satisfies HostPolicy);

const LINUX_6_16: HostPolicy = Object.freeze({
  ...LINUX_6_15,
  kickWait: true,
  clearPvUnhaltedOnRunnable: true,
} satisfies HostPolicy);

const STRICT: HostPolicy = Object.freeze({
  ...LINUX_6_16,
  rejectCreateWhenOnline: 'always',
  kickUnderLock: false,
  offlineState: 'OFFLINE',
  initVmcbVmsa: 'current',
  applyLookupFailure: 'internalError',
  unregisteredGhcb: 'ghcbError',
  setMpStateOnOffline: 'reject',
} satisfies HostPolicy);

const preset = (name: string, summary: string, notes: string, policy: HostPolicy): PolicyPreset =>
  Object.freeze({ name, summary, notes, policy });

/** Every preset by name, in chronological order (strict last). */
export const PRESETS: Readonly<Record<string, PolicyPreset>> = Object.freeze({
  'rfc-v4': preset(
    'rfc-v4',
    'RFC v4 40/40 as reviewed (2021-07): silent errors, injection-mode bits only, UNINITIALIZED offline state',
    'Read from the patch itself (20210707183616.5620-41-brijesh.singh@amd.com): RAX required for every request, ' +
      'no GPA checks in the handler (only PAGE_ALIGNED at apply time), sentinel 0, kick after unlock, update ' +
      'applied directly (no vCPU reset), kvm_vcpu_has_events checks the request. Chosen where the sources are ' +
      'silent: GHCB registration enforced as in the rest of the same series (0c76b1d08280).',
    RFC_V4,
  ),
  'v5-v9': preset(
    'v5-v9',
    'v5 44/45 (2021-08) through RFC v8: #GP errors, INVALID_PAGE, STOPPED offline state',
    'Follows v5 as posted (20210820155918.7518-45-brijesh.singh@amd.com): page_address_valid at VMGEXIT, bad APIC ' +
      'ID is an error, errors inject #GP (1, 0x8000030D), STOPPED, pfn lookup failure → KVM_EXIT_INTERNAL_ERROR, ' +
      'kick after unlock, validation failures still kill the VM (pre-5.16 base). Later members of the range differ: ' +
      'v6+ return validation errors to the guest (ghcbValidationFailure ghcbError), RFC v8 rejects 2M-aligned GPAs; ' +
      'RFC v9 is the separate preset rfc-v9.',
    V5_V9,
  ),
  'rfc-v9': preset(
    'rfc-v9',
    'RFC v9 42/51 (2023-06): applied via vCPU reset, HALTED offline, UNINITIALIZED targets made RUNNABLE on kick',
    'RFC v9 (20230612042559.375660-43-michael.roth@amd.com): the 6.11 structure with #GP errors, RAX required for ' +
      'every request (changed in v10) and an UNINITIALIZED target set RUNNABLE when kicked (also on error kicks). ' +
      'Kick position under the lock is assumed as in 6.11.',
    RFC_V9,
  ),
  'linux-6.11': preset(
    'linux-6.11',
    'Linux 6.11 (e366f92ea99e + fix-ups): (2,5) errors, target reset even on errors, HALTED offline state',
    'Read at torvalds/linux 88caf544c930 (ap-creation.md B.3). A DESTROYed vCPU is HALTED with INVALID_PAGE, so any ' +
      'wake-up that reaches it runs VMRUN(~0) → KVM_EXIT_FAIL_ENTRY 0xffffffff; a vCPU still on its launch VMSA ' +
      'keeps it (init_vmcb).',
    LINUX_6_11,
  ),
  'linux-6.15': preset(
    'linux-6.15',
    'Linux 6.15 SEV_FEATURES cleanup: target untouched on errors, RAX == vmsa_features, VMRUN refused on invalid VMSA',
    'Sean Christopherson "KVM: SVM: Attempt to cleanup SEV_FEATURES" v2 (20250227012541.3234589-*): d26638bfcdfc, ' +
      '745ff82199b1, 72d12715edcd, 46332437e1c5, e268beee4a25, 4e96f010afb2. Still racy: DESTROY followed by the ' +
      "guest's RMPADJUST can meet a target about to VMRUN.",
    LINUX_6_15,
  ),
  'linux-6.16': preset(
    'linux-6.16',
    'Linux 6.16: KVM_REQUEST_WAIT fixes the DESTROY vs VMRUN race (309d28576f0a)',
    "linux-6.15 plus 309d28576f0a (the issuer waits until the target left guest mode) and, assumed, Jim Mattson's " +
      'pv_unhalted clearing on every transition to RUNNABLE.',
    LINUX_6_16,
  ),
  strict: preset(
    'strict',
    "The reviewer's proposal (2021-07) on top of linux-6.16: reject CREATE on a created vCPU, OFFLINE state",
    "Sean Christopherson's design (YPdjvca28JaWPZRb, YPh7F2talucL7FQ9) applied to linux-6.16: every check before " +
      'any state change, SEV_FEATURES compared exactly, a distinct OFFLINE state that only CREATE (or ' +
      'CREATE_ON_INIT + INIT) leaves, KVM_SET_MP_STATE on it refused, lookup failures reported to userspace, ' +
      "kick after unlock, and the 2026 unregistered-GHCB fix. rejectCreateWhenOnline = 'always', the reviewer's " +
      'literal point 6, chosen so experiments show what the proposal costs: it rejects every CREATE not preceded by ' +
      "DESTROY, which breaks Linux's first AP bring-up and its CPU-online path (Linux sends CREATE to parked APs and " +
      "never DESTROYs first); 'guestVmsaOnly' keeps first bring-up working, 'never' keeps both.",
    STRICT,
  ),
});

/** Preset names in display order. */
export const PRESET_NAMES: readonly string[] = Object.freeze(Object.keys(PRESETS));

/** The preset called `name`, or undefined. */
export function getPreset(name: string): PolicyPreset | undefined {
  return Object.hasOwn(PRESETS, name) ? PRESETS[name] : undefined;
}
