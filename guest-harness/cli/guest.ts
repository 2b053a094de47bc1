/**
 * `snpsim guest install|doctor --target ssh://...`: put the module and agent on a guest, or check
 * that a guest can run scenarios. Exit 0 when every step/check passed, 1 when one did not, 2 on
 * usage errors, 3 when the guest cannot be reached.
 */
import { parseArgs } from 'node:util';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import { type CheckStatus, doctorGuest } from '../targets/guest-doctor.js';
import { installGuest, REMOTE_SOURCE_DIR } from '../targets/guest-install.js';
import { DEFAULT_STEP_TIMEOUT_MS, SshAgentTarget } from '../targets/ssh-target.js';
import { parseSshTargetUrl, type SshTargetUrl } from '../targets/url.js';
import type { CliCommand, CliIo } from './command.js';
import { SSH_PARSE_OPTIONS, type SshCliOptions, sshOptionsFromArgs, sshUsage } from './ssh-options.js';

const USAGE = `usage: snpsim guest install --target ssh://user@host[:port] [--no-load] [ssh options]
       snpsim guest doctor  --target ssh://user@host[:port] [--json] [ssh options]

install  uploads guest-harness/kmod/ and guest-harness/agent/ over SFTP to ${REMOTE_SOURCE_DIR},
         builds both against the guest's running kernel, installs the agent and loads snpsim.ko
         (--no-load: upload and build only). Needs root, make, cc and the kernel headers.
doctor   one PASS/FAIL/SKIP line per requirement: SEV-SNP active, VMPL0, AP Creation offered, kernel
         version, headers, debugfs, module signing/lockdown, offline-able CPUs, root, agent, module.
         Read-only. --json prints the report as JSON.

  --target ssh://user@host[:port]   the guest (required)

exit: 0 all passed, 1 a step or check did not pass, 2 usage error, 3 guest unreachable

${sshUsage(`doctor 30000, install 600000; the hello ${DEFAULT_STEP_TIMEOUT_MS}`)}`;

function line(status: CheckStatus, title: string, detail: string): string {
  return `${status.padEnd(4)}  ${title.padEnd(30)}  ${detail}\n`;
}

function summary(statuses: readonly CheckStatus[]): string {
  const count = (s: CheckStatus) => statuses.filter((x) => x === s).length;
  return `${count('PASS')} PASS, ${count('FAIL')} FAIL, ${count('SKIP')} SKIP`;
}

const OPTIONS = {
  ...SSH_PARSE_OPTIONS,
  target: { type: 'string' },
  'no-load': { type: 'boolean' },
  json: { type: 'boolean' },
} as const;

/** A parsed `snpsim guest` command line. */
export interface GuestArgs {
  readonly sub: 'install' | 'doctor';
  readonly url: SshTargetUrl;
  readonly load: boolean;
  readonly json: boolean;
  readonly ssh: SshCliOptions;
}

/** Parses `snpsim guest` arguments; throws a USAGE SnpsimError naming what is wrong. */
export function parseGuestArgs(argv: readonly string[]): GuestArgs {
  const [sub, ...rest] = argv;
  if (sub !== 'install' && sub !== 'doctor')
    throw new SnpsimError(
      SnpsimErrorCode.USAGE,
      `expected install or doctor, got ${JSON.stringify(sub ?? '')}\n\n${USAGE}`,
    );
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS; allowPositionals: false }>>['values'];
  try {
    ({ values } = parseArgs({ args: [...rest], options: OPTIONS, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new SnpsimError(SnpsimErrorCode.USAGE, `${(error as Error).message} (see snpsim guest --help)`);
  }
  if (sub === 'install' && values.json !== undefined)
    throw new SnpsimError(SnpsimErrorCode.USAGE, '--json is for doctor');
  if (sub === 'doctor' && values['no-load'] !== undefined)
    throw new SnpsimError(SnpsimErrorCode.USAGE, '--no-load is for install');
  if (values.target === undefined)
    throw new SnpsimError(SnpsimErrorCode.USAGE, '--target ssh://user@host[:port] is required');
  const ssh = sshOptionsFromArgs(values);
  return {
    sub,
    url: parseSshTargetUrl(values.target),
    load: values['no-load'] !== true,
    json: values.json === true,
    ssh,
  };
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const { sub, url, load, json, ssh } = parseGuestArgs(argv);
  const { stepTimeoutMs } = ssh;
  const target = new SshAgentTarget(url, ssh.target);
  try {
    if (sub === 'doctor') {
      const report = await doctorGuest(target, stepTimeoutMs !== undefined ? { stepTimeoutMs } : {});
      if (json) {
        io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        io.stdout.write(`snpsim guest doctor: ${target.id}\n`);
        for (const c of report.checks) io.stdout.write(line(c.status, c.title, c.detail));
        io.stdout.write(
          `${summary(report.checks.map((c) => c.status))}: ${report.ok ? 'ready' : 'not ready'}\n`,
        );
      }
      return report.ok ? ExitCode.OK : ExitCode.DIFFERENCES;
    }
    io.stdout.write(`snpsim guest install: ${target.id} -> ${REMOTE_SOURCE_DIR}\n`);
    const report = await installGuest(target, {
      load,
      ...(stepTimeoutMs !== undefined ? { stepTimeoutMs } : {}),
      onStep: (step) => io.stdout.write(line(step.status, step.name, step.detail)),
    });
    io.stdout.write(
      `${summary(report.steps.map((s) => s.status))}: ${report.ok ? 'installed' : 'not installed'}\n`,
    );
    return report.ok ? ExitCode.OK : ExitCode.DIFFERENCES;
  } finally {
    await target.close();
  }
}

export const guestCommand: CliCommand = {
  name: 'guest',
  summary: 'install the module and agent on an SNP guest (install), or check it is ready (doctor)',
  usage: USAGE,
  run,
};
