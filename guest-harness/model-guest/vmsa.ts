/**
 * VMSA contents exactly as the guest module writes them (guest-harness/kmod/snpsim_vmsa.c
 * snpsim_page_init / snpsim_page_set / snpsim_page_poke), so the model's AP runs the same bytes a
 * real AP would. Layout: the platform's `VmsaOffset` / `VmcbSeg` (`struct sev_es_save_area`).
 */
import type { VmsaField, VmsaTemplate } from '../protocol/index.js';
import { EFER_SVME, VMSA_SIZE, VmcbSeg, VmsaOffset } from './host-api.js';

export { VMSA_SIZE };

/** `vmsa-set` fields: offset and width (snpsim_fields[] in snpsim_vmsa.c). */
export const VMSA_FIELD_LAYOUT: Readonly<
  Record<VmsaField, { readonly offset: number; readonly width: 1 | 2 | 4 | 8 }>
> = Object.freeze({
  sev_features: { offset: VmsaOffset.SEV_FEATURES, width: 8 },
  vmpl: { offset: VmsaOffset.VMPL, width: 1 },
  cpl: { offset: VmsaOffset.CPL, width: 1 },
  efer: { offset: VmsaOffset.EFER, width: 8 },
  cr0: { offset: VmsaOffset.CR0, width: 8 },
  cr3: { offset: VmsaOffset.CR3, width: 8 },
  cr4: { offset: VmsaOffset.CR4, width: 8 },
  dr6: { offset: VmsaOffset.DR6, width: 8 },
  dr7: { offset: VmsaOffset.DR7, width: 8 },
  rflags: { offset: VmsaOffset.RFLAGS, width: 8 },
  rip: { offset: VmsaOffset.RIP, width: 8 },
  rsp: { offset: VmsaOffset.RSP, width: 8 },
  rax: { offset: VmsaOffset.RAX, width: 8 },
  g_pat: { offset: VmsaOffset.G_PAT, width: 8 },
  xcr0: { offset: VmsaOffset.XCR0, width: 8 },
  mxcsr: { offset: VmsaOffset.MXCSR, width: 4 },
  x87_fcw: { offset: VmsaOffset.X87_FCW, width: 2 },
  x87_ftw: { offset: VmsaOffset.X87_FTW, width: 2 },
  cs_selector: { offset: VmsaOffset.CS + VmcbSeg.SELECTOR, width: 2 },
  cs_attrib: { offset: VmsaOffset.CS + VmcbSeg.ATTRIB, width: 2 },
  cs_limit: { offset: VmsaOffset.CS + VmcbSeg.LIMIT, width: 4 },
  cs_base: { offset: VmsaOffset.CS + VmcbSeg.BASE, width: 8 },
});

// AP INIT values. // [LX] arch/x86/coco/sev/core.c AP_INIT_*; snpsim_vmsa.c
const AP_INIT_SEG_LIMIT = 0xffff;
const AP_INIT_RFLAGS_DEFAULT = 0x2n;
const AP_INIT_DR6_DEFAULT = 0xffff0ff0n;
const AP_INIT_DR7_DEFAULT = 0x400n;
const AP_INIT_GPAT_DEFAULT = 0x0007040600070406n;
const AP_INIT_XCR0_DEFAULT = 0x1n;
const AP_INIT_X87_FTW_DEFAULT = 0x5555;
const AP_INIT_X87_FCW_DEFAULT = 0x0040;
/** CD | NW | ET. // [LX] AP_INIT_CR0_DEFAULT */
const AP_INIT_CR0_DEFAULT = 0x60000010n;
const AP_INIT_MXCSR_DEFAULT = 0x1f80;
/** ET; plus CD/NW as the running CPU has them. // [edk2] MpInitLib AmdSev.c */
const OVMF_INIT_CR0_DEFAULT = 0x10n;
/** P | S | R | CODE. // [LX] INIT_CS_ATTRIBS */
const INIT_CS_ATTRIBS = 0x9a;
/** P | S | W. // [LX] INIT_DS_ATTRIBS */
const INIT_DS_ATTRIBS = 0x92;
/** P | type 2 (LDT). // [LX] INIT_LDTR_ATTRIBS */
const INIT_LDTR_ATTRIBS = 0x82;
/** P | type 3 (busy TSS). // [LX] INIT_TR_ATTRIBS */
const INIT_TR_ATTRIBS = 0x83;
/** CR0.NW | CR0.CD. // [LX] processor-flags.h */
const CR0_NW_CD = (1n << 29n) | (1n << 30n);
/** CR4.MCE. // [LX] processor-flags.h */
const X86_CR4_MCE = 1n << 6n;

/** The model guest's BSP control registers the templates copy bits from (native_read_cr0/cr4). */
export interface CpuControl {
  /** CR0 of the running CPU: the model's Linux runs with CD and NW clear (0x80050033). */
  readonly cr0: bigint;
  /** CR4 of the running CPU: MCE set, as on every Linux x86-64 kernel with machine checks. */
  readonly cr4: bigint;
}

/** Linux x86-64 CR0 (PG|AM|WP|NE|ET|MP|PE) and a CR4 with MCE; only CR0.NW/CD and CR4.MCE are copied. */
export const MODEL_CPU_CONTROL: CpuControl = Object.freeze({ cr0: 0x80050033n, cr4: 0x3506f0n });

function seg(
  view: DataView,
  at: number,
  selector: number,
  attrib: number,
  limit: number,
  base: bigint,
): void {
  view.setUint16(at + VmcbSeg.SELECTOR, selector, true);
  view.setUint16(at + VmcbSeg.ATTRIB, attrib, true);
  view.setUint32(at + VmcbSeg.LIMIT, limit, true);
  view.setBigUint64(at + VmcbSeg.BASE, base, true);
}

/** snpsim_fill_init_state(): the AP INIT state of Linux's or OVMF's VMSA template. */
function fillInitState(view: DataView, ovmf: boolean, sevStatus: bigint, cpu: CpuControl): void {
  seg(view, VmsaOffset.CS, 0, INIT_CS_ATTRIBS, AP_INIT_SEG_LIMIT, 0n);
  for (const s of [VmsaOffset.DS, VmsaOffset.ES, VmsaOffset.FS, VmsaOffset.GS, VmsaOffset.SS]) {
    seg(view, s, 0, INIT_DS_ATTRIBS, AP_INIT_SEG_LIMIT, 0n);
  }
  for (const s of [VmsaOffset.GDTR, VmsaOffset.LDTR, VmsaOffset.IDTR, VmsaOffset.TR]) {
    view.setUint32(s + VmcbSeg.LIMIT, AP_INIT_SEG_LIMIT, true);
  }
  const put = (field: VmsaField, value: bigint) => writeField(view, field, value);
  if (ovmf) {
    // OVMF's SevSnpCreateSaveArea() sets the TSS type on LDTR a second time instead of on TR:
    // LDTR ends up 0x83 and TR's attributes stay 0 (reproduced by the module on purpose).
    view.setUint16(VmsaOffset.LDTR + VmcbSeg.ATTRIB, INIT_TR_ATTRIBS, true);
    put('cr0', OVMF_INIT_CR0_DEFAULT | (cpu.cr0 & CR0_NW_CD));
  } else {
    view.setUint16(VmsaOffset.LDTR + VmcbSeg.ATTRIB, INIT_LDTR_ATTRIBS, true);
    view.setUint16(VmsaOffset.TR + VmcbSeg.ATTRIB, INIT_TR_ATTRIBS, true);
    put('cr0', AP_INIT_CR0_DEFAULT);
  }
  put('cr4', cpu.cr4 & X86_CR4_MCE);
  put('dr7', AP_INIT_DR7_DEFAULT);
  put('dr6', AP_INIT_DR6_DEFAULT);
  put('rflags', AP_INIT_RFLAGS_DEFAULT);
  put('g_pat', AP_INIT_GPAT_DEFAULT);
  put('xcr0', AP_INIT_XCR0_DEFAULT);
  put('mxcsr', BigInt(AP_INIT_MXCSR_DEFAULT));
  put('x87_ftw', BigInt(AP_INIT_X87_FTW_DEFAULT));
  put('x87_fcw', BigInt(AP_INIT_X87_FCW_DEFAULT));
  put('efer', EFER_SVME);
  put('vmpl', 0n);
  // SEV_STATUS bit n+2 is SEV_FEATURES bit n. // ap-creation.md A.5
  put('sev_features', sevStatus >> 2n);
}

/**
 * The marker stub: 16-bit real mode, entered with CS.base = DS.base = the stub page and IP = 0.
 *   0000  66 c7 06 00 08 <cookie>   mov dword [0x0800], cookie
 *   0009  f4                        hlt
 *   000a  eb fd                     jmp 0009
 * // snpsim_vmsa.c snpsim_stub_code
 */
export const STUB_CODE: readonly number[] = Object.freeze([
  0x66, 0xc7, 0x06, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0xf4, 0xeb, 0xfd,
]);
/** Offset of the cookie in STUB_CODE: the imm32 of the mov. */
const STUB_COOKIE_AT = 5;
/** Where the stub stores its cookie in the stub page. // snpsim_vmsa.c SNPSIM_MARKER_OFFSET */
export const STUB_MARKER_OFFSET = 0x800;

/** The stub page's bytes for `cookie` (marker word zero). */
export function stubPage(cookie: number): Uint8Array {
  const page = new Uint8Array(VMSA_SIZE);
  page.set(STUB_CODE, 0);
  new DataView(page.buffer).setUint32(STUB_COOKIE_AT, cookie >>> 0, true);
  return page;
}

/** snpsim_stub_arm(): points CS:IP and DS at the stub page at `stubPa` (below 4 GiB). */
function armStub(view: DataView, stubPa: number): void {
  const selector = Math.floor(stubPa / 16) & 0xffff;
  seg(view, VmsaOffset.CS, selector, INIT_CS_ATTRIBS, AP_INIT_SEG_LIMIT, BigInt(stubPa));
  writeField(view, 'rip', 0n);
  seg(view, VmsaOffset.DS, selector, INIT_DS_ATTRIBS, AP_INIT_SEG_LIMIT, BigInt(stubPa));
}

/** snpsim_page_init(): a fresh VMSA page from `template`, optionally pointing at the stub. */
export function buildVmsa(
  template: VmsaTemplate,
  options: { readonly sevStatus: bigint; readonly stubPa?: number; readonly cpu?: CpuControl },
): Uint8Array {
  const page = new Uint8Array(VMSA_SIZE);
  const view = new DataView(page.buffer);
  if (template !== 'zero')
    fillInitState(view, template === 'ovmf', options.sevStatus, options.cpu ?? MODEL_CPU_CONTROL);
  if (options.stubPa !== undefined) armStub(view, options.stubPa);
  return page;
}

/** Whether `value` fits in `width` bytes (snpsim_fits). */
export function fitsWidth(value: bigint, width: number): boolean {
  return value >= 0n && (width >= 8 || value >> BigInt(8 * width) === 0n);
}

/** Little-endian store of the low `width` bytes of `value` at `offset` (snpsim_page_store). */
export function writeBytes(view: DataView, offset: number, width: 1 | 2 | 4 | 8, value: bigint): void {
  for (let i = 0; i < width; i++) view.setUint8(offset + i, Number((value >> BigInt(8 * i)) & 0xffn));
}

export function writeField(view: DataView, field: VmsaField, value: bigint): void {
  const { offset, width } = VMSA_FIELD_LAYOUT[field];
  writeBytes(view, offset, width, value);
}

export function readField(view: DataView, field: VmsaField): bigint {
  const { offset, width } = VMSA_FIELD_LAYOUT[field];
  let v = 0n;
  for (let i = width - 1; i >= 0; i--) v = (v << 8n) | BigInt(view.getUint8(offset + i));
  return v;
}

/** Real-mode entry point of a VMSA: CS.base + RIP (what the AP fetches first). */
export function entryPoint(vmsa: Uint8Array): bigint {
  const view = new DataView(vmsa.buffer, vmsa.byteOffset, vmsa.byteLength);
  return readField(view, 'cs_base') + readField(view, 'rip');
}
