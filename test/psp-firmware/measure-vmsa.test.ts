/**
 * Launch VMSA pages (vectors V1–V10 and the V2 byte list of shared/vectors/measure-small.md) and
 * vCPU signatures (virtee/sev-snp-measure tests/test_vcpu_types.py).
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  BSP_EIP,
  buildSvsmVmsa,
  buildVmsa,
  cpuSignature,
  LaunchDigest,
  MeasureErrorCode,
  SnpPageType,
  VCPU_SIGNATURES,
  VMSA_GPA,
  VmmType,
  VmsaOffset,
  vcpuSignatureOf,
} from '../../psp-firmware/index.js';

const AP_EIP = 0x80b004;
const EPYC_V4 = 0x800f12;
const sha384 = (b: Uint8Array) => createHash('sha384').update(b).digest('hex');

function ldOf(page: Uint8Array): string {
  const ld = new LaunchDigest();
  assert.equal(ld.updatePage(SnpPageType.VMSA, page, VMSA_GPA), undefined);
  return ld.digestHex();
}

/** Non-zero bytes of a page as "off:byte" (3-digit hex offset), the notation of measure-small.md. */
function nonZero(page: Uint8Array): string[] {
  const out: string[] = [];
  page.forEach((b, i) => {
    if (b !== 0) out.push(`${i.toString(16).padStart(3, '0')}:${b.toString(16).padStart(2, '0')}`);
  });
  return out;
}

const V2_BYTES =
  `002:93 004:ff 005:ff 011:f0 012:9b 014:ff 015:ff 01a:ff 01b:ff 022:93 024:ff 025:ff 032:93 034:ff
035:ff 042:93 044:ff 045:ff 052:93 054:ff 055:ff 064:ff 065:ff 072:82 074:ff 075:ff 084:ff 085:ff
092:8b 094:ff 095:ff 0d1:10 148:40 158:10 161:04 168:f0 169:0f 16a:ff 16b:ff 170:02 178:f0 179:ff
268:06 269:04 26a:07 26c:06 26d:04 26e:07 310:12 311:0f 312:80 3b0:21 3e8:01 408:80 409:1f 410:7f 411:03`.split(
    /\s+/,
  );

/** V2's bytes with `changes` applied ("off:00" removes a byte). */
function v2With(changes: string): string[] {
  const map = new Map(V2_BYTES.map((e) => [e.slice(0, 3), e]));
  for (const c of changes.split(/\s+/)) {
    if (c.endsWith(':00')) map.delete(c.slice(0, 3));
    else map.set(c.slice(0, 3), c);
  }
  return [...map.values()].sort();
}

test('V2: QEMU BSP, EPYC-v4, features 0x21 — every non-zero byte, at the sev_es_save_area offsets', () => {
  const page = buildVmsa({ eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x21n, vmmType: VmmType.QEMU });
  assert.equal(page.length, 4096);
  assert.deepEqual(nonZero(page), V2_BYTES);
  assert.equal(page.readBigUInt64LE(VmsaOffset.SEV_FEATURES), 0x21n);
  assert.equal(page.readBigUInt64LE(VmsaOffset.RDX), BigInt(EPYC_V4));
  assert.equal(page.readBigUInt64LE(VmsaOffset.G_PAT), 0x0007040600070406n);
});

test('V3/V5/V8: the AP, EC2 and GCE differences from V2, byte for byte', () => {
  const v3 = buildVmsa({ eip: AP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x21n, vmmType: VmmType.QEMU });
  assert.deepEqual(nonZero(v3), v2With('01a:80 01b:00 178:04 179:b0'));
  const v5 = buildVmsa({ eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.EC2 });
  assert.deepEqual(
    nonZero(v5),
    v2With('012:9a 022:92 092:83 310:00 311:06 312:00 3b0:01 408:00 409:00 410:00 411:00'),
  );
  const v8 = buildVmsa({ eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.GCE });
  assert.deepEqual(
    nonZero(v8),
    v2With('269:01 26c:00 26d:00 26e:00 310:00 311:06 312:00 3b0:01 408:00 409:00 410:00 411:00'),
  );
});

const VECTORS: [string, Parameters<typeof buildVmsa>[0], string, string | null][] = [
  [
    'V1 QEMU BSP EPYC-v4 0x1',
    { eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.QEMU },
    '77920c4c629ff47e90c0e174fc1ad0eb6fa664f88cd4739488058a8c6cb1a77b3856f55378e9518d0da99452d51c553a',
    '108432463da76821f35c5daf2f7aecc0ce9ce88652de5f70f638c7a0345c11f2f80025654b80e7be10a9fe0ee1b75f33',
  ],
  [
    'V2 QEMU BSP EPYC-v4 0x21',
    { eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x21n, vmmType: VmmType.QEMU },
    'ae79efa6efbe1594a2717dfd42af495a0e4ed37b00e529a5fdf349bea04c3513962ffb0c74cf65b0d9a1857271833d6e',
    '8ee1f0a0669882927e738af918005e4adea2bcf5516e41610f20e48a5c57df5b8593d969249ae35475a8e1a39cdb8026',
  ],
  [
    'V3 QEMU AP EPYC-v4 0x21',
    { eip: AP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x21n, vmmType: VmmType.QEMU },
    '180ef2675dc01615d31b3e84ef27a0a69d08bfbbb58ea4f6a0188f08884ab6407591ada42f99749ce9a406fb4e5d8355',
    'f1eff4fb6a5d3d608845de8b9a1c0c49eb58d703f3be9b918f03c47e56fec4d939f456879c630d2b9f3016079dbe84c1',
  ],
  [
    'V4 QEMU AP EPYC-v4 0x1',
    { eip: AP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.QEMU },
    '8413b852790765a310d95867a8b00bfca3a802b5a80830044b45e253fe96222657e11e53fcf63eb0e0afd722385bf7b4',
    'f2b2ae438c3154110b698746c67791e2820dfea411c8ca6d51d1f27b4dec4b86eb1fb26e137e9f7cab6a2d52454d3abc',
  ],
  [
    'V5 EC2 BSP 0x1 RDX 0x600',
    { eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.EC2 },
    'd08442e8bcdb6a5dcd7f22e4f7fd6979beffb9f0bb54a9d1977407fe84f482abf23c1baae6ce95a6a9e7a94c3c51f412',
    '1468d7a4f07e498b7cb2566ba7750f5ed00d5af525f6469395f0044114b9d4a80e61e974ba167b8141d7d772a482d7c7',
  ],
  [
    'V6 EC2 BSP 0x1 RDX 0 (legacy)',
    { eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.EC2, ec2LegacyRdx: true },
    '1ce642f84290ae8cabc97e93c602d756bbbad7c1a3b7973180b02a4aec331fdea29155cacc988601047a7457eea1025b',
    '45ec4b9216d5675fdc01385040d2ff2ced96b863e9c9fb8fa30989c25ad26e829af3f7162bcf4c12b1b44f0cecce66fa',
  ],
  [
    'V7 EC2 AP 0x1 RDX 0x600',
    { eip: AP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.EC2 },
    'acff2d22db95b8eb82272d844aa2ad1f8f84218ccbab003697acade12228a6e901256e160d41713c22fed92e0a1ed0e1',
    null,
  ],
  [
    'V8 GCE BSP 0x1',
    { eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 0x1n, vmmType: VmmType.GCE },
    'f9e03177dad7f4819ee193af7cfb70507d8a923ab513412e908bc73460a9dfdaa54215d58952816118ffb2ec281e7fd2',
    'cb4bb96848d70e929936330d815e0be1c38c6c77271c1917a481c0b2b8eb27cb8fde6f5cf42174e7425131c0327e20cc',
  ],
  [
    'V9 QEMU BSP EPYC-Milan 0x1',
    { eip: BSP_EIP, vcpuSignature: 0xa00f11, sevFeatures: 0x1n, vmmType: VmmType.QEMU },
    '728af287318db5f3fc4d2357a969483c4225956dc555b514a78d64ee372112d13b3dca8afd02cdbd1c55697d8ce087f5',
    'ecd037ed76b2a6b2345d67e458a7b0a3af42e1fa224449219def6f40c916f629fcabd63519dc9e58980764f690f87de2',
  ],
  [
    'V10 QEMU BSP EPYC-Genoa 0x1',
    { eip: BSP_EIP, vcpuSignature: 0xa10f10, sevFeatures: 0x1n, vmmType: VmmType.QEMU },
    '7d39672d1b8a3e38353a8eef23af9a14a850be7b9c80bd29898aff5cd2386719e5ce72ad660a022def56b15e5e0f899e',
    '85b5fddac96706bc6c493a65fc0aa0cbde8d6e2a953179c764c4ae000f8d9fba34ed45969520f6075e4a711653d1e699',
  ],
];

for (const [name, params, pageHash, ld] of VECTORS) {
  test(`${name}: page SHA-384${ld === null ? '' : ' and launch digest of that one VMSA page'}`, () => {
    const page = buildVmsa(params);
    assert.equal(sha384(page), pageHash);
    if (ld !== null) assert.equal(ldOf(page), ld);
  });
}

test('EC2 ignores the vCPU signature and GCE too (RDX is fixed); QEMU puts it in RDX', () => {
  fc.assert(
    fc.property(fc.nat(0xffffffff), (sig) => {
      const at = (vmmType: VmmType) =>
        buildVmsa({ eip: BSP_EIP, vcpuSignature: sig, sevFeatures: 1n, vmmType }).readBigUInt64LE(
          VmsaOffset.RDX,
        );
      return at(VmmType.EC2) === 0x600n && at(VmmType.GCE) === 0x600n && at(VmmType.QEMU) === BigInt(sig);
    }),
    { numRuns: 50 },
  );
});

test('SVSM VMSA: flat 32-bit segments, CR0 0x11, full RIP, SEV_FEATURES 0x1, MXCSR 0x1F80, FCW 0', () => {
  const eip = 0xffbc0100;
  const page = buildSvsmVmsa({ eip, vcpuSignature: EPYC_V4 });
  const seg = (at: number) => [page.readUInt16LE(at), page.readUInt16LE(at + 2), page.readUInt32LE(at + 4)];
  for (const s of [VmsaOffset.ES, VmsaOffset.SS, VmsaOffset.DS, VmsaOffset.FS]) {
    assert.deepEqual(seg(s), [16, 0xc93, 0xffffffff]);
  }
  assert.deepEqual(seg(VmsaOffset.CS), [8, 0xc9b, 0xffffffff]);
  assert.deepEqual(seg(VmsaOffset.GS), [0, 0x93, 0xffff]);
  assert.deepEqual(seg(VmsaOffset.TR), [0, 0x8b, 0xffff]);
  assert.equal(page.readBigUInt64LE(VmsaOffset.CS + 8), 0n);
  assert.equal(page.readBigUInt64LE(VmsaOffset.CR0), 0x11n);
  assert.equal(page.readBigUInt64LE(VmsaOffset.RIP), BigInt(eip));
  assert.equal(page.readBigUInt64LE(VmsaOffset.RDX), BigInt(EPYC_V4));
  assert.equal(page.readBigUInt64LE(VmsaOffset.SEV_FEATURES), 1n);
  assert.equal(page.readUInt32LE(VmsaOffset.MXCSR), 0x1f80);
  assert.equal(page.readUInt16LE(VmsaOffset.X87_FCW), 0);
  assert.equal(page.readBigUInt64LE(VmsaOffset.EFER), 0x1000n);
});

test('buildVmsa refuses out-of-range arguments as programming errors', () => {
  const base = { eip: BSP_EIP, vcpuSignature: EPYC_V4, sevFeatures: 1n, vmmType: VmmType.QEMU };
  assert.throws(() => buildVmsa({ ...base, eip: 2 ** 32 }), RangeError);
  assert.throws(() => buildVmsa({ ...base, vcpuSignature: -1 }), RangeError);
  assert.throws(() => buildVmsa({ ...base, sevFeatures: 1n << 64n }), RangeError);
  assert.throws(() => buildVmsa({ ...base, vmmType: 'kvmtool' as VmmType }), /unknown VMM type 'kvmtool'/);
});

test('vCPU signatures: cpu_sig(14,1,2) = 0xE12, cpu_sig(23,1,2) = 0x800F12, and the QEMU model table', () => {
  assert.deepEqual(cpuSignature(14, 1, 2), { ok: true, value: 0x0e12 });
  assert.deepEqual(cpuSignature(23, 1, 2), { ok: true, value: 0x800f12 });
  assert.deepEqual(cpuSignature(26, 0, 0), { ok: true, value: 0xb00f00 });
  const expected: Record<string, number> = {
    'EPYC-v4': 0x800f12,
    'EPYC-IBPB': 0x800f12,
    'EPYC-Rome': 0x830f10,
    'EPYC-Milan-v2': 0xa00f11,
    'EPYC-Genoa': 0xa10f10,
    'EPYC-Turin': 0xb00f00,
  };
  for (const [name, sig] of Object.entries(expected))
    assert.deepEqual(vcpuSignatureOf(name), { ok: true, value: sig });
  assert.equal(Object.keys(VCPU_SIGNATURES).length, 16);
});

test('vCPU signature errors: unknown type (with a case hint), out-of-range family/model/stepping', () => {
  const unknown = vcpuSignatureOf('EPYC-Zen9');
  assert.equal(unknown.ok, false);
  if (!unknown.ok) {
    assert.equal(unknown.error.code, MeasureErrorCode.UNKNOWN_VCPU_TYPE);
    assert.match(unknown.error.message, /unknown vCPU type 'EPYC-Zen9'.*known: EPYC, EPYC-v1/);
  }
  const cased = vcpuSignatureOf('epyc-milan');
  assert.equal(cased.ok, false);
  if (!cased.ok) assert.match(cased.error.message, /did you mean 'EPYC-Milan'/);
  assert.equal(vcpuSignatureOf('toString').ok, false);
  for (const [f, m, s] of [
    [0x10f, 0, 0],
    [25, 256, 0],
    [25, 1, 16],
    [-1, 0, 0],
  ] as const) {
    const r = cpuSignature(f, m, s);
    assert.equal(r.ok ? 'ok' : r.error.code, MeasureErrorCode.INVALID_PARAMETER, `${f}/${m}/${s}`);
  }
});

test('property: cpuSignature decodes back to family, model and stepping (CPUID Fn0000_0001_EAX fields)', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0x10e }), fc.nat(0xff), fc.nat(0xf), (family, model, stepping) => {
      const r = cpuSignature(family, model, stepping);
      if (!r.ok) return false;
      const v = r.value;
      const baseFamily = (v >> 8) & 0xf;
      const decodedFamily = baseFamily === 0xf ? baseFamily + ((v >> 20) & 0xff) : baseFamily;
      const decodedModel = (((v >> 16) & 0xf) << 4) | ((v >> 4) & 0xf);
      return (
        decodedFamily === family && decodedModel === model && (v & 0xf) === stepping && (v & 0xf000f000) === 0
      );
    }),
  );
});
