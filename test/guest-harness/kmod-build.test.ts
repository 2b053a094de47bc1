/**
 * Builds the guest kernel module (guest-harness/kmod, C) out of tree against every Debian 6.1 and
 * 6.12 header package in /usr/src, with warnings as errors, and checks what modpost produced.
 * Loading it needs an SEV-SNP guest, which this machine is not: that part is not tested here.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const KMOD = fileURLToPath(new URL('../../../guest-harness/kmod/', import.meta.url));
const SRC = '/usr/src';
const MODINFO = '/sbin/modinfo';
/** The module's version, from the kABI header it is defined in. */
const VERSION = /#define SNPSIM_MODULE_VERSION_STR "([^"]+)"/.exec(
  readFileSync(join(KMOD, 'snpsim_kabi.h'), 'utf8'),
)?.[1];

const work = mkdtempSync(join(tmpdir(), 'snpsim-kmod-'));
after(() => rmSync(work, { recursive: true, force: true }));

interface Run {
  code: number | null;
  output: string;
}

function run(cmd: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: { ...process.env, LC_ALL: 'C' } });
    const chunks: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, output: Buffer.concat(chunks).toString('utf8') }));
  });
}

/** Header build directories of one kernel series, e.g. 6.1 matches 6.1.0-56-amd64 but not 6.12.x. */
function headers(series: string): string[] {
  if (!existsSync(SRC)) return [];
  const re = new RegExp(`^linux-headers-${series.replace('.', '\\.')}(?!\\d)[^/]*-amd64$`);
  return readdirSync(SRC)
    .filter((name) => re.test(name) && existsSync(join(SRC, name, 'Makefile')))
    .map((name) => join(SRC, name))
    .sort();
}

let copies = 0;
/** A fresh copy of the module source, so the build never writes into the repository. */
function copyKmod(): string {
  const dir = join(work, `kmod-${copies++}`);
  cpSync(KMOD, dir, { recursive: true });
  return dir;
}

function build(headerDir: string, dir: string): Promise<Run> {
  return run('make', ['-C', headerDir, `M=${dir}`, 'modules']);
}

/** The .modinfo section of an ELF64 little-endian object: key=value strings separated by NUL. */
function elfModinfo(file: string): Map<string, string> {
  const elf = readFileSync(file);
  assert.equal(elf.toString('latin1', 0, 4), '\x7fELF', `${file} is not an ELF file`);
  const shoff = Number(elf.readBigUInt64LE(0x28));
  const shentsize = elf.readUInt16LE(0x3a);
  const shnum = elf.readUInt16LE(0x3c);
  const shstrndx = elf.readUInt16LE(0x3e);
  const section = (i: number) => {
    const at = shoff + i * shentsize;
    return {
      name: elf.readUInt32LE(at),
      offset: Number(elf.readBigUInt64LE(at + 0x18)),
      size: Number(elf.readBigUInt64LE(at + 0x20)),
    };
  };
  const strtab = section(shstrndx);
  for (let i = 0; i < shnum; i++) {
    const s = section(i);
    const start = strtab.offset + s.name;
    const name = elf.toString('latin1', start, elf.indexOf(0, start));
    if (name !== '.modinfo') continue;
    const info = new Map<string, string>();
    for (const entry of elf.toString('latin1', s.offset, s.offset + s.size).split('\0')) {
      const eq = entry.indexOf('=');
      if (eq > 0) info.set(entry.slice(0, eq), entry.slice(eq + 1));
    }
    return info;
  }
  assert.fail(`${file} has no .modinfo section`);
}

async function modinfoField(ko: string, field: string): Promise<string> {
  const r = await run(MODINFO, ['-F', field, ko]);
  assert.equal(r.code, 0, r.output);
  return r.output.trim();
}

for (const series of ['6.1', '6.12']) {
  const dirs = headers(series);
  if (dirs.length === 0) {
    test(`kmod builds against Debian ${series} headers`, (t) => {
      t.skip(`no /usr/src/linux-headers-${series}*-amd64 installed (.ci/run installs them)`);
    });
  }
  for (const headerDir of dirs) {
    test(`kmod builds with -Werror and passes modpost against ${headerDir}`, async () => {
      const dir = copyKmod();
      const r = await build(headerDir, dir);
      assert.equal(r.code, 0, `make failed:\n${r.output}`);
      // -Werror turns compiler warnings into errors; modpost and objtool only warn: none allowed.
      assert.doesNotMatch(r.output, /warning/i, `build printed a warning:\n${r.output}`);

      const ko = join(dir, 'snpsim.ko');
      assert.ok(existsSync(ko), `${ko} was not produced:\n${r.output}`);
      const info = elfModinfo(ko);
      // Debian names the directory after KERNELRELEASE (its kernel.release file holds the upstream one).
      const release = basename(headerDir).slice('linux-headers-'.length);
      assert.equal(info.get('name'), 'snpsim');
      assert.equal(info.get('version'), VERSION);
      assert.equal(info.get('license'), 'GPL');
      assert.equal(info.get('depends'), '');
      assert.ok(info.get('vermagic')?.startsWith(`${release} `), `vermagic ${info.get('vermagic')}`);
      assert.match(info.get('description') ?? '', /AP Creation/);

      if (existsSync(MODINFO)) {
        // The same facts through the real tool.
        assert.equal(await modinfoField(ko, 'version'), VERSION);
        assert.equal(await modinfoField(ko, 'license'), 'GPL');
        assert.equal(await modinfoField(ko, 'vermagic'), info.get('vermagic')?.trim());
      }
      // The source tree stays clean: every artefact went to the copy.
      const artefacts = readdirSync(KMOD).filter((f) => /\.(o|ko|mod|mod\.c|cmd|symvers|order)$/.test(f));
      assert.deepEqual(artefacts, []);
    });
  }
}

// The build must be able to fail: a warning and an unexported symbol are each fatal.
const anyHeaders = [...headers('6.1'), ...headers('6.12')];
const PROBE_PROTO = 'int snpsim_probe(void);\n';

async function buildWithProbe(headerDir: string, probe: string): Promise<Run> {
  const dir = copyKmod();
  writeFileSync(join(dir, 'snpsim_probe.c'), probe);
  const kbuild = readFileSync(join(dir, 'Kbuild'), 'utf8').replace(
    /^snpsim-y :=/m,
    'snpsim-y := snpsim_probe.o',
  );
  writeFileSync(join(dir, 'Kbuild'), kbuild);
  return build(headerDir, dir);
}

test('a compiler warning fails the module build (-Werror)', async (t) => {
  const headerDir = anyHeaders[0];
  if (headerDir === undefined) return t.skip('no Debian kernel headers installed (.ci/run installs them)');
  const r = await buildWithProbe(
    headerDir,
    `${PROBE_PROTO}int snpsim_probe(void)\n{\n\tint unused;\n\n\treturn 0;\n}\n`,
  );
  assert.notEqual(r.code, 0, r.output);
  assert.match(r.output, /unused variable .unused. \[-Werror=unused-variable\]/);
});

test('a symbol the kernel does not export fails modpost', async (t) => {
  const headerDir = anyHeaders[0];
  if (headerDir === undefined) return t.skip('no Debian kernel headers installed (.ci/run installs them)');
  const r = await buildWithProbe(
    headerDir,
    `${PROBE_PROTO}void *__sev_get_ghcb(void *state);\nint snpsim_probe(void)\n{\n\treturn __sev_get_ghcb((void *)0) != (void *)0;\n}\n`,
  );
  assert.notEqual(r.code, 0, r.output);
  assert.match(r.output, /ERROR: modpost: "__sev_get_ghcb" \[.*snpsim\.ko\] undefined!/);
});
