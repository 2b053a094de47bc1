// Public entry of the platform layer (PSP firmware, RMP, CPU RMP instructions).

export * from './attestation/ecdsa.js';
export * from './attestation/guest-message.js';
export * from './attestation/id-block.js';
export * from './attestation/messages.js';
export * from './attestation/report.js';
export * from './attestation/vcek.js';
export * from './attestation/verify.js';
export * from './cpu/access.js';
export * from './cpu/codes.js';
export * from './cpu/fault.js';
export * from './cpu/guest-context.js';
export * from './cpu/guest-instructions.js';
export * from './cpu/host-instructions.js';
export * from './cpu/machine.js';
export * from './cpu/msrs.js';
export * from './cpu/vmrun.js';
export {
  type BufferLayout,
  decodeConfig,
  decodeGuestStatus,
  decodeInitEx,
  decodeLaunchFinish,
  decodeLaunchStart,
  decodeLaunchUpdate,
  decodePageSetState,
  decodePlatformStatus,
  decodeShutdownEx,
  decodeThreeAddr,
  encodeActivate,
  encodeAddr,
  encodeCommit,
  encodeConfig,
  encodeFeatureInfo,
  encodeGuestStatus,
  encodeInitEx,
  encodeLaunchFinish,
  encodeLaunchStart,
  encodeLaunchUpdate,
  encodePageSetState,
  encodePlatformStatus,
  encodeRangeList,
  encodeShutdownEx,
  encodeThreeAddr,
  encodeTwoAddr,
  FEATURE_INFO_SIZE,
  type InitExInput,
  type LaunchFinishInput,
  type LaunchStartInput,
  type LaunchUpdateInput,
  Layouts,
  RANGE_LIST_HEADER_SIZE,
  RANGE_LIST_MAX_COUNT,
  RANGE_SIZE,
  SNP_GUEST_STATUS_SIZE,
  SNP_PLATFORM_STATUS_SIZE,
  type SnpGuestStatus,
  type SnpPlatformStatus,
} from './firmware/buffers.js';
export {
  COMMANDS,
  COMMANDS_BY_ID,
  type CommandSpec,
  SnpCommandId,
  type SnpCommandName,
} from './firmware/commands.js';
export type { FirmwarePlatform } from './firmware/core.js';
export { Firmware, type FirmwareError, type FirmwareOptions } from './firmware/firmware.js';
export { type Activation, GuestContextPage } from './firmware/guest-context.js';
export { calcTscScale, SnpPolicy } from './firmware/launch.js';
export {
  CPUID_ENTRY_SIZE,
  CPUID_TABLE_HEADER,
  SecretsOffset,
  SNP_CPUID_COUNT_MAX,
} from './firmware/launch-pages.js';
export * from './firmware/profile.js';
export { type AsidState, LegacySevState, SnpGuestState, SnpPlatformState } from './firmware/state.js';
export * from './firmware/status.js';
export {
  BSP_EIP,
  buildSevHashesPage,
  buildSevHashesTable,
  buildSvsmVmsa,
  buildVmsa,
  cmdlineBytes,
  cpuSignature,
  EC2_LEGACY_RDX,
  FOOTER_TABLE_END_FROM_IMAGE_END,
  FOUR_GIB,
  guidFromBytes,
  guidToBytes,
  hasMetadataSection,
  LaunchDigest,
  type LaunchDigestOptions,
  type LaunchMeasurement,
  LD_SIZE,
  MAX_VCPUS,
  type MeasuredRegion,
  type MeasureError,
  MeasureErrorCode,
  type MeasureResult,
  type MeasureStep,
  OVMF_SEV_METADATA_GUID,
  OVMF_TABLE_FOOTER_GUID,
  type OvmfImage,
  PAGE_INFO_SIZE,
  PageInfoOffset,
  type PageInfoPerms,
  PageInfoVmplOrder,
  parseOvmf,
  RMP_GPA_MAX,
  SEV_CMDLINE_ENTRY_GUID,
  SEV_ES_RESET_BLOCK_GUID,
  SEV_HASH_TABLE_HEADER_GUID,
  SEV_HASH_TABLE_LENGTH,
  SEV_HASH_TABLE_RV_GUID,
  SEV_HASH_TABLE_SIZE,
  SEV_INITRD_ENTRY_GUID,
  SEV_KERNEL_ENTRY_GUID,
  SEV_SECRET_BLOCK_GUID,
  type SevHashes,
  type SevMetadataSection,
  SevMetadataSectionType,
  SNP_PAGE_TYPE_NAMES,
  type SnpLaunchParams,
  SnpPageType,
  SVSM_INFO_GUID,
  type SvsmLaunchParams,
  sectionTypeName,
  sevHashes,
  snpLaunchDigest,
  snpOvmfHash,
  svsmLaunchDigest,
  VCPU_SIGNATURES,
  VMSA_GPA,
  VmmType,
  type VmsaParams,
  vcpuSignatureOf,
} from './measure/index.js';
export * from './memory.js';
export * from './platform.js';
export * from './profile.js';
export * from './profiles.js';
export * from './rmp/entry.js';
export * from './rmp/layout.js';
export * from './rmp/page-state.js';
export * from './rmp/placement.js';
export * from './rmp/table.js';
export * from './vmsa-layout.js';
