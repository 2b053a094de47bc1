/**
 * `snpsim measure`, run in-process through `main([...], io)`: sev-snp-measure's flags and outputs
 * (digests from its tests/test_guest.py), the JSON details, --dump-vmsa, and every input error
 * ending with exit code 2 and a message naming what is wrong.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ExitCode, main } from '../../guest-harness/index.js';
import {
  BSP_EIP,
  buildVmsa,
  guidToBytes,
  OVMF_TABLE_FOOTER_GUID,
  SVSM_INFO_GUID,
  VmmType,
} from '../../psp-firmware/index.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/ovmf/', import.meta.url));
const AMD_SEV = join(FIXTURES, 'ovmf_AmdSev_suffix.bin');
const OVMF_X64 = join(FIXTURES, 'ovmf_OvmfX64_suffix.bin');
const tmp = mkdtempSync(join(tmpdir(), 'snpsim-measure-'));
after(() => rmSync(tmp, { recursive: true, force: true }));
const EMPTY = join(tmp, 'empty');
writeFileSync(EMPTY, '');

async function measure(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } };
  const code = await main(['measure', ...args], io);
  return { code, out: out.join(''), err: err.join('') };
}

const SNP_4_VCPUS =
  '5061fffb019493a903613d56d54b94912a1a2f9e4502385f5c194616753720a92441310ba6c4933de877c36e23046ad5';
const SNP_DEFAULT_0X21 =
  '803f691094946e42068aaa3a8f9e26a5c89f36f7b73ecfb28c653360fe4b3aba7e534442e7e1e17895dfe778d0228977';
const OVMF_HASH =
  '086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74';
const kernel = ['--kernel', EMPTY, '--initrd', EMPTY];

test('sev-snp-measure flags: hex output by default, guest features default 0x1', async () => {
  const r = await measure(
    '--mode',
    'snp',
    '--vcpus',
    '4',
    '--vcpu-type',
    'EPYC-v4',
    '--ovmf',
    AMD_SEV,
    ...kernel,
    '--append',
    '',
  );
  assert.deepEqual(r, { code: ExitCode.OK, out: `${SNP_4_VCPUS}\n`, err: '' });
  // --mode defaults to snp
  assert.equal(
    (await measure('--vcpus=4', '--vcpu-type=EPYC-v4', `--ovmf=${AMD_SEV}`, ...kernel)).out,
    `${SNP_4_VCPUS}\n`,
  );
});

test('--guest-features 0x21 with --append; base64 and verbose outputs', async () => {
  const args = [
    '--vcpus',
    '1',
    '--vcpu-type',
    'EPYC-v4',
    '--ovmf',
    AMD_SEV,
    ...kernel,
    '--append',
    'console=ttyS0 loglevel=7',
    '--guest-features',
    '0x21',
  ];
  assert.equal((await measure(...args)).out, `${SNP_DEFAULT_0X21}\n`);
  assert.equal(
    (await measure(...args, '--guest-features', '33')).out,
    `${SNP_DEFAULT_0X21}\n`,
    'decimal as int(x, 0)',
  );
  assert.equal(
    (await measure(...args, '--output-format', 'base64')).out,
    `${Buffer.from(SNP_DEFAULT_0X21, 'hex').toString('base64')}\n`,
  );
  assert.equal(
    (await measure(...args, '-v')).out,
    `Calculated SEV_SNP guest measurement: ${SNP_DEFAULT_0X21}\n`,
  );
});

test('--vcpu-sig and --vcpu-family/--vcpu-model/--vcpu-stepping are the same as --vcpu-type', async () => {
  const base = ['--vcpus', '4', '--ovmf', AMD_SEV, ...kernel];
  assert.equal((await measure(...base, '--vcpu-sig', '0x800f12')).out, `${SNP_4_VCPUS}\n`);
  assert.equal((await measure(...base, '--vcpu-sig', '8392466')).out, `${SNP_4_VCPUS}\n`);
  assert.equal(
    (await measure(...base, '--vcpu-family', '23', '--vcpu-model', '1', '--vcpu-stepping', '2')).out,
    `${SNP_4_VCPUS}\n`,
  );
  assert.notEqual((await measure(...base, '--vcpu-type', 'EPYC-Milan')).out, `${SNP_4_VCPUS}\n`);
});

test('--mode snp:ovmf-hash, then --snp-ovmf-hash as the seed gives the same digest', async () => {
  const hash = await measure('--mode', 'snp:ovmf-hash', '--ovmf', AMD_SEV);
  assert.deepEqual(hash, { code: 0, out: `${OVMF_HASH}\n`, err: '' });
  const args = [
    '--vcpus',
    '1',
    '--vcpu-type',
    'EPYC-v4',
    '--ovmf',
    AMD_SEV,
    ...kernel,
    '--append',
    'console=ttyS0 loglevel=7',
    '--guest-features',
    '0x21',
  ];
  assert.equal((await measure(...args, '--snp-ovmf-hash', OVMF_HASH)).out, `${SNP_DEFAULT_0X21}\n`);
  // a different seed changes the digest: the seed is used, not the image
  assert.notEqual((await measure(...args, '--snp-ovmf-hash', 'ab'.repeat(48))).out, `${SNP_DEFAULT_0X21}\n`);
});

test('--vmm-type ec2 (current RDX 0x600 and --ec2-legacy-rdx) and gce, which need no vCPU type', async () => {
  const base = ['--vcpus', '1', '--ovmf', AMD_SEV, ...kernel];
  assert.equal(
    (await measure(...base, '--vmm-type', 'ec2')).out,
    '0883bd0eeb716e65b7b977a321c278d1e51b33b5c655fab985443bbcc65c086b9c15e8a0bd8811050dec7e24964e5056\n',
  );
  assert.equal(
    (await measure(...base, '--vmm-type', 'ec2', '--ec2-legacy-rdx')).out,
    '7d3756157c805bf6adf617064c8552e8c1688fa1c8756f11cbf56ba5d25c9270fb69c0505c1cbe1c5c66c0e34c6ed3be\n',
  );
  assert.equal(
    (await measure(...base, '--vmm-type', 'gce')).out,
    '5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e\n',
  );
  const noted = await measure(...base, '--vmm-type', 'gce', '--vcpu-type', 'EPYC-v4');
  assert.equal(noted.code, 0);
  assert.match(noted.err, /vCPU signature is not measured for --vmm-type gce/);
});

interface MeasureJson {
  mode: string;
  vmmType: string;
  vcpuSignature: string | null;
  guestFeatures: string;
  ovmf: { gpa: string; sevEsResetEip: string; sections: { name: string }[] };
  kernel: { kernel: string; initrd: string; cmdline: string } | null;
  apResetEip: string;
  regions: { name: string; pageType: string; gpa: string; pages: number; vcpu?: number; eip?: string }[];
  pagesMeasured: number;
  measurement: string;
  trace?: { index: number; pageType: string; gpa: string; contents: string | null; digest: string }[];
}

test('--json: inputs, regions with pages measured per section, AP reset EIP; --trace adds every step', async () => {
  const r = await measure('--vcpus', '2', '--vcpu-type', 'EPYC-v4', '--ovmf', AMD_SEV, ...kernel, '--json');
  assert.equal(r.code, 0);
  const doc = JSON.parse(r.out) as MeasureJson;
  assert.equal(doc.mode, 'snp');
  assert.equal(doc.vcpuSignature, '0x800f12');
  assert.equal(doc.guestFeatures, '0x1');
  assert.equal(doc.apResetEip, '0x80b004');
  assert.equal(doc.ovmf.gpa, '0xfffff000');
  assert.equal(doc.ovmf.sections.length, 7);
  assert.equal(doc.kernel?.kernel, 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  assert.deepEqual(
    doc.regions.map((x) => `${x.name}:${x.pageType}:${x.pages}`),
    [
      'OVMF:NORMAL:1',
      'SNP_SEC_MEM:ZERO:9',
      'SNP_SEC_MEM:ZERO:3',
      'SNP_SECRETS:SECRETS:1',
      'CPUID:CPUID:1',
      'SVSM_CAA:ZERO:1',
      'SNP_KERNEL_HASHES:NORMAL:1',
      'SNP_SEC_MEM:ZERO:15',
      'VMSA:VMSA:1',
      'VMSA:VMSA:1',
    ],
  );
  assert.deepEqual(doc.regions.at(-1), {
    name: 'VMSA',
    pageType: 'VMSA',
    gpa: '0xfffffffff000',
    size: '0x1000',
    pages: 1,
    vcpu: 1,
    eip: '0x80b004',
  });
  assert.equal(doc.pagesMeasured, 34);
  assert.equal(doc.trace, undefined);
  const traced = JSON.parse(
    (await measure('--vcpus', '2', '--vcpu-type', 'EPYC-v4', '--ovmf', AMD_SEV, '--trace')).out,
  ) as MeasureJson;
  assert.equal(traced.trace?.length, traced.pagesMeasured);
  assert.equal(traced.trace?.at(-1)?.digest, traced.measurement);
  assert.deepEqual(traced.trace?.[1], {
    index: 1,
    pageType: 'ZERO',
    gpa: '0x800000',
    contents: null,
    digest: traced.trace?.[1]?.digest,
  });
  assert.equal(traced.trace?.[0]?.pageType, 'NORMAL');
  assert.match(traced.trace?.[0]?.contents ?? '', /^[0-9a-f]{96}$/);
});

test('--dump-vmsa writes vmsa<N>.bin, byte-exact with the VMSA builder', async () => {
  const dir = mkdtempSync(join(tmp, 'dump-'));
  const r = await measure(
    '--vcpus',
    '2',
    '--vcpu-type',
    'EPYC-v4',
    '--ovmf',
    AMD_SEV,
    '--dump-vmsa',
    '--dump-dir',
    dir,
  );
  assert.equal(r.code, 0);
  assert.deepEqual(
    readFileSync(join(dir, 'vmsa0.bin')),
    buildVmsa({ eip: BSP_EIP, vcpuSignature: 0x800f12, sevFeatures: 1n, vmmType: VmmType.QEMU }),
  );
  assert.deepEqual(
    readFileSync(join(dir, 'vmsa1.bin')),
    buildVmsa({ eip: 0x80b004, vcpuSignature: 0x800f12, sevFeatures: 1n, vmmType: VmmType.QEMU }),
  );
  assert.throws(() => readFileSync(join(dir, 'vmsa2.bin')), /ENOENT/);
});

/** A minimal SVSM image: footer table with the SVSM info entry (entry point at +0x40), no sections. */
function svsmFile(): string {
  const img = Buffer.alloc(0x1000);
  const footerAt = img.length - 50;
  img.writeUInt32LE(0x40, footerAt - 22);
  img.writeUInt16LE(22, footerAt - 18);
  guidToBytes(SVSM_INFO_GUID).copy(img, footerAt - 16);
  img.writeUInt16LE(22 + 18, footerAt);
  guidToBytes(OVMF_TABLE_FOOTER_GUID).copy(img, footerAt + 2);
  const path = join(tmp, 'svsm.bin');
  writeFileSync(path, img);
  return path;
}

test('--mode snp:svsm: --svsm with --vars-size or --vars-file (same digest), QEMU only', async () => {
  const svsm = svsmFile();
  const vars = join(tmp, 'OVMF_VARS.fd');
  writeFileSync(vars, Buffer.alloc(0x84000));
  const base = [
    '--mode',
    'snp:svsm',
    '--vcpus',
    '2',
    '--vcpu-type',
    'EPYC-v4',
    '--ovmf',
    AMD_SEV,
    '--svsm',
    svsm,
  ];
  const bySize = await measure(...base, '--vars-size', String(0x84000), '--json');
  assert.equal(bySize.code, 0, bySize.err);
  const doc = JSON.parse(bySize.out) as MeasureJson & { svsm: { gpa: string } };
  assert.equal(doc.svsm.gpa, `0x${(0xfffff000 - 0x84000 - 0x1000).toString(16)}`);
  assert.equal(doc.apResetEip, `0x${(0xfffff000 - 0x84000 - 0x1000 + 0x40).toString(16)}`);
  assert.equal(doc.guestFeatures, '0x1');
  const byFile = await measure(...base, '--vars-file', vars);
  assert.equal(byFile.out, `${doc.measurement}\n`);
  assert.match(
    (await measure(...base, '--vars-size', '1', '--vars-file', vars)).err,
    /exactly one of --vars-size SIZE and --vars-file PATH/,
  );
  assert.match((await measure(...base, '--vars-size', '0', '--vmm-type', 'ec2')).err, /QEMU only/);
  assert.match((await measure(...base.slice(0, -2), '--vars-size', '0')).err, /needs --svsm PATH/);
  assert.match(
    (await measure(...base, '--vars-size', '0', '--kernel', EMPTY)).err,
    /--kernel is not used in --mode snp:svsm/,
  );
  const noted = await measure(...base, '--vars-size', '0', '--guest-features', '0x21');
  assert.equal(noted.code, 0);
  assert.match(noted.err, /--guest-features is not used in --mode snp:svsm/);
  const noInfo = await measure(
    '--mode',
    'snp:svsm',
    '--vcpus',
    '1',
    '--vcpu-type',
    'EPYC-v4',
    '--ovmf',
    AMD_SEV,
    '--svsm',
    AMD_SEV,
    '--vars-size',
    '0',
  );
  assert.equal(noInfo.code, ExitCode.USAGE);
  assert.match(noInfo.err, /SVSM image '.*' has no SVSM info entry/);
});

const GARBLED = join(tmp, 'garbled.fd');
writeFileSync(GARBLED, Buffer.concat([readFileSync(AMD_SEV).subarray(0, 4046), Buffer.alloc(50)]));

const ERRORS: [string, string[], RegExp][] = [
  ['missing --ovmf', ['--vcpus', '1', '--vcpu-type', 'EPYC-v4'], /missing --ovmf PATH/],
  ['missing --vcpus', ['--ovmf', AMD_SEV, '--vcpu-type', 'EPYC-v4'], /missing --vcpus N in --mode snp/],
  [
    'vcpus < 1',
    ['--ovmf', AMD_SEV, '--vcpus', '0', '--vcpu-type', 'EPYC-v4'],
    /--vcpus 0 is outside 1\.\.4096/,
  ],
  [
    'vcpus not a number',
    ['--ovmf', AMD_SEV, '--vcpus', 'four', '--vcpu-type', 'EPYC-v4'],
    /--vcpus 'four' is not a decimal integer/,
  ],
  [
    'unreadable OVMF',
    ['--ovmf', join(tmp, 'nope.fd'), '--vcpus', '1', '--vcpu-type', 'EPYC-v4'],
    /cannot read --ovmf '.*nope\.fd': no such file/,
  ],
  [
    'OVMF is a directory',
    ['--ovmf', tmp, '--vcpus', '1', '--vcpu-type', 'EPYC-v4'],
    /cannot read --ovmf '.*': is a directory/,
  ],
  [
    'unreadable kernel',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--kernel', join(tmp, 'vmlinuz')],
    /cannot read --kernel '.*vmlinuz': no such file/,
  ],
  [
    'garbled OVMF',
    ['--ovmf', GARBLED, '--vcpus', '1', '--vcpu-type', 'EPYC-v4'],
    /firmware: OVMF image '.*garbled\.fd': no GUIDed footer table/,
  ],
  [
    'kernel without hashes section',
    ['--ovmf', OVMF_X64, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--kernel', EMPTY],
    /has no kernel-hashes section.*build OVMF from AmdSevX64\.dsc or drop --kernel/,
  ],
  [
    'initrd without kernel',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--initrd', EMPTY],
    /--initrd needs --kernel/,
  ],
  [
    'append without kernel',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--append', 'x'],
    /--append needs --kernel/,
  ],
  [
    'unknown vCPU type',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-Zen9'],
    /unknown vCPU type 'EPYC-Zen9'/,
  ],
  [
    'no vCPU type for QEMU',
    ['--ovmf', AMD_SEV, '--vcpus', '1'],
    /missing --vcpu-type, --vcpu-sig or --vcpu-family/,
  ],
  [
    'two vCPU sources',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--vcpu-sig', '1'],
    /one of --vcpu-type, --vcpu-sig or/,
  ],
  ['partial family', ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-family', '25'], /go together/],
  [
    'family out of range',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-family', '25', '--vcpu-model', '300', '--vcpu-stepping', '0'],
    /vCPU model 300 is outside 0\.\.255/,
  ],
  [
    'bad --vcpu-sig',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-sig', '0xzz'],
    /--vcpu-sig '0xzz' is not an integer/,
  ],
  [
    'bad hex seed',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--snp-ovmf-hash', 'abcd'],
    /--snp-ovmf-hash must be 96 hex digits/,
  ],
  [
    'bad --guest-features',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--guest-features', '0x'],
    /--guest-features '0x' is not an integer/,
  ],
  [
    'guest features without SNPActive',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--guest-features', '0x20'],
    /firmware: guest features 0x20 lack bit 0 \(SNPActive\)/,
  ],
  [
    'guest features above 64 bits',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--guest-features', `0x1${'0'.repeat(16)}`],
    /not a 64-bit value/,
  ],
  [
    'unknown VMM type',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vmm-type', 'xen'],
    /unknown VMM type 'xen'; known: QEMU, ec2, gce/,
  ],
  [
    'legacy RDX off EC2',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--ec2-legacy-rdx'],
    /--ec2-legacy-rdx applies to --vmm-type ec2 only/,
  ],
  [
    'bad output format',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--output-format', 'raw'],
    /--output-format must be hex or base64/,
  ],
  [
    'unknown mode',
    ['--mode', 'tdx', '--ovmf', AMD_SEV],
    /unknown --mode 'tdx'; known: snp, snp:ovmf-hash, snp:svsm/,
  ],
  [
    'SEV mode',
    ['--mode', 'sev', '--ovmf', AMD_SEV],
    /--mode sev is not implemented: snpsim measures SEV-SNP/,
  ],
  ['SEV-ES mode', ['--mode', 'seves', '--ovmf', AMD_SEV, '--vcpus', '1'], /--mode seves is not implemented/],
  [
    'flag of another mode',
    ['--mode', 'snp:ovmf-hash', '--ovmf', AMD_SEV, '--kernel', EMPTY],
    /--kernel is not used in --mode snp:ovmf-hash/,
  ],
  [
    '--dump-dir without --dump-vmsa',
    ['--ovmf', AMD_SEV, '--vcpus', '1', '--vcpu-type', 'EPYC-v4', '--dump-dir', tmp],
    /--dump-dir goes with --dump-vmsa/,
  ],
  ['unknown flag', ['--ovmf', AMD_SEV, '--vcpus', '1', '--bogus'], /Unknown option '--bogus'/],
  ['positional argument', ['--ovmf', AMD_SEV, 'extra'], /extra/],
];

for (const [name, args, re] of ERRORS) {
  test(`error, exit 2: ${name}`, async () => {
    const r = await measure(...args);
    assert.equal(r.code, ExitCode.USAGE, r.err);
    assert.equal(r.out, '');
    assert.match(r.err, /^snpsim measure: SNPSIM_(USAGE|INPUT_INVALID): /);
    assert.match(r.err, re);
    assert.doesNotMatch(r.err, /at .*\.js:\d+/, 'no stack trace');
  });
}

test('snpsim measure --help prints the usage with every sev-snp-measure flag', async () => {
  const out: string[] = [];
  const io = { stdout: { write: (s: string) => out.push(s) }, stderr: { write: () => undefined } };
  assert.equal(await main(['measure', '--help'], io), ExitCode.OK);
  for (const flag of [
    '--mode',
    '--vcpus',
    '--vcpu-type',
    '--vcpu-sig',
    '--vcpu-family',
    '--vmm-type',
    '--ovmf',
    '--kernel',
    '--initrd',
    '--append',
    '--guest-features',
    '--snp-ovmf-hash',
    '--output-format',
    '--dump-vmsa',
    '--svsm',
    '--vars-size',
    '--vars-file',
    '--json',
    '--trace',
  ]) {
    assert.ok(out.join('').includes(flag), flag);
  }
});
