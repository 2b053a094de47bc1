// Public entry of the launch-measurement sub-API (re-exported by psp-firmware/index.ts).
export {
  type LaunchMeasurement,
  MAX_VCPUS,
  type MeasuredRegion,
  type SnpLaunchParams,
  type SvsmLaunchParams,
  snpLaunchDigest,
  snpOvmfHash,
  svsmLaunchDigest,
} from './guest.js';
export { guidFromBytes, guidToBytes } from './guid.js';
export {
  FOOTER_TABLE_END_FROM_IMAGE_END,
  FOUR_GIB,
  hasMetadataSection,
  OVMF_SEV_METADATA_GUID,
  OVMF_TABLE_FOOTER_GUID,
  type OvmfImage,
  parseOvmf,
  SEV_ES_RESET_BLOCK_GUID,
  SEV_HASH_TABLE_RV_GUID,
  SEV_SECRET_BLOCK_GUID,
  type SevMetadataSection,
  SevMetadataSectionType,
  SVSM_INFO_GUID,
  sectionTypeName,
} from './ovmf.js';
export {
  LaunchDigest,
  type LaunchDigestOptions,
  LD_SIZE,
  type MeasureStep,
  PAGE_INFO_SIZE,
  PageInfoOffset,
  type PageInfoPerms,
  PageInfoVmplOrder,
  RMP_GPA_MAX,
  SNP_PAGE_TYPE_NAMES,
  SnpPageType,
  VMSA_GPA,
} from './page-info.js';
export { type MeasureError, MeasureErrorCode, type MeasureResult } from './result.js';
export {
  buildSevHashesPage,
  buildSevHashesTable,
  cmdlineBytes,
  SEV_CMDLINE_ENTRY_GUID,
  SEV_HASH_TABLE_HEADER_GUID,
  SEV_HASH_TABLE_LENGTH,
  SEV_HASH_TABLE_SIZE,
  SEV_INITRD_ENTRY_GUID,
  SEV_KERNEL_ENTRY_GUID,
  type SevHashes,
  sevHashes,
} from './sev-hashes.js';
export { cpuSignature, VCPU_SIGNATURES, vcpuSignatureOf } from './vcpu-types.js';
export {
  BSP_EIP,
  buildSvsmVmsa,
  buildVmsa,
  EC2_LEGACY_RDX,
  VmmType,
  type VmsaParams,
} from './vmsa.js';
