// Public entry of the platform layer (PSP firmware, RMP, CPU RMP instructions).

export * from './cpu/access.js';
export * from './cpu/codes.js';
export * from './cpu/fault.js';
export * from './cpu/guest-context.js';
export * from './cpu/guest-instructions.js';
export * from './cpu/host-instructions.js';
export * from './cpu/machine.js';
export * from './cpu/vmrun.js';
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
  SevEsSaveArea,
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
  VMSA_SIZE,
  VmcbSeg,
  VmmType,
  type VmsaParams,
  vcpuSignatureOf,
} from './measure/index.js';
export * from './memory.js';
export * from './platform.js';
export * from './profile.js';
export * from './rmp/entry.js';
export * from './rmp/layout.js';
export * from './rmp/page-state.js';
export * from './rmp/table.js';
