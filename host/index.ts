// Public entry of the host layer (the KVM-like hypervisor model).
export {
  type ApCreationInput,
  type ApCreationResult,
  pageAddressValid,
  snpApCreation,
  updateProtectedGuestState,
} from './ap-creation.js';
export type { VmDestroyResult } from './destroy.js';
export * from './ghcb/layout.js';
export * from './ghcb/msr-protocol.js';
export { type ValidationError, type ValidationInput, validateVmgexit } from './ghcb/validate.js';
export { Kvm, type KvmOptions, type VmConfig, type VmCreateResult } from './kvm.js';
export * from './kvm-constants.js';
export { APIC_SPIV_APIC_ENABLED, APIC_SVR_RESET, Lapic } from './lapic.js';
export {
  type LaunchFinishParams,
  type LaunchResult,
  type LaunchStartParams,
  type LaunchUpdateParams,
  snpLaunchFinish,
  snpLaunchStart,
  snpLaunchUpdate,
} from './launch.js';
export { GuestMemory, type MemSlot, PhysAllocator } from './memory.js';
export { hasEvents, hasVmsa, kvmSetMpState, offlineMpState } from './mp-state.js';
export type {
  GuestCode,
  GuestEntry,
  GuestExit,
  MemoryConversion,
  MemoryFault,
  RunEvent,
  RunOutcome,
  UpdateApplied,
  VmgexitResult,
} from './outcome.js';
export { diffPolicies, formatDifference, type KnobDifference } from './policy/diff.js';
export * from './policy/knobs.js';
export { getPreset, type PolicyPreset, PRESET_NAMES, PRESETS } from './policy/presets.js';
export {
  KnobsSchema,
  knobToJson,
  PolicyFileSchema,
  type PolicyParseResult,
  type PolicyProblem,
  parsePolicy,
  parsePolicyText,
  policyToJson,
  presetPolicy,
  type ResolvedPolicy,
} from './policy/schema.js';
export {
  VMGEXIT_PSC_ERROR_GENERIC,
  VMGEXIT_PSC_ERROR_INVALID_ENTRY,
  VMGEXIT_PSC_ERROR_INVALID_HDR,
  VMGEXIT_PSC_MAX_COUNT,
  VMGEXIT_PSC_OP_PRIVATE,
  VMGEXIT_PSC_OP_SHARED,
} from './psc.js';
export type { RunOptions } from './run.js';
export {
  type Activity,
  type ActivityResult,
  atomic,
  canonicalJson,
  type DistinctOutcome,
  type Enumeration,
  enumerate,
  type Interleaving,
  runChoices,
  runOrder,
  type ScheduleRun,
  sequence,
  type TraceStep,
} from './scheduler.js';
export { KvmMutex, lock, point, runSteps, type Steps, type StepYield, unlock, waitUntil } from './steps.js';
export * from './svm-constants.js';
export { type GhcbRegs, Vcpu, type VcpuMode } from './vcpu.js';
export { type LaunchState, type VcpuSnapshot, Vm } from './vm.js';
