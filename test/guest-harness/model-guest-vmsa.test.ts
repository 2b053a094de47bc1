import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  buildVmsa,
  entryPoint,
  STUB_CODE,
  stubPage,
  VMSA_FIELD_LAYOUT,
  VMSA_SIZE,
} from '../../guest-harness/index.js';

const u16 = (b: Uint8Array, at: number) => new DataView(b.buffer).getUint16(at, true);
const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer).getUint32(at, true);
const u64 = (b: Uint8Array, at: number) => new DataView(b.buffer).getBigUint64(at, true);

test('field layout matches struct sev_es_save_area (ap-creation.md A.6, the module static_asserts)', () => {
  const expected: Record<string, [number, number]> = {
    sev_features: [0x3b0, 8],
    vmpl: [0x0ca, 1],
    cpl: [0x0cb, 1],
    efer: [0x0d0, 8],
    cr4: [0x148, 8],
    cr3: [0x150, 8],
    cr0: [0x158, 8],
    dr7: [0x160, 8],
    dr6: [0x168, 8],
    rflags: [0x170, 8],
    rip: [0x178, 8],
    rsp: [0x1d8, 8],
    rax: [0x1f8, 8],
    g_pat: [0x268, 8],
    xcr0: [0x3e8, 8],
    mxcsr: [0x408, 4],
    x87_ftw: [0x40c, 2],
    x87_fcw: [0x410, 2],
    cs_selector: [0x010, 2],
    cs_attrib: [0x012, 2],
    cs_limit: [0x014, 4],
    cs_base: [0x018, 8],
  };
  for (const [field, [offset, width]] of Object.entries(expected)) {
    assert.deepEqual(VMSA_FIELD_LAYOUT[field as keyof typeof VMSA_FIELD_LAYOUT], { offset, width }, field);
  }
});

test('Linux template: AP INIT state of wakeup_cpu_via_vmgexit (ap-creation.md C.1), SEV_FEATURES = SEV_STATUS >> 2', () => {
  const v = buildVmsa('linux', { sevStatus: 0x87n });
  assert.equal(v.length, VMSA_SIZE);
  // cs: selector 0, attrib 0x9a, limit 0xffff, base 0 (the stub is not armed)
  assert.deepEqual([u16(v, 0x10), u16(v, 0x12), u32(v, 0x14), u64(v, 0x18)], [0, 0x9a, 0xffff, 0n]);
  for (const seg of [0x00, 0x20, 0x30, 0x40, 0x50])
    assert.deepEqual([u16(v, seg + 2), u32(v, seg + 4)], [0x92, 0xffff]);
  assert.deepEqual([u16(v, 0x72), u16(v, 0x92)], [0x82, 0x83], 'ldtr and tr attributes');
  for (const seg of [0x60, 0x70, 0x80, 0x90]) assert.equal(u32(v, seg + 4), 0xffff);
  assert.equal(u64(v, 0x158), 0x60000010n, 'cr0 CD|NW|ET');
  assert.equal(u64(v, 0x148), 0x40n, 'cr4: only MCE of the running CPU');
  assert.equal(u64(v, 0x0d0), 0x1000n, 'EFER.SVME');
  assert.deepEqual([u64(v, 0x160), u64(v, 0x168), u64(v, 0x170)], [0x400n, 0xffff0ff0n, 2n]);
  assert.equal(u64(v, 0x268), 0x0007040600070406n);
  assert.equal(u64(v, 0x3e8), 1n);
  assert.deepEqual([u32(v, 0x408), u16(v, 0x40c), u16(v, 0x410)], [0x1f80, 0x5555, 0x40]);
  assert.equal(v[0x0ca], 0, 'vmpl');
  assert.equal(u64(v, 0x3b0), 0x21n, 'sev_features = 0x87 >> 2');
});

test("OVMF template: CR0 0x10 and OVMF's LDTR/TR attribute slip, reproduced as the module does", () => {
  const v = buildVmsa('ovmf', { sevStatus: 0x7n });
  assert.equal(u64(v, 0x158), 0x10n);
  assert.deepEqual([u16(v, 0x72), u16(v, 0x92)], [0x83, 0]);
  assert.equal(u64(v, 0x3b0), 1n);
});

test('zero template is all zeros; the stub arms CS and DS at the stub page, RIP 0', () => {
  assert.ok(buildVmsa('zero', { sevStatus: 0x7n }).every((b) => b === 0));
  const stubPa = 0x1234000;
  const v = buildVmsa('zero', { sevStatus: 0x7n, stubPa });
  assert.deepEqual(
    [u16(v, 0x10), u16(v, 0x12), u32(v, 0x14), u64(v, 0x18)],
    [(stubPa >> 4) & 0xffff, 0x9a, 0xffff, BigInt(stubPa)],
  );
  assert.deepEqual(
    [u16(v, 0x30), u16(v, 0x32), u64(v, 0x38)],
    [(stubPa >> 4) & 0xffff, 0x92, BigInt(stubPa)],
  );
  assert.equal(u64(v, 0x178), 0n);
  assert.equal(entryPoint(v), BigInt(stubPa));
  assert.equal(u64(v, 0x0d0), 0n, 'a zero VMSA keeps EFER.SVME clear');
});

test('the stub page: mov dword [0x800], cookie; hlt; jmp -3 (snpsim_stub_code)', () => {
  assert.deepEqual([...STUB_CODE], [0x66, 0xc7, 0x06, 0x00, 0x08, 0, 0, 0, 0, 0xf4, 0xeb, 0xfd]);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 0xffffffff }), (cookie) => {
      const page = stubPage(cookie);
      assert.equal(u32(page, 5), cookie >>> 0);
      assert.equal(u32(page, 0x800), 0, 'marker starts at zero');
      assert.deepEqual([page[0], page[9], page[10], page[11]], [0x66, 0xf4, 0xeb, 0xfd]);
    }),
  );
});
