/**
 * The simulated agent on stdin/stdout: `node dist/guest-harness/sim/stdio-agent.js [--backend NAME]
 * [--policy P] [--profile F]`. The same protocol and backends as `snpsim sim-guest`, so that a real
 * OpenSSH sshd can run it as the agent command (tests, or a VM without the module).
 * Exit status: 0 after EOF, 2 on bad arguments, 70 when the backend failed; killed by SIGKILL when
 * the simulated guest stopped.
 */
import { parseArgs } from 'node:util';
import { SnpsimError } from '../errors.js';
import { GUEST_STOPPED, serveAgent } from './agent-session.js';
import { DEFAULT_SIM_BACKEND, simBackends } from './backends.js';

async function main(): Promise<number> {
  let values: { backend?: string; policy?: string; profile?: string };
  try {
    ({ values } = parseArgs({
      options: { backend: { type: 'string' }, policy: { type: 'string' }, profile: { type: 'string' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    process.stderr.write(`snpsim-agent (stdio): ${(error as Error).message}\n`);
    return 2;
  }
  const name = values.backend ?? DEFAULT_SIM_BACKEND;
  const factory = simBackends[name];
  if (factory === undefined) {
    process.stderr.write(
      `snpsim-agent (stdio): unknown backend '${name}'; known: ${Object.keys(simBackends).join(', ')}\n`,
    );
    return 2;
  }
  let backend: Awaited<ReturnType<typeof factory>>;
  try {
    backend = await factory({
      ...(values.policy !== undefined ? { policy: values.policy } : {}),
      ...(values.profile !== undefined ? { profile: values.profile } : {}),
    });
  } catch (error) {
    const message = SnpsimError.is(error) ? `${error.code}: ${error.message}` : String(error);
    process.stderr.write(`snpsim-agent (stdio): ${message}\n`);
    return 2;
  }
  const status = await serveAgent(
    {
      input: process.stdin,
      write: (text) => process.stdout.write(text),
      writeError: (text) => process.stderr.write(text),
    },
    backend,
  );
  // A stopped guest ends the way a dead one does: abruptly, without a status of its own.
  if (status === GUEST_STOPPED) process.kill(process.pid, 'SIGKILL');
  return status;
}

process.exitCode = await main();
