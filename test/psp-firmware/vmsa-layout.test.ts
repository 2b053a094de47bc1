import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SVM_SEV_FEAT, SVM_SEV_FEAT_INT_INJ_MODES } from '../../host/index.js';
import {
  EFER_SVME,
  SEV_FEATURES_INT_INJ_MODES,
  SevFeature,
  VMSA_SIZE,
  VmcbSeg,
  VmsaOffset,
} from '../../psp-firmware/index.js';

// Offsets as Linux's struct sev_es_save_area lays them out (arch/x86/include/asm/svm.h, checked by its
// static_asserts), written out independently of the module under test.
const LINUX_OFFSETS: Readonly<Record<string, number>> = {
  ES: 0x000,
  CS: 0x010,
  SS: 0x020,
  DS: 0x030,
  FS: 0x040,
  GS: 0x050,
  GDTR: 0x060,
  LDTR: 0x070,
  IDTR: 0x080,
  TR: 0x090,
  VMPL: 0x0ca,
  CPL: 0x0cb,
  EFER: 0x0d0,
  CR4: 0x148,
  CR3: 0x150,
  CR0: 0x158,
  DR7: 0x160,
  DR6: 0x168,
  RFLAGS: 0x170,
  RIP: 0x178,
  RSP: 0x1d8,
  RAX: 0x1f8,
  G_PAT: 0x268,
  GUEST_TSC_SCALE: 0x2f0,
  GUEST_TSC_OFFSET: 0x2f8,
  RDX: 0x310,
  SEV_FEATURES: 0x3b0,
  XCR0: 0x3e8,
  MXCSR: 0x408,
  X87_FTW: 0x40c,
  X87_FCW: 0x410,
};

test('VmsaOffset is struct sev_es_save_area: every field at its Linux offset, inside one page', () => {
  assert.deepEqual({ ...VmsaOffset }, LINUX_OFFSETS);
  assert.equal(VMSA_SIZE, 4096);
  for (const [name, at] of Object.entries(VmsaOffset)) assert.ok(at + 8 <= VMSA_SIZE, name);
  // Segments are 16-byte struct vmcb_seg records, one after the other.
  const segs = [VmsaOffset.ES, VmsaOffset.CS, VmsaOffset.SS, VmsaOffset.DS, VmsaOffset.FS, VmsaOffset.GS];
  for (const [i, at] of segs.entries()) assert.equal(at, i * 16);
  assert.deepEqual({ ...VmcbSeg }, { SELECTOR: 0, ATTRIB: 2, LIMIT: 4, BASE: 8 });
  assert.ok(Object.isFrozen(VmsaOffset) && Object.isFrozen(VmcbSeg) && Object.isFrozen(SevFeature));
});

test('SEV_FEATURES: bits 0-16 and 21, one bit each, SEV_STATUS bit n+2 <-> SEV_FEATURES bit n', () => {
  const bits = Object.values(SevFeature).map((v) => {
    assert.equal(v & (v - 1n), 0n, `${v} is a single bit`);
    return v.toString(2).length - 1;
  });
  assert.deepEqual(
    bits.sort((a, b) => a - b),
    [...Array.from({ length: 17 }, (_, i) => i), 21],
  );
  // Linux guest names (msr-index.h): SNP_VTOM_BIT 3, SECURE_TSC_BIT 11, SECURE_AVIC_BIT 18, IBPB_ON_ENTRY_BIT 23.
  const sevStatus = (bit: number) => (1n << BigInt(bit)) >> 2n;
  assert.equal(sevStatus(3), SevFeature.VTOM);
  assert.equal(sevStatus(11), SevFeature.SECURE_TSC);
  assert.equal(sevStatus(18), SevFeature.SECURE_AVIC);
  assert.equal(sevStatus(23), SevFeature.IBPB_ON_ENTRY);
  assert.equal(SevFeature.DEBUG_SWAP, 0x20n);
  assert.equal(SEV_FEATURES_INT_INJ_MODES, 0x18n);
  assert.equal(EFER_SVME, 0x1000n);
});

test('the host names the same definitions (KVM SVM_SEV_FEAT_* aliases, no second table)', () => {
  assert.equal(SVM_SEV_FEAT, SevFeature);
  assert.equal(SVM_SEV_FEAT_INT_INJ_MODES, SEV_FEATURES_INT_INJ_MODES);
});
