/**
 * Host policy knobs: one named knob per behaviour that differs between KVM versions of the SNP
 * AP Creation support (ap-creation.md §B). A policy is a plain record of knob values; the table
 * below documents each knob (which version does what, with the commit or Message-ID).
 */

/** How the handler reports a rejected request to the guest [ap-creation.md A.3]. */
export type ErrorEncoding = 'silent' | 'gp' | 'malformed';
/** Which requests need GHCB RAX marked valid in `sev_es_validate_vmgexit`. */
export type RaxRequired = 'all' | 'notDestroy';
/** How RAX (the SEV_FEATURES the guest claims) is checked for CREATE / CREATE_ON_INIT. */
export type SevFeaturesCheck = 'intInj' | 'snpActive' | 'exact';
/** The mp_state of a vCPU that was taken offline (DESTROY, failed update). */
export type OfflineState = 'UNINITIALIZED' | 'STOPPED' | 'HALTED' | 'OFFLINE';
/** What counts as an already created target (reviewer's sanity check). */
export type RejectCreateWhenOnline = 'never' | 'guestVmsaOnly' | 'always';
export type VmplField = 'reject' | 'honour';
export type UninitializedTargetOnCreate = 'pending' | 'runnable';
export type VmsaSentinel = 'zero' | 'invalidPage';
export type InitVmcbVmsa = 'current' | 'launchUnlessGuest';
export type ApplyLookupFailure = 'stayOffline' | 'internalError';
export type FailEntryReason = 'u32' | 'u64';
export type GhcbFailure = 'killVm' | 'ghcbError';
export type BlockDefaultCase = 'eintr' | 'warn';
export type SetMpStateOnOffline = 'allow' | 'reject';
export type MemoryFaultExit = 'convert' | 'stop';

/** A host policy: every knob has a value (presets and user policies resolve to this). */
export interface HostPolicy {
  readonly errorEncoding: ErrorEncoding;
  readonly stateChangeOnError: boolean;
  readonly raxRequired: RaxRequired;
  readonly sevFeaturesCheck: SevFeaturesCheck;
  readonly gpaCheckAtExit: boolean;
  readonly reject2MAligned: boolean;
  readonly vmplField: VmplField;
  readonly allowSelfTarget: boolean;
  readonly rejectCreateWhenOnline: RejectCreateWhenOnline;
  readonly kickUnderLock: boolean;
  readonly kickWait: boolean;
  readonly uninitializedTargetOnCreate: UninitializedTargetOnCreate;
  readonly applyViaVcpuReset: boolean;
  readonly offlineState: OfflineState;
  readonly vmsaSentinel: VmsaSentinel;
  readonly initVmcbVmsa: InitVmcbVmsa;
  readonly clearPvUnhaltedOnCreate: boolean;
  readonly clearPvUnhaltedOnRunnable: boolean;
  readonly applyLookupFailure: ApplyLookupFailure;
  readonly invalidateGpaOnLookupFailure: boolean;
  readonly refuseVmrunWithInvalidVmsa: boolean;
  readonly failEntryReason: FailEntryReason;
  readonly ghcbValidationFailure: GhcbFailure;
  readonly unregisteredGhcb: GhcbFailure;
  readonly blockDefaultCase: BlockDefaultCase;
  readonly setMpStateOnOffline: SetMpStateOnOffline;
  readonly advertisedHvFeatures: bigint;
  readonly memoryFaultExit: MemoryFaultExit;
}
export type KnobName = keyof HostPolicy;

/** Documentation of one knob: its values and which version does what. */
export interface KnobSpec {
  readonly name: KnobName;
  /** 'boolean', 'bigint' (a 64-bit value; hex string or integer in JSON) or the allowed strings. */
  readonly type: 'boolean' | 'bigint' | readonly string[];
  /** One line: what the knob decides. */
  readonly summary: string;
  /** Which version does what, with commits / Message-IDs from the reference. */
  readonly versions: string;
}

const spec = (
  name: KnobName,
  type: KnobSpec['type'],
  summary: string,
  versions: string,
): readonly [KnobName, KnobSpec] => [name, Object.freeze({ name, type, summary, versions })];

/** Every knob, in the order tables and diffs show them. */
export const KNOBS: Readonly<Record<KnobName, KnobSpec>> = Object.freeze(
  Object.fromEntries([
    spec(
      'errorEncoding',
      ['silent', 'gp', 'malformed'],
      'GHCB result of a rejected AP Creation request (bad APIC ID, GPA, request, SEV_FEATURES ...).',
      "RFC v4 (20210707183616.5620-41-brijesh.singh@amd.com): handler is void, issuer sees (0,0) = 'silent'. " +
        "v5 (20210820155918.7518-45-brijesh.singh@amd.com) … RFC v9: #GP event (1, 0x8000030D) = 'gp'. " +
        "v10 (20231016132819.1002933-38-michael.roth@amd.com) … 6.11 … mainline: (2, GHCB_ERR_INVALID_INPUT 5) = 'malformed'.",
    ),
    spec(
      'stateChangeOnError',
      'boolean',
      'Target state is reset (pending VMSA emptied, kicked) before the checks run, so an error still takes it offline.',
      'true: RFC v4, v5, 6.11 (kick := true, then lock, gpa := none before the checks; CREATE_ON_INIT errors in the ' +
        'GPA checks suppress the kick but leave the empty update armed). false: 6.15 d26638bfcdfc "KVM: SVM: Don\'t ' +
        'change target vCPU state on AP Creation VMGEXIT error" (Cc stable) and the reviewer (YPdjvca28JaWPZRb point 1).',
    ),
    spec(
      'raxRequired',
      ['all', 'notDestroy'],
      'sev_es_validate_vmgexit: which AP Creation requests need RAX marked valid, else (2, GHCB_ERR_MISSING_INPUT).',
      "'all': RFC v4 … RFC v8 (and v9 per the reference's evolution table). 'notDestroy': v10 … 6.11 … mainline " +
        '(lower_32_bits(info1) != SVM_VMGEXIT_AP_DESTROY, so an unknown request 3+ without RAX gets 4, not 5).',
    ),
    spec(
      'sevFeaturesCheck',
      ['intInj', 'snpActive', 'exact'],
      'How RAX (the SEV_FEATURES the guest claims) is checked for CREATE / CREATE_ON_INIT.',
      "'intInj': RFC v4 … 6.11, (RAX ^ vmsa_features) & SVM_SEV_FEAT_INT_INJ_MODES (0x18) must be 0. " +
        "'exact': 6.15 745ff82199b1 \"KVM: SVM: Require AP's requested SEV_FEATURES to match KVM's view\", RAX == " +
        "vmsa_features. 'snpActive': the reviewer's minimum (YPh7F2talucL7FQ9 point 7): the intInj check plus " +
        'RAX & SNP_ACTIVE.',
    ),
    spec(
      'gpaCheckAtExit',
      'boolean',
      'The handler checks page_address_valid(SW_EXITINFO2) (4 KiB aligned, no reserved GPA bits) for CREATE/ON_INIT.',
      'false: RFC v4 (only PAGE_ALIGNED at apply time, silently). true: v5 (after YPdjvca28JaWPZRb point 3) … mainline.',
    ),
    spec(
      'reject2MAligned',
      'boolean',
      'The handler rejects a VMSA GPA that is 2 MiB aligned (SNP erratum workaround).',
      'false: RFC v4, v5. true: present by RFC v8 (2023-02-20; Graf/Roth 20230404224802.23fbe7kxa3h7tjps@amd.com) … 6.11 … mainline.',
    ),
    spec(
      'vmplField',
      ['reject', 'honour'],
      'SW_EXITINFO1[19:16] (target VMPL): part of the request (so non-zero = unknown request) or a separate field.',
      "'reject': every upstream version (the whole low dword is the request). 'honour': Tom Lendacky's SVSM RFC " +
        '"KVM: SEV: Allow for VMPL level specification in AP create" (2024-08-27, SVM_VMGEXIT_AP_VMPL_MASK = ' +
        'GENMASK(19,16)); snpsim decodes and records the VMPL but models one VMSA per vCPU (no per-VMPL VMSA sets).',
    ),
    spec(
      'allowSelfTarget',
      'boolean',
      'A vCPU may name its own APIC ID.',
      'true: every upstream version (Michael Roth, 20230404224802.23fbe7kxa3h7tjps@amd.com: "not normal, not ' +
        'prohibited"). false: the 2026 planes series\' rule that a vCPU may not replace its own VMSA (proposal).',
    ),
    spec(
      'rejectCreateWhenOnline',
      ['never', 'guestVmsaOnly', 'always'],
      'Reject CREATE/CREATE_ON_INIT on a target that is already created (has a VMSA or a pending create).',
      "'never': RFC v4 … mainline (Tom Lendacky: CREATE replaces INIT-SIPI, so CREATE without DESTROY is allowed). " +
        "'always': the reviewer's literal proposal (YPh7F2talucL7FQ9 point 6), which rejects every CREATE not preceded " +
        "by DESTROY and so breaks Linux's first AP bring-up and CPU online (Linux never DESTROYs first). " +
        "'guestVmsaOnly': reject only targets running a guest-supplied VMSA: Linux's first bring-up (launch VMSAs) " +
        'works, re-onlining an offlined CPU does not; OVMF (DESTROY first) works with all three.',
    ),
    spec(
      'kickUnderLock',
      'boolean',
      'The request is made and the target kicked while the target mutex is still held.',
      'false: RFC v4, v5 (unlock, then kick) and the reviewer (lock, modify, unlock, kick). true: 6.11 (kick before ' +
        'unlock) and 6.15+ (guard(mutex), 46332437e1c5).',
    ),
    spec(
      'kickWait',
      'boolean',
      'KVM_REQUEST_WAIT: the issuer does not complete until the target has left guest mode.',
      'false: RFC v4 … 6.15. true: 6.16 309d28576f0a "KVM: SVM: Fix SNP AP destroy race with VMRUN" ' +
        '(KVM_ARCH_REQ_FLAGS(34, KVM_REQUEST_WAIT)).',
    ),
    spec(
      'uninitializedTargetOnCreate',
      ['pending', 'runnable'],
      'What a kick does to a target in KVM_MP_STATE_UNINITIALIZED (never started).',
      "'pending': RFC v4, v5, 6.11 … mainline: the request waits for INIT-SIPI (KVM_RUN spins with -EAGAIN). " +
        "'runnable': RFC v9 42/51 (20230612042559.375660-43-michael.roth@amd.com) set the target RUNNABLE when " +
        "kicking, also on error kicks; Jethro Beekman's 2026 hotplug patch proposes the same (not merged).",
    ),
    spec(
      'applyViaVcpuReset',
      'boolean',
      'The target applies the update through an INIT-style kvm_vcpu_reset (LAPIC software-disabled, NMIs/exceptions dropped).',
      'false: RFC v4, v5 call the update directly from vcpu_enter_guest (flag = snp_vmsa_update_on_init, set only ' +
        'by CREATE_ON_INIT). true: RFC v9 … 6.11 … mainline (flag = snp_ap_waiting_for_reset, set by every request; ' +
        'side effects reported in coconut-svsm/svsm#378).',
    ),
    spec(
      'offlineState',
      ['UNINITIALIZED', 'STOPPED', 'HALTED', 'OFFLINE'],
      'mp_state of a vCPU taken offline by DESTROY or a failed update.',
      "'UNINITIALIZED': RFC v4. 'STOPPED': v5 … RFC v8. 'HALTED': RFC v9 … 6.11 … mainline. 'OFFLINE': the reviewer's " +
        'distinct state (YPh7F2talucL7FQ9 point 4, never merged): left only by CREATE or CREATE_ON_INIT + INIT.',
    ),
    spec(
      'vmsaSentinel',
      ['zero', 'invalidPage'],
      "The 'no VMSA' value of snp_vmsa_gpa and the VMCB VMSA pointer.",
      "'zero': RFC v4 (so a CREATE with GPA 0 acts as DESTROY, and an offline vCPU runs VMRUN on PA 0). " +
        "'invalidPage': v5 … mainline (INVALID_PAGE = ~0ULL, YPdjvca28JaWPZRb point 2).",
    ),
    spec(
      'initVmcbVmsa',
      ['current', 'launchUnlessGuest'],
      "What init_vmcb (every INIT / vCPU reset) puts in the VMCB's VMSA pointer.",
      "'current': RFC v4, v5 (svm->vmsa_pa: the launch VMSA, a guest VMSA, or the sentinel after DESTROY). " +
        "'launchUnlessGuest': 6.11 … mainline sev_es_init_vmcb: the launch VMSA unless snp_has_guest_vmsa, so a " +
        'DESTROY of a vCPU still on its launch VMSA leaves that VMSA in place.',
    ),
    spec(
      'clearPvUnhaltedOnCreate',
      'boolean',
      'pv_unhalted is cleared when an update makes the target RUNNABLE (not only on DESTROY).',
      'false: RFC v4 (Sean asked for it, YPdjvca28JaWPZRb point 5). true: v5 … mainline.',
    ),
    spec(
      'clearPvUnhaltedOnRunnable',
      'boolean',
      'kvm_set_mp_state clears pv_unhalted on every transition to RUNNABLE (SIPI, KVM_SET_MP_STATE, BSP INIT ...).',
      'false: up to 6.15. true: Jim Mattson "KVM: x86: Clear pv_unhalted on all transitions to ' +
        'KVM_MP_STATE_RUNNABLE" (2025-01-13), present in mainline; the first release carrying it was not established, ' +
        'the linux-6.16 preset assumes it.',
    ),
    spec(
      'applyLookupFailure',
      ['stayOffline', 'internalError'],
      'The target cannot resolve the pending VMSA GPA to a page when it applies the update.',
      '\'stayOffline\': RFC v4 (silently), 6.11 … mainline (logged "snp: AP state update on init failed", the vCPU ' +
        "stays offline). 'internalError': v5 (KVM_RUN returns KVM_EXIT_INTERNAL_ERROR when applied from the request) " +
        'and the reviewer (YPdjvca28JaWPZRb point 3: never silent).',
    ),
    spec(
      'invalidateGpaOnLookupFailure',
      'boolean',
      'snp_vmsa_gpa is reset to the sentinel even when the lookup fails (internal state only).',
      'false: 6.11 (left stale). true: 6.15 4e96f010afb2.',
    ),
    spec(
      'refuseVmrunWithInvalidVmsa',
      'boolean',
      'pre_sev_run refuses to VMRUN with an invalid VMCB VMSA pointer (KVM_EXIT_FAIL_ENTRY without VMRUN).',
      'false: RFC v4 … 6.11 (VMRUN executes and fails with VMEXIT_INVALID). true: 6.15 72d12715edcd "KVM: SVM: ' +
        'Refuse to attempt VRMUN if an SEV-ES+ guest has an invalid VMSA".',
    ),
    spec(
      'failEntryReason',
      ['u32', 'u64'],
      'hardware_entry_failure_reason of KVM_EXIT_FAIL_ENTRY for SVM_EXIT_ERR (-1).',
      "'u32': up to 6.11 (u32 exit code, QEMU prints \"hardware error 0xffffffff\"). 'u64': from 6.15 " +
        '(SVM_EXIT_ERR as int -1 in the u64 field = 0xffffffffffffffff, 72d12715edcd).',
    ),
    spec(
      'ghcbValidationFailure',
      ['killVm', 'ghcbError'],
      'sev_es_validate_vmgexit failure: KVM_RUN -EINVAL with KVM_EXIT_INTERNAL_ERROR, or (2, code) to the guest.',
      "'killVm': before ad5b353240c8 (5.16-rc4), i.e. RFC v4 and v5. 'ghcbError': ad5b353240c8 \"KVM: SVM: Do not " +
        'terminate SEV-ES guests on GHCB validation failure" (v6 onwards, 6.11, mainline).',
    ),
    spec(
      'unregisteredGhcb',
      ['killVm', 'ghcbError'],
      'A full-protocol VMGEXIT whose GHCB GPA is not the registered one.',
      '\'killVm\': 0c76b1d08280 … 6.16 ("vmgexit: GHCB GPA [%#llx] is not registered.", KVM_RUN returns -EINVAL). ' +
        "'ghcbError': Sean Christopherson \"KVM: SEV: Don't terminate SNP VMs on #VMGEXIT without a registered GHCB\" " +
        '(20260501202250.2115252-19-seanjc@google.com, Cc stable, 2026): (2, GHCB_ERR_NOT_REGISTERED), guest resumed.',
    ),
    spec(
      'blockDefaultCase',
      ['eintr', 'warn'],
      "vcpu_block's switch on an mp_state other than HALTED/AP_RESET_HOLD/RUNNABLE/INIT_RECEIVED after a wake-up.",
      "'eintr': kernels of the RFC v4/v5 era return -EINTR to userspace (so a STOPPED vCPU with a pending request " +
        "never applies it). 'warn': later kernels WARN_ON_ONCE and keep looping in the kernel.",
    ),
    spec(
      'setMpStateOnOffline',
      ['allow', 'reject'],
      "KVM_SET_MP_STATE on a vCPU in the reviewer's OFFLINE state.",
      "'allow': KVM's normal rules (every upstream version; OFFLINE does not exist there). 'reject': -EINVAL, the " +
        "reviewer's alternative to ignoring it (ap-creation.md B.4 'choice').",
    ),
    spec(
      'advertisedHvFeatures',
      'bigint',
      'Hypervisor feature bitmap returned by HV_FT (MSR 0x080 → 0x081 and NAE 0x8000FFFD).',
      'KVM GHCB_HV_FT_SUPPORTED = GHCB_HV_FT_SNP | GHCB_HV_FT_SNP_AP_CREATION = 0x3 in RFC v4 (its svm.h hunk) … ' +
        'mainline. Linux refuses AP Creation without bit 1 and terminates without bit 0.',
    ),
    spec(
      'memoryFaultExit',
      ['convert', 'stop'],
      "What the VMM does with KVM_EXIT_MEMORY_FAULT (a guest access whose privacy differs from the GPA's memory attribute).",
      'KVM (guest_memfd, 6.8+: kvm_faultin_pfn → kvm_mmu_prepare_memory_fault_exit, KVM_RUN -EFAULT, flags ' +
        "KVM_MEMORY_EXIT_FLAG_PRIVATE for a private access) exits in every preset. 'convert': QEMU kvm_cpu_exec → " +
        'kvm_convert_memory (private ↔ shared, the guest_memfd RMPUPDATE) and KVM_RUN again, so the instruction is ' +
        "retried. 'stop': a VMM that does not convert (QEMU itself for a region without guest_memfd or an " +
        'unknown flag): the VM stops. The pre-guest_memfd series (RFC v4, v5 … v9) are modelled with the same exit.',
    ),
  ]),
) as Readonly<Record<KnobName, KnobSpec>>;

/** Knob names in display order. */
export const KNOB_NAMES: readonly KnobName[] = Object.freeze(Object.keys(KNOBS) as KnobName[]);

/** A knob value as text: booleans as true/false, bigints as hex. */
export function formatKnobValue(value: HostPolicy[KnobName]): string {
  return typeof value === 'bigint' ? `0x${value.toString(16)}` : String(value);
}
