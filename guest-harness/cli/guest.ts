/**
 * `snpsim guest install|doctor --target ssh://...`: put the module and agent on a guest, or check
 * that a guest can run scenarios. Exit 0 when every step/check passed, 1 when one did not, 2 on
 * usage errors, 3 when the guest cannot be reached.
 */
import { parseArgs } from 'node:util';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import { type CheckStatus, doctorGuest } from '../targets/guest-doctor.js';
import { installGuest, REMOTE_SOURCE_DIR } from '../targets/guest-install.js';
import { SshAgentTarget } from '../targets/ssh-target.js';
import type { CliCommand, CliIo } from './command.js';
import { SSH_PARSE_OPTIONS, SSH_USAGE, sshTargetFromArgs } from './ssh-options.js';

const USAGE = `usage: snpsim guest install --target ssh://user@host[:port] [--no-load] [ssh options]
       snpsim guest doctor  --target ssh://user@host[:port] [--json] [ssh options]

install  uploads guest-harness/kmod/ and guest-harness/agent/ over SFTP to ${REMOTE_SOURCE_DIR},
         builds both against the guest's running kernel, installs the agent and loads snpsim.ko
         (--no-load: upload and build only). Needs root, make, cc and the kernel headers.
doctor   one PASS/FAIL/SKIP line per requirement: SEV-SNP active, VMPL0, AP Creation offered, kernel
         version, headers, debugfs, module signing/lockdown, offline-able CPUs, root, agent, module.
         Read-only. --json prints the report as JSON.

exit: 0 all passed, 1 a step or check did not pass, 2 usage error, 3 guest unreachable

${SSH_USAGE}`;

function line(status: CheckStatus, title: string, detail: string): string {
  return `${status.padEnd(4)}  ${title.padEnd(30)}  ${detail}\n`;
}

function summary(statuses: readonly CheckStatus[]): string {
  const count = (s: CheckStatus) => statuses.filter((x) => x === s).length;
  return `${count('PASS')} PASS, ${count('FAIL')} FAIL, ${count('SKIP')} SKIP`;
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'install' && sub !== 'doctor')
    throw new SnpsimError(
      SnpsimErrorCode.USAGE,
      `expected install or doctor, got ${JSON.stringify(sub ?? '')}\n\n${USAGE}`,
    );
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({
      args: [...rest],
      options: { ...SSH_PARSE_OPTIONS, 'no-load': { type: 'boolean' }, json: { type: 'boolean' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new SnpsimError(SnpsimErrorCode.USAGE, `${(error as Error).message} (see snpsim guest --help)`);
  }
  if (sub === 'install' && values.json !== undefined)
    throw new SnpsimError(SnpsimErrorCode.USAGE, '--json is for doctor');
  if (sub === 'doctor' && values['no-load'] !== undefined)
    throw new SnpsimError(SnpsimErrorCode.USAGE, '--no-load is for install');
  const { url, options, stepTimeoutMs } = sshTargetFromArgs(values);
  const target = new SshAgentTarget(url, options);
  try {
    if (sub === 'doctor') {
      const report = await doctorGuest(target, stepTimeoutMs !== undefined ? { stepTimeoutMs } : {});
      if (values.json === true) {
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
      load: values['no-load'] !== true,
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
