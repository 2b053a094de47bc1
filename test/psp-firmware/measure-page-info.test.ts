/**
 * PAGE_INFO and the launch-digest chain: vectors S1–S16 of shared/vectors/measure-small.md (copied
 * in test/fixtures/measure/), every page type, the VMPL byte orders, 2 MB pages and the refusals.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  LaunchDigest,
  LD_SIZE,
  MeasureErrorCode,
  type MeasureStep,
  PAGE_INFO_SIZE,
  PageInfoOffset,
  PageInfoVmplOrder,
  RMP_GPA_MAX,
  SnpPageType,
  VMSA_GPA,
  VmsaOffset,
} from '../../psp-firmware/index.js';

const PAGE = 0x1000;
const sha384 = (b: Uint8Array) => createHash('sha384').update(b).digest('hex');
const zeroPage = () => new Uint8Array(PAGE);

/** Digest after `steps` applied to a fresh LaunchDigest; fails the test on a refusal. */
function digestOf(steps: (ld: LaunchDigest) => unknown, vmplOrder?: PageInfoVmplOrder): string {
  const ld = new LaunchDigest(vmplOrder === undefined ? {} : { vmplOrder });
  const bad = steps(ld);
  assert.equal(bad, undefined);
  return ld.digestHex();
}

/** The PAGE_INFO bytes of one step, captured by hashing: recomputed independently of LaunchDigest. */
function pageInfo(cur: Buffer, contents: Buffer, type: number, gpa: bigint, tail = [0, 0, 0, 0, 0]): Buffer {
  const pi = Buffer.alloc(PAGE_INFO_SIZE);
  cur.copy(pi, 0);
  contents.copy(pi, 0x30);
  pi.writeUInt16LE(0x70, 0x60);
  pi[0x62] = type;
  Buffer.from(tail).copy(pi, 0x63);
  pi.writeBigUInt64LE(gpa, 0x68);
  return pi;
}

test('S1/S2: SHA-384 and SHA-256 of a zero page (sanity of the vectors themselves)', () => {
  assert.equal(
    sha384(zeroPage()),
    'c0e59a3e3ffbd3b5c75428fb36432facabc745944296ff515f737c4fef4efc64586809f7a16f56354a1eaecf2aa8d774',
  );
  assert.equal(
    createHash('sha256').update(zeroPage()).digest('hex'),
    'ad7facb2586fc6e966c004d7d1d16b024f5805ff7cb47c7a85dabd8b48892ca7',
  );
});

test('S3/S8: PAGE_INFO layout is 0x70 bytes with LENGTH, PAGE_TYPE and GPA where the firmware has them', () => {
  assert.equal(PAGE_INFO_SIZE, 0x70);
  assert.deepEqual(
    { ...PageInfoOffset },
    {
      DIGEST_CUR: 0,
      CONTENTS: 0x30,
      LENGTH: 0x60,
      PAGE_TYPE: 0x62,
      IMI_PAGE: 0x63,
      VMPL_PERMS: 0x64,
      GPA: 0x68,
    },
  );
  // S3: ZERO page at GPA 0 from LD 0 = 96 zero bytes + 70000300000000000000000000000000
  const s3 = Buffer.concat([Buffer.alloc(96), Buffer.from('70000300000000000000000000000000', 'hex')]);
  assert.equal(
    digestOf((ld) => ld.updatePage(SnpPageType.ZERO, null, 0)),
    createHash('sha384').update(s3).digest('hex'),
  );
  // S8: NORMAL zero page: 48 zero bytes, S1, 70000100...
  const s1 = Buffer.from(sha384(zeroPage()), 'hex');
  const s8 = Buffer.concat([Buffer.alloc(48), s1, Buffer.from('70000100000000000000000000000000', 'hex')]);
  assert.equal(
    digestOf((ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0)),
    createHash('sha384').update(s8).digest('hex'),
  );
});

const SINGLE_STEP_VECTORS: [string, (ld: LaunchDigest) => unknown, string][] = [
  [
    'S4 ZERO @0',
    (ld) => ld.updatePage(SnpPageType.ZERO, null, 0),
    '70c0ecaab9608f14ebf8ac6f0f07bcd8728f4e2ab30382b539b4de4de904ca9f8ebdf4b2cd3cd84dd996bd55dd794676',
  ],
  [
    'S5 UNMEASURED @0',
    (ld) => ld.updatePage(SnpPageType.UNMEASURED, null, 0),
    'ed501ced343b88df8d4f114dc336e76fa53d3ad6ef71dab22a38755569189d2844af45f162ec25b45beefc8ea308cba7',
  ],
  [
    'S6 SECRETS @0x80D000',
    (ld) => ld.updatePage(SnpPageType.SECRETS, null, 0x80d000),
    'e82e99caf82a32c31ec5070eef9e2135866d8f7de60d756814f3bd8c989c1e826622e0a97dad026c6d9d81818780e6a2',
  ],
  [
    'S7 CPUID @0x80E000',
    (ld) => ld.updatePage(SnpPageType.CPUID, null, 0x80e000),
    'c9e46442d2b4ddb823fa6b4a907930de7e93901180c5a3126ba234193059a0a51a21ba82f05d2fe0f3136f22b1b1a8e4',
  ],
  [
    'S9 NORMAL zero page @0',
    (ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0),
    '9d13634b6014bb21cf059b2dc694e7bff01a8a7137041100cd2b695f3d10fb687267b97808b27f8f471d943bc6f53a20',
  ],
  [
    'S10 NORMAL zero page @0x1000',
    (ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0x1000),
    'e6e4d78904d9d6b33c0cbfd121998fd2d11744dae606b3aee35e2a45d6869b60b35c63928a9232bef72d6be386f48ec6',
  ],
  [
    'S11 NORMAL @0 then ZERO @0x1000',
    (ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0) ?? ld.updatePage(SnpPageType.ZERO, null, 0x1000),
    '3bb77aec4f0d90c147b6b7884b6bd5741994d2575305f89639c95186690d949261186702ef51f2fa7c0dd4c90f03ebfd',
  ],
  [
    'S12 ZERO @0x1000 then NORMAL @0 (order matters)',
    (ld) => ld.updatePage(SnpPageType.ZERO, null, 0x1000) ?? ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0),
    '01df08676606c46d74c6e01f0392457b23fe411ad8dac289cc2e74e4e111ce60723012c8fcb7f95e4568aa7514800c5c',
  ],
];

for (const [name, steps, expected] of SINGLE_STEP_VECTORS) {
  test(`${name}`, () => assert.equal(digestOf(steps), expected));
}

test('S14/S15: a page with byte i = i & 0xFF as NORMAL at 0xFFFFF000', () => {
  const page = Uint8Array.from({ length: PAGE }, (_, i) => i & 0xff);
  assert.equal(
    sha384(page),
    '166f9617070665894eb30e3968ee7642d7fd459089bee2ccae3aa4ae1b658eb53e2780a0b9e10ae5efe7ed112be3bf59',
  );
  assert.equal(
    digestOf((ld) => ld.updatePage(SnpPageType.NORMAL, page, 0xfffff000)),
    '79d7e453f7b541d04f7f51cccc6f4acca624b7a97430595dd7c98bd8c7a897656a91c611473f137680bd00e9e72e47c4',
  );
});

const S13 =
  '0e520f80ce6849a784e067bdd85b3db5d4f3d9b204de990fbb778b2129c6373d335722cac7fe724d3d2580187b121f4a';

test('S13: a 2 MB page of 0xAA is 512 PAGE_INFO steps (update2M, updatePages and 512 updatePage agree)', () => {
  const big = new Uint8Array(0x200000).fill(0xaa);
  const ld = new LaunchDigest();
  assert.equal(ld.update2M(SnpPageType.NORMAL, big, 0x200000), undefined);
  assert.equal(ld.digestHex(), S13);
  assert.equal(ld.steps, 512);
  assert.equal(
    digestOf((d) => d.updatePages(SnpPageType.NORMAL, big, 0x200000, big.length)),
    S13,
  );
  assert.equal(
    digestOf((d) => {
      for (let i = 0; i < 512; i++) {
        const bad = d.updatePage(
          SnpPageType.NORMAL,
          big.subarray(i * PAGE, (i + 1) * PAGE),
          0x200000 + i * PAGE,
        );
        if (bad !== undefined) return bad;
      }
      return undefined;
    }),
    S13,
  );
});

test('2 MB: unaligned GPA and 4K-only page types are refused, the digest is unchanged', () => {
  const ld = new LaunchDigest();
  const before = ld.digestHex();
  assert.equal(ld.update2M(SnpPageType.ZERO, null, 0x201000)?.code, MeasureErrorCode.INVALID_GPA);
  for (const t of [SnpPageType.VMSA, SnpPageType.SECRETS, SnpPageType.CPUID]) {
    assert.equal(ld.update2M(t, null, 0x200000)?.code, MeasureErrorCode.INVALID_PAGE_SIZE, `type ${t}`);
  }
  assert.equal(ld.update2M(SnpPageType.ZERO, null, 0x400000), undefined);
  assert.equal(ld.steps, 512);
  assert.notEqual(ld.digestHex(), before);
});

const S16 =
  'ad54237d3b3a662a8fc9913646e4d8ba585bb68261f1e1570a3752b93c4333fe8066de557e5a36440e415463a78d53a3';

test('S16: VMPL1 0x0F, VMPL2 0x01 in the firmware byte order (0x64 rsvd, 0x65 vmpl1, 0x66 vmpl2, 0x67 vmpl3)', () => {
  assert.equal(
    digestOf((ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0, { vmpl1: 0x0f, vmpl2: 0x01 })),
    S16,
  );
  // the default order is the firmware's
  assert.equal(new LaunchDigest().vmplOrder, PageInfoVmplOrder.FIRMWARE);
});

test('tools VMPL order: 0x64 vmpl3, 0x65 vmpl2, 0x66 vmpl1, 0x67 0 — and equal to the firmware order when all masks are 0', () => {
  const s1 = Buffer.from(sha384(zeroPage()), 'hex');
  const tools = pageInfo(Buffer.alloc(48), s1, 1, 0n, [0, 0x03, 0x01, 0x0f, 0]);
  assert.equal(
    digestOf(
      (ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0, { vmpl1: 0x0f, vmpl2: 0x01, vmpl3: 0x03 }),
      PageInfoVmplOrder.TOOLS,
    ),
    createHash('sha384').update(tools).digest('hex'),
  );
  assert.notEqual(
    digestOf(
      (ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0, { vmpl1: 0x0f }),
      PageInfoVmplOrder.TOOLS,
    ),
    digestOf(
      (ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0, { vmpl1: 0x0f }),
      PageInfoVmplOrder.FIRMWARE,
    ),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 6 }), fc.nat(0x7ffff), (type, gfn) => {
      const contents = type <= 2 ? zeroPage() : null;
      const a = digestOf((ld) => ld.updatePage(type, contents, gfn * PAGE), PageInfoVmplOrder.TOOLS);
      const b = digestOf((ld) => ld.updatePage(type, contents, gfn * PAGE), PageInfoVmplOrder.FIRMWARE);
      return a === b;
    }),
    { numRuns: 50 },
  );
});

test('IMI_PAGE is bit 0 of byte 0x63', () => {
  const s1 = Buffer.from(sha384(zeroPage()), 'hex');
  const expected = createHash('sha384')
    .update(pageInfo(Buffer.alloc(48), s1, 1, 0x5000n, [1, 0, 0, 0, 0]))
    .digest('hex');
  assert.equal(
    digestOf((ld) => ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0x5000, { imi: true })),
    expected,
  );
});

test('VMSA pages: CONTENTS hashes the page with GUEST_TSC_SCALE (0x2F0) and GUEST_TSC_OFFSET (0x2F8) as 0', () => {
  const vmsa = Uint8Array.from({ length: PAGE }, (_, i) => (i * 7) & 0xff);
  const withTsc = Uint8Array.from(vmsa);
  withTsc.fill(0x5a, VmsaOffset.GUEST_TSC_SCALE, VmsaOffset.GUEST_TSC_OFFSET + 8);
  const zeroed = Uint8Array.from(vmsa);
  zeroed.fill(0, 0x2f0, 0x300);
  const expected = createHash('sha384')
    .update(pageInfo(Buffer.alloc(48), Buffer.from(sha384(zeroed), 'hex'), 2, BigInt(VMSA_GPA)))
    .digest('hex');
  assert.equal(
    digestOf((ld) => ld.updatePage(SnpPageType.VMSA, withTsc, VMSA_GPA)),
    expected,
  );
  // the caller's page is not modified
  assert.equal(withTsc[0x2f0], 0x5a);
  // a byte outside the TSC fields is measured
  const other = Uint8Array.from(withTsc);
  other[0x300] = (other[0x300] ?? 0) ^ 1;
  assert.notEqual(
    digestOf((ld) => ld.updatePage(SnpPageType.VMSA, other, VMSA_GPA)),
    expected,
  );
});

test('ZERO, UNMEASURED, SECRETS and CPUID measure 48 zero bytes whatever the page holds', () => {
  const junk = new Uint8Array(PAGE).fill(0x77);
  for (const t of [SnpPageType.ZERO, SnpPageType.UNMEASURED, SnpPageType.SECRETS, SnpPageType.CPUID]) {
    assert.equal(
      digestOf((ld) => ld.updatePage(t, junk, 0x3000)),
      digestOf((ld) => ld.updatePage(t, null, 0x3000)),
      `type ${t}`,
    );
  }
});

test('reserved page types 0 and 7 and non-3-bit values are refused with INVALID_PAGE_TYPE', () => {
  const ld = new LaunchDigest();
  for (const t of [0, 7, 8, -1, 1.5, Number.NaN]) {
    const bad = ld.updatePage(t, zeroPage(), 0);
    assert.equal(bad?.code, MeasureErrorCode.INVALID_PAGE_TYPE, `type ${t}`);
    assert.equal(bad?.layer, 'firmware');
  }
  assert.match(ld.updatePage(7, null, 0)?.message ?? '', /reserved PAGE_TYPE 7/);
  assert.equal(ld.steps, 0);
  assert.equal(ld.digestHex(), '0'.repeat(96));
});

test('bad GPA, contents and permission masks are refused before any state changes', () => {
  const ld = new LaunchDigest();
  const cases: [unknown, string][] = [
    [ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0x1001), MeasureErrorCode.INVALID_GPA],
    [ld.updatePage(SnpPageType.ZERO, null, -0x1000), MeasureErrorCode.INVALID_GPA],
    [ld.updatePage(SnpPageType.ZERO, null, RMP_GPA_MAX + PAGE), MeasureErrorCode.INVALID_GPA],
    [ld.updatePage(SnpPageType.NORMAL, null, 0), MeasureErrorCode.INVALID_CONTENTS],
    [ld.updatePage(SnpPageType.VMSA, new Uint8Array(100), VMSA_GPA), MeasureErrorCode.INVALID_CONTENTS],
    [ld.updatePage(SnpPageType.ZERO, new Uint8Array(10), 0), MeasureErrorCode.INVALID_CONTENTS],
    [
      ld.updatePages(SnpPageType.NORMAL, new Uint8Array(0x1800), 0, 0x1800),
      MeasureErrorCode.INVALID_CONTENTS,
    ],
    [ld.updatePages(SnpPageType.SECRETS, null, 0, 0x2000), MeasureErrorCode.INVALID_PAGE_SIZE],
    [ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0, { vmpl1: 0x100 }), MeasureErrorCode.INVALID_PERMS],
    [ld.updatePage(SnpPageType.NORMAL, zeroPage(), 0, { vmpl3: -1 }), MeasureErrorCode.INVALID_PERMS],
  ];
  for (const [bad, code] of cases) assert.equal((bad as { code?: string } | undefined)?.code, code);
  assert.equal(ld.steps, 0);
  assert.equal(ld.digestHex(), '0'.repeat(96));
  // the highest GPA an RMP entry holds is accepted
  assert.equal(ld.updatePage(SnpPageType.ZERO, null, RMP_GPA_MAX), undefined);
});

test('seed, reset, copyDigestTo and digest copies', () => {
  const ld = new LaunchDigest();
  assert.equal(ld.reset(new Uint8Array(47))?.code, MeasureErrorCode.INVALID_SEED);
  const seed = Buffer.alloc(LD_SIZE, 0xab);
  assert.equal(ld.reset(seed), undefined);
  assert.equal(ld.digestHex(), 'ab'.repeat(48));
  ld.updatePage(SnpPageType.ZERO, null, 0);
  const expected = createHash('sha384')
    .update(pageInfo(seed, Buffer.alloc(48), 3, 0n))
    .digest();
  assert.deepEqual(ld.digest(), expected);
  const target = new Uint8Array(64).fill(0xee);
  ld.copyDigestTo(target, 8);
  assert.deepEqual(Buffer.from(target.subarray(8, 56)), expected);
  assert.equal(target[7], 0xee);
  assert.equal(target[56], 0xee);
  assert.throws(() => ld.copyDigestTo(new Uint8Array(40)), RangeError);
  const copy = ld.digest();
  copy.fill(0);
  assert.deepEqual(ld.digest(), expected, 'digest() returns a copy');
  ld.reset();
  assert.equal(ld.digestHex(), '0'.repeat(96));
  assert.equal(ld.steps, 0);
});

test('trace: onStep reports every step with its GPA, CONTENTS and the digest after it', () => {
  const steps: MeasureStep[] = [];
  const ld = new LaunchDigest({ onStep: (s) => steps.push(s) });
  ld.updatePages(SnpPageType.NORMAL, new Uint8Array(2 * PAGE), 0x10000, 2 * PAGE);
  ld.updatePage(SnpPageType.ZERO, null, 0x20000);
  assert.deepEqual(
    steps.map((s) => [s.index, s.pageType, s.gpa, s.contents]),
    [
      [0, 1, 0x10000, sha384(zeroPage())],
      [1, 1, 0x11000, sha384(zeroPage())],
      [2, 3, 0x20000, null],
    ],
  );
  assert.equal(steps.at(-1)?.digest, ld.digestHex());
});

test('property: updatePages over n pages equals n single updatePage steps, and differs if any byte changes', () => {
  fc.assert(
    fc.property(
      fc
        .uint8Array({ minLength: PAGE, maxLength: 3 * PAGE })
        .map((a) => a.subarray(0, a.length - (a.length % PAGE))),
      fc.nat(0xfffff),
      fc.nat(),
      (data, gfn, flip) => {
        fc.pre(data.length > 0);
        const gpa = gfn * PAGE;
        const whole = digestOf((ld) => ld.updatePages(SnpPageType.NORMAL, data, gpa, data.length));
        const paged = digestOf((ld) => {
          for (let o = 0; o < data.length; o += PAGE) {
            const bad = ld.updatePage(SnpPageType.NORMAL, data.subarray(o, o + PAGE), gpa + o);
            if (bad !== undefined) return bad;
          }
          return undefined;
        });
        const changed = Uint8Array.from(data);
        const i = flip % changed.length;
        changed[i] = (changed[i] ?? 0) ^ 1;
        const other = digestOf((ld) => ld.updatePages(SnpPageType.NORMAL, changed, gpa, data.length));
        return whole === paged && whole !== other;
      },
    ),
    { numRuns: 30 },
  );
});

test('property: the chain can be split anywhere — measuring a prefix, then seeding a new digest with it, gives the same result', () => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ type: fc.integer({ min: 1, max: 6 }), gfn: fc.nat(0xffff) }), {
        minLength: 1,
        maxLength: 12,
      }),
      fc.nat(),
      (steps, cut) => {
        const apply = (ld: LaunchDigest, s: { type: number; gfn: number }) =>
          ld.updatePage(s.type, s.type <= 2 ? zeroPage() : null, s.type === 2 ? VMSA_GPA : s.gfn * PAGE);
        const k = cut % (steps.length + 1);
        const full = new LaunchDigest();
        for (const s of steps) assert.equal(apply(full, s), undefined);
        const first = new LaunchDigest();
        for (const s of steps.slice(0, k)) apply(first, s);
        const second = new LaunchDigest();
        second.reset(first.digest());
        for (const s of steps.slice(k)) apply(second, s);
        return second.digestHex() === full.digestHex() && full.steps === steps.length;
      },
    ),
    { numRuns: 60 },
  );
});
