/**
 * `snpsim measure`: the expected SNP launch digest of a QEMU/KVM, EC2 or GCE guest (or an OVMF +
 * COCONUT-SVSM guest), with the flags of virtee/sev-snp-measure so its users can switch. Hex output
 * by default; `--json` for the details (regions and pages measured, AP reset EIP, per-step digests
 * with `--trace`). Every input error is a SnpsimError with exit code 2.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  cmdlineBytes,
  cpuSignature,
  type LaunchMeasurement,
  MAX_VCPUS,
  type MeasureResult,
  type MeasureStep,
  type OvmfImage,
  parseOvmf,
  type SevHashes,
  SNP_PAGE_TYPE_NAMES,
  sectionTypeName,
  snpLaunchDigest,
  snpOvmfHash,
  svsmLaunchDigest,
  VmmType,
  vcpuSignatureOf,
} from '../../psp-firmware/index.js';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import type { CliCommand, CliIo } from './command.js';

export const MEASURE_USAGE = `usage: snpsim measure --ovmf PATH [--mode snp|snp:ovmf-hash|snp:svsm] [options]

Computes the expected SEV-SNP launch digest (attestation report MEASUREMENT) of a guest, the way
virtee/sev-snp-measure does, with the same flags.

modes (--mode, default snp):
  snp              OVMF + SEV metadata pages + one VMSA per vCPU (QEMU/KVM, ec2, gce)
  snp:ovmf-hash    only the digest after the OVMF pages (a seed for --snp-ovmf-hash), in hex
  snp:svsm         OVMF + COCONUT-SVSM (--svsm and --vars-size or --vars-file), QEMU only
  (sev and seves are not implemented: snpsim models SEV-SNP only)

options:
  --vcpus N                 number of vCPUs (required in snp and snp:svsm)
  --vcpu-type CPUTYPE       QEMU CPU model (EPYC-v4, EPYC-Milan, EPYC-Genoa ...), or
  --vcpu-sig VALUE          the signature itself (CPUID Fn0000_0001_EAX), or
  --vcpu-family F --vcpu-model M --vcpu-stepping S
                            (one of the three is required for QEMU; ec2 and gce do not measure it)
  --vmm-type TYPE           QEMU (default), ec2 or gce
  --ovmf PATH               OVMF image (OVMF.fd, or OVMF_CODE.fd in snp:svsm)
  --kernel PATH             kernel given to QEMU -kernel (needs an OVMF built from AmdSevX64.dsc)
  --initrd PATH             initrd (-initrd); with --kernel
  --append CMDLINE          kernel command line (-append); with --kernel
  --guest-features VALUE    VMSA SEV_FEATURES (default 0x1 as sev-snp-measure >= 0.0.11; kernels
                            >= 6.6 with DebugSwap need 0x21)
  --snp-ovmf-hash HASH      precomputed OVMF hash (96 hex digits): the OVMF pages are not hashed again
  --output-format FMT       hex (default) or base64
  --dump-vmsa               write each measured VMSA to vmsa<N>.bin (in --dump-dir, default .)
  --svsm PATH               SVSM binary (snp:svsm)
  --vars-size SIZE          size of OVMF_VARS in bytes (snp:svsm), or
  --vars-file PATH          the OVMF_VARS file whose size to use (snp:svsm)
snpsim extensions:
  --json                    print a JSON document: inputs, regions and pages measured, AP reset EIP
  --trace                   add every PAGE_INFO step (page type, GPA, contents hash, digest); implies --json
  --ec2-legacy-rdx          ec2: RDX 0 in the VMSA, as sev-snp-measure before 2026-04-28 and its Go/Rust ports
  -v, --verbose             "Calculated SEV_SNP guest measurement: ..."

exit codes: 0 ok, 2 usage or input error`;

const MODES = ['snp', 'snp:ovmf-hash', 'snp:svsm'] as const;
type Mode = (typeof MODES)[number];

const OPTIONS = {
  mode: { type: 'string', default: 'snp' },
  vcpus: { type: 'string' },
  'vcpu-type': { type: 'string' },
  'vcpu-sig': { type: 'string' },
  'vcpu-family': { type: 'string' },
  'vcpu-model': { type: 'string' },
  'vcpu-stepping': { type: 'string' },
  'vmm-type': { type: 'string' },
  ovmf: { type: 'string' },
  kernel: { type: 'string' },
  initrd: { type: 'string' },
  append: { type: 'string' },
  'guest-features': { type: 'string' },
  'snp-ovmf-hash': { type: 'string' },
  'output-format': { type: 'string', default: 'hex' },
  'dump-vmsa': { type: 'boolean', default: false },
  'dump-dir': { type: 'string' },
  svsm: { type: 'string' },
  'vars-size': { type: 'string' },
  'vars-file': { type: 'string' },
  json: { type: 'boolean', default: false },
  trace: { type: 'boolean', default: false },
  'ec2-legacy-rdx': { type: 'boolean', default: false },
  verbose: { type: 'boolean', short: 'v', default: false },
} as const;

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>['values'];
type OptionName = keyof typeof OPTIONS;

/** Flags each mode takes besides the output flags; any other given flag is refused, not ignored. */
const MODE_FLAGS: Readonly<Record<Mode, readonly OptionName[]>> = {
  snp: [
    'vcpus',
    'vcpu-type',
    'vcpu-sig',
    'vcpu-family',
    'vcpu-model',
    'vcpu-stepping',
    'vmm-type',
    'kernel',
    'initrd',
    'append',
    'guest-features',
    'snp-ovmf-hash',
    'dump-vmsa',
    'dump-dir',
    'ec2-legacy-rdx',
  ],
  'snp:ovmf-hash': [],
  'snp:svsm': [
    'vcpus',
    'vcpu-type',
    'vcpu-sig',
    'vcpu-family',
    'vcpu-model',
    'vcpu-stepping',
    'vmm-type',
    'guest-features',
    'svsm',
    'vars-size',
    'vars-file',
    'dump-vmsa',
    'dump-dir',
  ],
};
const ALWAYS: readonly OptionName[] = ['mode', 'ovmf', 'output-format', 'json', 'trace', 'verbose'];

function usage(message: string): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.USAGE, `${message} (see snpsim measure --help)`);
}

function inputError(message: string, details: Record<string, unknown> = {}): SnpsimError {
  return new SnpsimError(SnpsimErrorCode.INPUT_INVALID, message, details);
}

/** A measurement-layer refusal as a harness input error (the message names the layer). */
function unwrap<T>(r: MeasureResult<T>): T {
  if (r.ok) return r.value;
  throw inputError(`${r.error.layer}: ${r.error.message}`, { layer: r.error.layer, code: r.error.code });
}

/**
 * An integer the way Python's `int(text, 0)` reads it (sev-snp-measure's auto-base flags): decimal
 * without leading zeros, or 0x / 0o / 0b with digits; underscores between digits allowed.
 */
export function parseAutoBase(text: string, flag: string): bigint {
  const t = text
    .trim()
    .toLowerCase()
    .replaceAll(/(?<=[0-9a-f])_(?=[0-9a-f])/g, '');
  const ok = /^(0x[0-9a-f]+|0o[0-7]+|0b[01]+|[1-9][0-9]*|0+)$/.test(t);
  if (!ok) throw usage(`${flag} '${text}' is not an integer (decimal, 0x.., 0o.. or 0b..)`);
  return BigInt(t);
}

function parseDecimal(text: string, flag: string, min: number, max: number): number {
  if (!/^\s*[0-9]+\s*$/.test(text)) throw usage(`${flag} '${text}' is not a decimal integer`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max)
    throw usage(`${flag} ${text} is outside ${min}..${max}`);
  return n;
}

function parseVmmType(text: string | undefined): VmmType {
  if (text === undefined) return VmmType.QEMU;
  const found = Object.values(VmmType).find((v) => v.toLowerCase() === text.toLowerCase());
  if (found === undefined)
    throw usage(`unknown VMM type '${text}'; known: ${Object.values(VmmType).join(', ')}`);
  return found;
}

/** The vCPU signature from exactly one of --vcpu-type, --vcpu-sig, --vcpu-family/model/stepping. */
function vcpuSignature(v: Values, vmmType: VmmType, notes: string[]): number {
  const family =
    v['vcpu-family'] !== undefined || v['vcpu-model'] !== undefined || v['vcpu-stepping'] !== undefined;
  const given = [v['vcpu-type'] !== undefined, v['vcpu-sig'] !== undefined, family].filter(Boolean).length;
  if (given > 1)
    throw usage(
      'give the vCPU as one of --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping',
    );
  if (given === 0) {
    if (vmmType === VmmType.QEMU)
      throw usage('missing --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping');
    return 0;
  }
  if (vmmType !== VmmType.QEMU)
    notes.push(`note: the vCPU signature is not measured for --vmm-type ${vmmType} (its RDX is fixed)`);
  if (v['vcpu-type'] !== undefined) return unwrap(vcpuSignatureOf(v['vcpu-type']));
  if (v['vcpu-sig'] !== undefined) {
    const sig = parseAutoBase(v['vcpu-sig'], '--vcpu-sig');
    if (sig > 0xffffffffn) throw usage(`--vcpu-sig ${v['vcpu-sig']} is not a 32-bit value`);
    return Number(sig);
  }
  const part = (name: 'vcpu-family' | 'vcpu-model' | 'vcpu-stepping') => {
    const text = v[name];
    if (text === undefined) throw usage('--vcpu-family, --vcpu-model and --vcpu-stepping go together');
    return parseDecimal(text, `--${name}`, 0, 0xffff);
  };
  return unwrap(cpuSignature(part('vcpu-family'), part('vcpu-model'), part('vcpu-stepping')));
}

function fileError(flag: string, path: string, error: unknown): SnpsimError {
  const code = (error as NodeJS.ErrnoException).code;
  const why =
    code === 'ENOENT'
      ? 'no such file'
      : code === 'EISDIR'
        ? 'is a directory'
        : code === 'EACCES'
          ? 'permission denied'
          : error instanceof Error
            ? error.message
            : String(error);
  return inputError(`cannot read ${flag} '${path}': ${why}`, { flag, path });
}

async function readInput(flag: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    throw fileError(flag, path, error);
  }
}

/** SHA-256 of a file, streamed (kernels and initrds can be large). */
async function sha256File(flag: string, path: string): Promise<Buffer> {
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  } catch (error) {
    throw fileError(flag, path, error);
  }
  return h.digest();
}

async function loadImage(flag: string, path: string, what: string): Promise<OvmfImage> {
  return unwrap(parseOvmf(await readInput(flag, path), `${what} '${path}'`));
}

async function kernelHashes(v: Values): Promise<SevHashes | undefined> {
  if (v.kernel === undefined) {
    if (v.initrd !== undefined) throw usage('--initrd needs --kernel');
    if (v.append !== undefined) throw usage('--append needs --kernel');
    return undefined;
  }
  return {
    kernel: await sha256File('--kernel', v.kernel),
    initrd: v.initrd === undefined ? createHash('sha256').digest() : await sha256File('--initrd', v.initrd),
    cmdline: createHash('sha256').update(cmdlineBytes(v.append)).digest(),
  };
}

function ovmfHashSeed(text: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  const t = text.trim();
  if (!/^[0-9a-fA-F]{96}$/.test(t)) {
    throw usage(
      `--snp-ovmf-hash must be 96 hex digits (a 48-byte SHA-384), got ${t.length} characters '${t.slice(0, 20)}${t.length > 20 ? '...' : ''}'`,
    );
  }
  return Buffer.from(t, 'hex');
}

const h = (n: number | bigint) => `0x${n.toString(16)}`;

function regionsJson(m: LaunchMeasurement) {
  return m.regions.map((r) => ({
    name: r.name,
    pageType: SNP_PAGE_TYPE_NAMES[r.pageType],
    gpa: h(r.gpa),
    size: h(r.size),
    pages: r.pages,
    ...(r.vcpu === undefined ? {} : { vcpu: r.vcpu, eip: h(r.eip ?? 0) }),
  }));
}

function traceJson(trace: readonly MeasureStep[]) {
  return trace.map((s) => ({
    index: s.index,
    pageType: SNP_PAGE_TYPE_NAMES[s.pageType],
    gpa: h(s.gpa),
    contents: s.contents,
    digest: s.digest,
  }));
}

function imageJson(path: string, img: OvmfImage, gpa?: number) {
  return {
    path,
    size: img.bytes.length,
    ...(gpa === undefined ? {} : { gpa: h(gpa) }),
    sevEsResetEip: img.sevEsResetEip === undefined ? null : h(img.sevEsResetEip),
    sevHashesTableGpa: img.sevHashesTable === undefined ? null : h(img.sevHashesTable.gpa),
    sections: (img.sevMetadata ?? []).map((s) => ({
      type: h(s.type),
      name: sectionTypeName(s.type),
      gpa: h(s.gpa),
      size: h(s.size),
    })),
  };
}

function format(digest: Buffer, outputFormat: string): string {
  return outputFormat === 'base64' ? digest.toString('base64') : digest.toString('hex');
}

/** Parsed flags, and the names of the flags actually given (defaults excluded). */
function parse(argv: readonly string[]): { values: Values; given: ReadonlySet<string> } {
  try {
    const r = parseArgs({
      args: [...argv],
      options: OPTIONS,
      allowPositionals: false,
      strict: true,
      tokens: true,
    });
    const given = new Set(r.tokens.flatMap((t) => (t.kind === 'option' ? [t.name] : [])));
    return { values: r.values, given };
  } catch (error) {
    throw usage(error instanceof Error ? error.message : String(error));
  }
}

export async function runMeasure(argv: readonly string[], io: CliIo): Promise<number> {
  const { values: v, given } = parse(argv);
  const mode = v.mode as Mode;
  if (v.mode === 'sev' || v.mode === 'seves') {
    throw usage(
      `--mode ${v.mode} is not implemented: snpsim measures SEV-SNP launch digests only (SEV and SEV-ES digests are SHA-256 over the images)`,
    );
  }
  if (!MODES.includes(mode)) throw usage(`unknown --mode '${v.mode}'; known: ${MODES.join(', ')}`);
  const allowed = new Set<string>([...ALWAYS, ...MODE_FLAGS[mode]]);
  const stray = [...given].filter((name) => !allowed.has(name));
  if (stray.length > 0) throw usage(`--${stray[0]} is not used in --mode ${mode}`);
  if (v['output-format'] !== 'hex' && v['output-format'] !== 'base64') {
    throw usage(`--output-format must be hex or base64, got '${v['output-format']}'`);
  }
  if (v.ovmf === undefined) throw usage('missing --ovmf PATH');
  const json = v.json || v.trace;
  const notes: string[] = [];

  const ovmf = await loadImage('--ovmf', v.ovmf, 'OVMF image');
  if (mode === 'snp:ovmf-hash') {
    const hash = snpOvmfHash(ovmf).toString('hex');
    io.stdout.write(
      json
        ? `${JSON.stringify({ mode, ovmf: imageJson(v.ovmf, ovmf), ovmfHash: hash }, null, 2)}\n`
        : `${hash}\n`,
    );
    return ExitCode.OK;
  }

  if (v.vcpus === undefined) throw usage(`missing --vcpus N in --mode ${mode}`);
  const vcpus = parseDecimal(v.vcpus, '--vcpus', 1, MAX_VCPUS);
  const vmmType = parseVmmType(v['vmm-type']);
  if (v['ec2-legacy-rdx'] && vmmType !== VmmType.EC2)
    throw usage('--ec2-legacy-rdx applies to --vmm-type ec2 only');
  const signature = vcpuSignature(v, vmmType, notes);
  const features =
    v['guest-features'] === undefined ? 0x1n : parseAutoBase(v['guest-features'], '--guest-features');
  if (features > 0xffffffffffffffffn)
    throw usage(`--guest-features ${v['guest-features']} is not a 64-bit value`);
  const dumpDir = v['dump-dir'] ?? '.';
  if (v['dump-dir'] !== undefined && !v['dump-vmsa']) throw usage('--dump-dir goes with --dump-vmsa');
  const dumps: [number, Buffer][] = [];
  const onVmsa = v['dump-vmsa'] ? (vcpu: number, page: Buffer) => dumps.push([vcpu, page]) : undefined;

  let measurement: LaunchMeasurement;
  let extra: Record<string, unknown>;
  if (mode === 'snp:svsm') {
    if (vmmType !== VmmType.QEMU)
      throw usage('--mode snp:svsm is implemented for --vmm-type QEMU only (as in sev-snp-measure)');
    if (v.svsm === undefined) throw usage('--mode snp:svsm needs --svsm PATH');
    if ((v['vars-size'] === undefined) === (v['vars-file'] === undefined)) {
      throw usage('--mode snp:svsm needs exactly one of --vars-size SIZE and --vars-file PATH');
    }
    if (v['guest-features'] !== undefined && features !== 0x1n) {
      notes.push(
        'note: --guest-features is not used in --mode snp:svsm (the SVSM VMSA has SEV_FEATURES 0x1)',
      );
    }
    let varsSize: number;
    if (v['vars-file'] !== undefined) {
      try {
        varsSize = (await stat(v['vars-file'])).size;
      } catch (error) {
        throw fileError('--vars-file', v['vars-file'], error);
      }
    } else {
      varsSize = parseDecimal(v['vars-size'] ?? '', '--vars-size', 0, 0xffffffff);
    }
    const svsm = await loadImage('--svsm', v.svsm, 'SVSM image');
    measurement = unwrap(
      svsmLaunchDigest({ ovmf, svsm, varsSize, vcpus, vcpuSignature: signature, trace: v.trace, onVmsa }),
    );
    extra = {
      svsm: imageJson(v.svsm, svsm, measurement.regions.find((r) => r.name === 'SVSM')?.gpa),
      varsSize,
    };
  } else {
    const sevHashes = await kernelHashes(v);
    const ovmfHash = ovmfHashSeed(v['snp-ovmf-hash']);
    measurement = unwrap(
      snpLaunchDigest({
        ovmf,
        vcpus,
        vcpuSignature: signature,
        guestFeatures: features,
        vmmType,
        ...(sevHashes === undefined ? {} : { sevHashes }),
        ...(ovmfHash === undefined ? {} : { ovmfHash }),
        ec2LegacyRdx: v['ec2-legacy-rdx'],
        trace: v.trace,
        onVmsa,
      }),
    );
    extra = {
      kernel:
        sevHashes === undefined
          ? null
          : {
              kernel: Buffer.from(sevHashes.kernel).toString('hex'),
              initrd: Buffer.from(sevHashes.initrd).toString('hex'),
              cmdline: Buffer.from(sevHashes.cmdline).toString('hex'),
            },
      ovmfHashSeeded: ovmfHash !== undefined,
    };
  }

  for (const [vcpu, page] of dumps) {
    const file = join(dumpDir, `vmsa${vcpu}.bin`);
    try {
      await writeFile(file, page);
    } catch (error) {
      throw inputError(`cannot write '${file}': ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  for (const note of notes) io.stderr.write(`${note}\n`);
  const out = format(measurement.digest, v['output-format']);
  if (json) {
    const doc = {
      mode,
      vmmType,
      vcpus,
      vcpuSignature: vmmType === VmmType.QEMU ? h(signature) : null,
      guestFeatures: mode === 'snp:svsm' ? '0x1' : h(features),
      ovmf: imageJson(v.ovmf, ovmf, measurement.ovmfGpa),
      ...extra,
      ovmfHash: measurement.ovmfHash.toString('hex'),
      apResetEip: h(measurement.apResetEip),
      regions: regionsJson(measurement),
      pagesMeasured: measurement.pagesMeasured,
      outputFormat: v['output-format'],
      measurement: out,
      ...(measurement.trace === undefined ? {} : { trace: traceJson(measurement.trace) }),
    };
    io.stdout.write(`${JSON.stringify(doc, null, 2)}\n`);
  } else if (v.verbose) {
    io.stdout.write(
      `Calculated ${mode === 'snp:svsm' ? 'SEV_SNP_SVSM' : 'SEV_SNP'} guest measurement: ${out}\n`,
    );
  } else {
    io.stdout.write(`${out}\n`);
  }
  return ExitCode.OK;
}

export const measureCommand: CliCommand = {
  name: 'measure',
  summary: 'expected SEV-SNP launch digest of a guest (sev-snp-measure compatible flags)',
  usage: MEASURE_USAGE,
  run: runMeasure,
};
