/** The rules of `snpsim guest doctor`, from probe output and hellos (no guest needed). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type AgentHello, decodeHello, doctorChecks, parseProbe } from '../../guest-harness/index.js';

const READY_PROBE = [
  'release=6.12.111+deb12-amd64',
  'uid=0',
  'headers=1',
  'debugfs=1',
  'lockdown=[none] integrity confidentiality',
  'sig_enforce=N',
  'modules_disabled=0',
  'cpus_online=0-3',
  'hotplug=/sys/devices/system/cpu/cpu1/online',
  'hotplug=/sys/devices/system/cpu/cpu2/online',
  'sev_guest=1',
  'module_loaded=1',
  'dmesg=1',
  'mem_encrypt=Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP',
].join('\n');

function hello(line: string): AgentHello {
  const d = decodeHello(line);
  assert.ok(d.ok, d.ok ? '' : d.error.message);
  return d.value;
}

const MODULE_HELLO = hello(
  'snpsim-agent protocol=1 agent=0.1.0 backend=module kernel=6.12.111+deb12-amd64 module=1 sev_status=0x30007 ' +
    'vmpl=0 cpus=4 possible_cpus=4 family=25 model=17 stepping=1 microcode=0xa0011d5',
);

function statuses(probe: string, h: AgentHello | undefined, features?: bigint) {
  const checks = doctorChecks(
    parseProbe(probe),
    {
      ...(h !== undefined ? { hello: h } : { error: 'SNPSIM_AGENT_PROTOCOL: not installed' }),
      command: "'/agent'",
    },
    features === undefined ? undefined : { features, msr: (features << 12n) | 0x81n },
  );
  return { checks, s: Object.fromEntries(checks.map((c) => [c.id, c.status])) };
}

test('a ready SNP guest with the module: every line PASS', () => {
  const { checks, s } = statuses(READY_PROBE, MODULE_HELLO, 0x3n);
  assert.ok(
    checks.every((c) => c.status === 'PASS'),
    JSON.stringify(checks.filter((c) => c.status !== 'PASS')),
  );
  assert.equal(Object.keys(s).length, 11);
  assert.match(checks.find((c) => c.id === 'snp')?.detail ?? '', /SEV_STATUS 0x30007 \(bit 2 SNP set\)/);
  assert.match(checks.find((c) => c.id === 'cpus')?.detail ?? '', /cpu1, cpu2/);
});

test('SEV_STATUS bit 2, the module VMPL and HV features bit 1 decide their lines', () => {
  const noSnp = hello(
    'snpsim-agent protocol=1 agent=0.1.0 backend=module kernel=6.12.1 module=1 sev_status=0x3 vmpl=1 cpus=4 possible_cpus=4 family=25 model=17 stepping=1 microcode=0x1',
  );
  const { s } = statuses(READY_PROBE, noSnp, 0x1n);
  assert.equal(s.snp, 'FAIL');
  assert.equal(s.vmpl0, 'FAIL');
  assert.equal(s['ap-creation'], 'FAIL');
});

test('without the module: dmesg decides SNP, VMPL is SKIP unless dmesg shows a non-zero VMPL', () => {
  const noModule = READY_PROBE.replace('module_loaded=1', 'module_loaded=0');
  const a = statuses(noModule, undefined).s;
  assert.deepEqual(
    [a.snp, a.vmpl0, a['ap-creation'], a.agent, a.module],
    ['PASS', 'SKIP', 'SKIP', 'FAIL', 'FAIL'],
  );
  const svsm = statuses(`${noModule}\nvmpl_line=SNP running at VMPL2`, undefined).s;
  assert.equal(svsm.vmpl0, 'FAIL');
  const plain = statuses(
    noModule.replace(/\nmem_encrypt=.*$/, '').replace('sev_guest=1', 'sev_guest=0'),
    undefined,
  ).s;
  assert.equal(plain.snp, 'FAIL');
  const noDmesg = statuses(noModule.replace(/dmesg=1[\s\S]*$/, 'dmesg=0'), undefined).s;
  assert.equal(noDmesg.snp, 'PASS', '/dev/sev-guest');
  const nothing = statuses(
    noModule.replace(/dmesg=1[\s\S]*$/, 'dmesg=0').replace('sev_guest=1', 'sev_guest=0'),
    undefined,
  ).s;
  assert.equal(nothing.snp, 'SKIP');
  const newer = statuses(
    noModule.replace(/mem_encrypt=.*/, 'mem_encrypt=SEV: Status: SEV SEV-ES SEV-SNP'),
    undefined,
  ).s;
  assert.equal(newer.snp, 'PASS');
  const sevEs = statuses(
    noModule.replace(/mem_encrypt=.*/, 'mem_encrypt=Memory Encryption Features active: AMD SEV SEV-ES'),
    undefined,
  ).s;
  assert.equal(sevEs.snp, 'FAIL');
});

test('kernel, headers, debugfs, lockdown, signing, CPUs and root each fail on their own', () => {
  const fail = (from: string, to: string, id: string, detail: RegExp) => {
    const { checks } = statuses(READY_PROBE.replace(from, to), MODULE_HELLO, 0x3n);
    const bad = checks.filter((c) => c.status !== 'PASS');
    assert.deepEqual(
      bad.map((c) => c.id),
      [id],
      `${to}: ${JSON.stringify(bad)}`,
    );
    assert.match(bad[0]?.detail ?? '', detail);
  };
  fail('release=6.12.111+deb12-amd64', 'release=5.19.0', 'kernel', /5\.19\.0 \(< 6\.1;/);
  fail('headers=1', 'headers=0', 'headers', /install linux-headers-6\.12\.111\+deb12-amd64/);
  fail('debugfs=1', 'debugfs=0', 'debugfs', /mount -t debugfs/);
  fail(
    'lockdown=[none] integrity confidentiality',
    'lockdown=none [integrity] confidentiality',
    'module-loading',
    /lockdown is "integrity"/,
  );
  fail('sig_enforce=N', 'sig_enforce=Y', 'module-loading', /sig_enforce=Y/);
  fail('modules_disabled=0', 'modules_disabled=1', 'module-loading', /modules_disabled=1/);
  fail(
    'hotplug=/sys/devices/system/cpu/cpu1/online\nhotplug=/sys/devices/system/cpu/cpu2/online',
    'hotplug=/sys/devices/system/cpu/cpu0/online',
    'cpus',
    /no CPU besides cpu0/,
  );
  fail('uid=0', 'uid=1000', 'root', /uid 1000/);
});

test('probe values are untrusted text: control bytes are masked, first value wins', () => {
  const p = parseProbe('release=6.1.0\x1b[31m\nrelease=evil\nnoequals\n=x\nhotplug=a\nhotplug=b\n');
  assert.equal(p.values.get('release'), '6.1.0?[31m');
  assert.deepEqual(p.hotplug, ['a', 'b']);
  assert.equal(p.values.size, 1);
});
