/**
 * `snpsim guest doctor`: a preflight of a guest, one PASS/FAIL/SKIP line per requirement, in the
 * spirit of virtee's `snphost ok`. Read-only: one fixed probe script (no input interpolated), the
 * agent's hello, and an `hv-features` request when the module is loaded.
 */
import { GHCB_HV_FT } from '../../host/index.js';
import { SnpsimError } from '../errors.js';
import type { AgentHello } from '../protocol/index.js';
import { runRemote } from '../ssh/exec.js';
import type { SshAgentTarget } from './ssh-target.js';

export type CheckStatus = 'PASS' | 'FAIL' | 'SKIP';

export interface DoctorCheck {
  /** Stable id (`snp`, `vmpl0`, `ap-creation`, ...). */
  readonly id: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** What was seen, and for FAIL/SKIP what to do. */
  readonly detail: string;
}

export interface DoctorReport {
  readonly target: string;
  readonly checks: readonly DoctorCheck[];
  /** Every check passed. */
  readonly ok: boolean;
}

/** MSR_AMD64_SEV_SNP_ENABLED_BIT // [LX] arch/x86/include/asm/msr-index.h */
const SEV_STATUS_SNP_BIT = 2n;
/** The oldest kernel the module is built against in CI (Debian bookworm's 6.1; also 6.12). */
const MIN_KERNEL: readonly [number, number] = [6, 1];
/** Kbuild `obj-m += snpsim.o` (guest-harness/kmod/Kbuild). */
export const KMOD_NAME = 'snpsim';

/**
 * The probe: fixed text, POSIX sh, read-only. Prints `key=value` lines. dmesg lines: Linux 6.1
 * prints "Memory Encryption Features active: AMD SEV SEV-ES SEV-SNP" (arch/x86/mm/mem_encrypt.c),
 * later kernels also "SEV: Status: SEV SEV-ES SEV-SNP"; under an SVSM "SNP running at VMPL<n>.".
 */
export const DOCTOR_PROBE = [
  'r=$(uname -r)',
  'echo "release=$r"',
  'echo "uid=$(id -u)"',
  'if [ -e "/lib/modules/$r/build/Makefile" ]; then echo headers=1; else echo headers=0; fi',
  "if grep -qs ' /sys/kernel/debug debugfs ' /proc/mounts; then echo debugfs=1; else echo debugfs=0; fi",
  'echo "lockdown=$(cat /sys/kernel/security/lockdown 2>/dev/null || echo absent)"',
  'echo "sig_enforce=$(cat /sys/module/module/parameters/sig_enforce 2>/dev/null || echo absent)"',
  'echo "modules_disabled=$(cat /proc/sys/kernel/modules_disabled 2>/dev/null || echo absent)"',
  'echo "cpus_online=$(cat /sys/devices/system/cpu/online 2>/dev/null)"',
  'for f in /sys/devices/system/cpu/cpu[0-9]*/online; do [ -e "$f" ] && echo "hotplug=$f"; done',
  'if [ -e /dev/sev-guest ]; then echo sev_guest=1; else echo sev_guest=0; fi',
  `if [ -d /sys/module/${KMOD_NAME} ]; then echo module_loaded=1; else echo module_loaded=0; fi`,
  'if d=$(dmesg 2>/dev/null); then echo dmesg=1;' +
    " printf '%s\\n' \"$d\" | grep -m1 -oE '(Memory Encryption Features active|SEV: Status):.*' | sed 's/^/mem_encrypt=/';" +
    " printf '%s\\n' \"$d\" | grep -m1 -oE 'SNP running at VMPL[0-9]+' | sed 's/^/vmpl_line=/';" +
    ' else echo dmesg=0; fi',
  'exit 0',
].join('\n');

export interface Probe {
  readonly values: ReadonlyMap<string, string>;
  readonly hotplug: readonly string[];
}

/** Parses the probe's output; values are untrusted text (shown, never executed). */
export function parseProbe(stdout: string): Probe {
  const values = new Map<string, string>();
  const hotplug: string[] = [];
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1).replace(/[^\x20-\x7e]/g, '?');
    if (key === 'hotplug') hotplug.push(value);
    else if (!values.has(key)) values.set(key, value);
  }
  return { values, hotplug };
}

const check = (id: string, title: string, status: CheckStatus, detail: string): DoctorCheck => ({
  id,
  title,
  status,
  detail,
});

/** The checks from what was observed; pure, so each rule is testable without a guest. */
export function doctorChecks(
  probe: Probe,
  agent: { readonly hello?: AgentHello; readonly error?: string; readonly command: string },
  hvFeatures: { readonly features?: bigint; readonly msr?: bigint; readonly error?: string } | undefined,
): DoctorCheck[] {
  const v = (key: string) => probe.values.get(key);
  const hello = agent.hello;
  const moduleLoaded = hello !== undefined ? hello.module !== 'none' : v('module_loaded') === '1';
  const checks: DoctorCheck[] = [];

  // SEV-SNP active.
  const memEncrypt = v('mem_encrypt');
  if (hello?.sevStatus !== undefined) {
    const on = ((hello.sevStatus >> SEV_STATUS_SNP_BIT) & 1n) === 1n;
    checks.push(
      check(
        'snp',
        'SEV-SNP active',
        on ? 'PASS' : 'FAIL',
        `SEV_STATUS 0x${hello.sevStatus.toString(16)} (bit 2 SNP ${on ? 'set' : 'clear'})`,
      ),
    );
  } else if (memEncrypt !== undefined) {
    const on = /\bSEV-SNP\b/.test(memEncrypt);
    checks.push(check('snp', 'SEV-SNP active', on ? 'PASS' : 'FAIL', `dmesg: ${memEncrypt}`));
  } else if (v('dmesg') === '1') {
    checks.push(
      check(
        'snp',
        'SEV-SNP active',
        'FAIL',
        'dmesg reports no active memory encryption: not an SEV-SNP guest',
      ),
    );
  } else if (v('sev_guest') === '1') {
    checks.push(
      check('snp', 'SEV-SNP active', 'PASS', '/dev/sev-guest present (the SNP guest driver is bound)'),
    );
  } else {
    checks.push(
      check(
        'snp',
        'SEV-SNP active',
        'SKIP',
        'cannot tell: dmesg is not readable and the snpsim module is not loaded',
      ),
    );
  }

  // VMPL0.
  const vmplLine = v('vmpl_line');
  if (hello?.vmpl !== undefined) {
    checks.push(
      check(
        'vmpl0',
        'running at VMPL0',
        hello.vmpl === 0 ? 'PASS' : 'FAIL',
        `the module reports VMPL${hello.vmpl}`,
      ),
    );
  } else if (vmplLine !== undefined && vmplLine !== 'SNP running at VMPL0') {
    checks.push(
      check(
        'vmpl0',
        'running at VMPL0',
        'FAIL',
        `dmesg: ${vmplLine} (under an SVSM; AP Creation needs VMPL0)`,
      ),
    );
  } else {
    checks.push(
      check('vmpl0', 'running at VMPL0', 'SKIP', 'only the snpsim module can tell (its hello has vmpl=)'),
    );
  }

  // AP Creation feature.
  if (hvFeatures?.features !== undefined) {
    const on = (hvFeatures.features & GHCB_HV_FT.SNP_AP_CREATION) !== 0n;
    checks.push(
      check(
        'ap-creation',
        'hypervisor offers AP Creation',
        on ? 'PASS' : 'FAIL',
        `GHCB HV features 0x${hvFeatures.features.toString(16)} (MSR response 0x${(hvFeatures.msr ?? 0n).toString(16)}), bit 1 ${on ? 'set' : 'clear'}`,
      ),
    );
  } else {
    checks.push(
      check(
        'ap-creation',
        'hypervisor offers AP Creation',
        'SKIP',
        hvFeatures?.error ?? 'needs the agent and the snpsim module (hv-features request)',
      ),
    );
  }

  // Kernel version.
  const release = v('release') ?? '';
  const m = /^(\d+)\.(\d+)/.exec(release);
  if (m === null) {
    checks.push(
      check('kernel', 'kernel version', 'FAIL', `cannot read the release: ${JSON.stringify(release)}`),
    );
  } else {
    const major = Number(m[1]);
    const minor = Number(m[2]);
    const ok = major > MIN_KERNEL[0] || (major === MIN_KERNEL[0] && minor >= MIN_KERNEL[1]);
    checks.push(
      check(
        'kernel',
        'kernel version',
        ok ? 'PASS' : 'FAIL',
        `${release} (${ok ? '>=' : '<'} ${MIN_KERNEL.join('.')}; the module is built against 6.1 and 6.12)`,
      ),
    );
  }
  checks.push(
    v('headers') === '1'
      ? check('headers', 'kernel headers', 'PASS', `/lib/modules/${release}/build`)
      : check(
          'headers',
          'kernel headers',
          'FAIL',
          `/lib/modules/${release}/build is missing: install linux-headers-${release} (Debian: apt-get install linux-headers-$(uname -r))`,
        ),
  );
  checks.push(
    v('debugfs') === '1'
      ? check('debugfs', 'debugfs mounted', 'PASS', '/sys/kernel/debug')
      : check('debugfs', 'debugfs mounted', 'FAIL', 'mount it: mount -t debugfs none /sys/kernel/debug'),
  );

  // Module signing and lockdown.
  const lockdownText = v('lockdown') ?? 'absent';
  const lockdown =
    /\[(\w+)\]/.exec(lockdownText)?.[1] ?? (lockdownText === 'absent' ? 'absent' : lockdownText);
  const sigEnforce = v('sig_enforce') ?? 'absent';
  const disabled = v('modules_disabled') ?? 'absent';
  const problems: string[] = [];
  if (disabled === '1') problems.push('kernel.modules_disabled=1: no module can be loaded until reboot');
  if (lockdown !== 'none' && lockdown !== 'absent')
    problems.push(
      `kernel lockdown is "${lockdown}": it forbids the writable debugfs file (boot with lockdown=none)`,
    );
  if (sigEnforce === 'Y')
    problems.push(
      'module.sig_enforce=Y: an unsigned snpsim.ko is refused (sign it, or boot with module.sig_enforce=0)',
    );
  checks.push(
    check(
      'module-loading',
      'module signing / lockdown',
      problems.length === 0 ? 'PASS' : 'FAIL',
      problems.length === 0
        ? `lockdown ${lockdown}, sig_enforce ${sigEnforce}, modules_disabled ${disabled}`
        : problems.join('; '),
    ),
  );

  // Offline-able CPUs: cpuN with an `online` file, N > 0 (cpu0 is the BSP Linux keeps online).
  const hotplug = probe.hotplug
    .map((f) => /cpu(\d+)\/online$/.exec(f)?.[1])
    .filter((n) => n !== undefined && n !== '0');
  checks.push(
    hotplug.length > 0
      ? check(
          'cpus',
          'offline-able CPUs',
          'PASS',
          `cpu${hotplug.join(', cpu')} (online: ${v('cpus_online') ?? '?'})`,
        )
      : check(
          'cpus',
          'offline-able CPUs',
          'FAIL',
          `no CPU besides cpu0 can be offlined (online: ${v('cpus_online') ?? '?'}): give the guest at least 2 vCPUs`,
        ),
  );
  checks.push(
    v('uid') === '0'
      ? check('root', 'root on the guest', 'PASS', 'uid 0')
      : check(
          'root',
          'root on the guest',
          'FAIL',
          `uid ${v('uid') ?? '?'}: insmod and the module's debugfs file need root`,
        ),
  );

  // Agent and module.
  checks.push(
    hello !== undefined
      ? check(
          'agent',
          'agent present',
          'PASS',
          `${agent.command}: agent ${hello.agent}, protocol ${hello.protocol}, backend ${hello.backend}`,
        )
      : check('agent', 'agent present', 'FAIL', agent.error ?? `${agent.command} did not answer`),
  );
  checks.push(
    moduleLoaded
      ? check(
          'module',
          'snpsim module loaded',
          'PASS',
          hello !== undefined ? `module ${hello.module}` : `/sys/module/${KMOD_NAME}`,
        )
      : check(
          'module',
          'snpsim module loaded',
          'FAIL',
          'not loaded: run `snpsim guest install --target ...`',
        ),
  );
  return checks;
}

export interface DoctorOptions {
  /** Timeout of the probe and of each agent exchange (default 30 s). */
  readonly stepTimeoutMs?: number;
}

/** Runs the preflight; throws SnpsimError only when the guest cannot be reached at all. */
export async function doctorGuest(
  target: SshAgentTarget,
  options: DoctorOptions = {},
): Promise<DoctorReport> {
  const timeoutMs = options.stepTimeoutMs ?? 30_000;
  const connection = await target.connect();
  const result = await runRemote(connection, DOCTOR_PROBE, { timeoutMs });
  const probe = parseProbe(result.stdout);
  let hello: AgentHello | undefined;
  let agentError: string | undefined;
  try {
    hello = await target.open();
  } catch (error) {
    if (!SnpsimError.is(error)) throw error;
    agentError = `${error.code}: ${error.message}`;
  }
  let hv: { features?: bigint; msr?: bigint; error?: string } | undefined;
  if (hello !== undefined && hello.module !== 'none') {
    const batch = await target.runBatch([{ verb: 'hv-features' }], { stepTimeoutMs: timeoutMs });
    const response = batch.responses[0];
    if (response?.status === 'ok' && response.verb === 'hv-features')
      hv = { features: response.features, msr: response.msr };
    else if (response?.status === 'err') hv = { error: `hv-features answered err code=${response.code}` };
    else hv = { error: batch.error?.message ?? 'no answer to hv-features' };
  }
  const checks = doctorChecks(
    probe,
    {
      ...(hello !== undefined ? { hello } : {}),
      ...(agentError !== undefined ? { error: agentError } : {}),
      command: target.command,
    },
    hv,
  );
  return { target: target.id, checks, ok: checks.every((c) => c.status === 'PASS') };
}
