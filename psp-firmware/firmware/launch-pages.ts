/**
 * The two special pages SNP_LAUNCH_UPDATE builds or checks:
 * - the SECRETS page (version 3, [FW `snp_launch_update_secrets_page_t`], Linux `struct
 *   snp_secrets_page`): 0x00 VERSION, 0x04 bit0 IMI_EN, 0x08 FMS, 0x10 GOSVW[16], 0x20..0x9F VMPCK0-3,
 *   0xA0..0xFF guest OS area, 0x100 VMSA tweak bitmap[64], 0x140..0x15F reserved for the guest OS
 *   (Linux: SVSM fields), 0x160 TSC_FACTOR;
 * - the CPUID page ([FW `snp_launch_update_cpuid_page_t`], Linux `struct snp_cpuid_table`): u32 COUNT,
 *   u32 + u64 reserved, then up to 64 entries of 0x30 bytes {EAX_IN, ECX_IN, u64 XCR0_IN, u64 XSS_IN,
 *   EAX, EBX, ECX, EDX, u64 reserved}, validated as `sanitize_cpuid_list` does [FW cpuid_lookup.c].
 */
import { putU32, u32 } from './buffers.js';
import type { GuestContextPage } from './guest-context.js';
import type { CpuidRegisterRule, FirmwareProfile } from './profile.js';

export const SECRETS_PAGE_SIZE = 0x1000;
export const SecretsOffset = Object.freeze({
  VERSION: 0x00,
  IMI_EN: 0x04,
  FMS: 0x08,
  GOSVW: 0x10,
  VMPCK0: 0x20,
  OS_AREA: 0xa0,
  VMSA_TWEAK_BITMAP: 0x100,
  TSC_FACTOR: 0x160,
} as const);

/** The secrets page the firmware writes for a guest. The VMSA tweak bitmap is left zero (see README). */
export function buildSecretsPage(profile: FirmwareProfile, ctx: GuestContextPage): Uint8Array {
  const p = new Uint8Array(SECRETS_PAGE_SIZE);
  putU32(p, SecretsOffset.VERSION, profile.secretsPageVersion);
  putU32(p, SecretsOffset.IMI_EN, ctx.imiEn ? 1 : 0);
  putU32(p, SecretsOffset.FMS, profile.cpuidSignature);
  p.set(ctx.gosvw, SecretsOffset.GOSVW);
  ctx.vmpck.forEach((k, i) => {
    p.set(k, SecretsOffset.VMPCK0 + 32 * i);
  });
  putU32(p, SecretsOffset.TSC_FACTOR, profile.tscFactor);
  return p;
}

export const SNP_CPUID_COUNT_MAX = 64; // [FW][LX] SNP_CPUID_COUNT_MAX
export const CPUID_ENTRY_SIZE = 0x30; // [LX] sizeof(struct snp_cpuid_fn)
export const CPUID_TABLE_HEADER = 0x10; // [LX] count, __reserved1, __reserved2

export interface CpuidCheck {
  /** 'ok', 'reserved' (page header), 'count' (> 64), or 'entries' (corrected page to write back). */
  readonly result: 'ok' | 'reserved' | 'count' | 'entries';
  readonly message: string;
}

function ruleCheck(rule: CpuidRegisterRule, page: Uint8Array, off: number): boolean {
  let reg = u32(page, off);
  let ok = true;
  if (rule.rule === 'mask' && (reg & rule.value) >>> 0 !== reg) {
    reg = (reg & rule.value) >>> 0;
    ok = false;
  } else if (rule.rule === 'exact' && reg !== rule.value) {
    reg = rule.value;
    ok = false;
  } else if (rule.rule === 'lessthan' && reg > rule.value) {
    reg = rule.value;
    ok = false;
  }
  if ((reg & rule.reserved) !== 0) {
    reg = (reg & ~rule.reserved) >>> 0;
    ok = false;
  }
  putU32(page, off, reg);
  return ok;
}

/**
 * Validate a CPUID page in place. On 'entries' the page holds the corrected values the firmware
 * writes back (unencrypted) before failing with INVALID_PARAM.
 */
export function checkCpuidPage(profile: FirmwareProfile, page: Uint8Array): CpuidCheck {
  if (u32(page, 4) !== 0 || u32(page, 8) !== 0 || u32(page, 12) !== 0) {
    return { result: 'reserved', message: 'CPUID page: reserved header fields are not zero' };
  }
  const count = u32(page, 0);
  if (count > SNP_CPUID_COUNT_MAX) {
    return { result: 'count', message: `CPUID page: COUNT ${count} exceeds ${SNP_CPUID_COUNT_MAX}` };
  }
  const bad: string[] = [];
  for (let i = 0; i < count; i++) {
    const e = CPUID_TABLE_HEADER + i * CPUID_ENTRY_SIZE;
    const eaxIn = u32(page, e);
    const ecxIn = u32(page, e + 4);
    const architectural = eaxIn <= 0xffff || (eaxIn >= 0x80000000 && eaxIn <= 0x8000ffff);
    if (!architectural) continue;
    let ok = u32(page, e + 0x28) === 0 && u32(page, e + 0x2c) === 0;
    if (profile.cpuidValidation === 'rules') {
      const rule = profile.cpuidRules.find((r) => r.eaxIn === eaxIn && r.ecxIn === ecxIn);
      if (rule) {
        for (let r = 0; r < 4; r++) ok = ruleCheck(rule.regs[r]!, page, e + 0x18 + 4 * r) && ok;
      } else if (u32(page, e + 0x18) | u32(page, e + 0x1c) | u32(page, e + 0x20) | u32(page, e + 0x24)) {
        page.fill(0, e + 0x18, e + 0x28); // an unlisted architectural leaf must read as all zero
        ok = false;
      }
    }
    if (!ok) bad.push(`Fn${eaxIn.toString(16).padStart(8, '0')}_${ecxIn.toString(16)}`);
  }
  return bad.length === 0
    ? { result: 'ok', message: '' }
    : { result: 'entries', message: `CPUID page: entries refused: ${bad.join(', ')}` };
}
