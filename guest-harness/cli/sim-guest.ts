/**
 * `snpsim sim-guest --port N`: the simulated guest as a standalone SSH server, for trying the harness
 * (`snpsim run --target ssh://...`, `snpsim guest doctor`) without SNP hardware. Runs until SIGINT or
 * SIGTERM.
 */
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ExitCode, SnpsimError, SnpsimErrorCode } from '../errors.js';
import { DEFAULT_AGENT_PATH } from '../protocol/index.js';
import type { AgentBackend } from '../sim/backend.js';
import { DEFAULT_SIM_BACKEND, simBackends } from '../sim/backends.js';
import { type AuthorizedKeys, ephemeralHostKey, persistentHostKey, readAuthorizedKeys } from '../sim/keys.js';
import { SimGuestServer } from '../sim/server.js';
import type { CliCommand, CliIo } from './command.js';
import { parseAgentCommand } from './ssh-options.js';

const USAGE = `usage: snpsim sim-guest --port N [--host 127.0.0.1] [--host-key FILE] [--authorized-keys FILE]
                        [--backend ${Object.keys(simBackends).join('|')}] [--policy P] [--profile F]
                        [--agent-command "PATH [ARGS]"]

Serves the agent protocol over SSH, as a real SNP guest with the snpsim agent does, answered by
the model (--backend model, the default: host policy --policy, firmware profile --profile) or by the
protocol-only backend (--backend protocol: hello, everything else "unsupported").

  --port N                 TCP port; 0 picks a free one (printed)
  --host ADDR              listen address (default 127.0.0.1)
  --host-key FILE          ed25519 host key, created (mode 0600) if absent; default: a new key per run
  --authorized-keys FILE   client public keys (authorized_keys lines without options); default: your
                           ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub. Any user name is accepted.
  --agent-command "PATH [ARGS]"  the one command served (default ${DEFAULT_AGENT_PATH})

Only that command runs; shells, ptys, SFTP, other commands and forwarding are refused.`;

function defaultPublicKeys(): string[] {
  return ['id_ed25519.pub', 'id_ecdsa.pub', 'id_rsa.pub']
    .map((f) => join(homedir(), '.ssh', f))
    .filter(existsSync);
}

async function loadKeys(files: readonly string[]): Promise<AuthorizedKeys> {
  const keys: AuthorizedKeys['keys'][number][] = [];
  const problems: string[] = [];
  for (const file of files) {
    const loaded = await readAuthorizedKeys(file);
    keys.push(...loaded.keys);
    problems.push(...loaded.problems);
  }
  return { keys, problems };
}

/** Resolves on SIGINT or SIGTERM. */
function untilSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (signal: string) => {
      process.removeListener('SIGINT', onInt);
      process.removeListener('SIGTERM', onTerm);
      resolve(signal);
    };
    const onInt = () => on('SIGINT');
    const onTerm = () => on('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
  });
}

async function run(argv: readonly string[], io: CliIo): Promise<number> {
  let values: Record<string, string | undefined>;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string' },
        host: { type: 'string' },
        'host-key': { type: 'string' },
        'authorized-keys': { type: 'string' },
        backend: { type: 'string' },
        policy: { type: 'string' },
        profile: { type: 'string' },
        'agent-command': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (error) {
    throw new SnpsimError(SnpsimErrorCode.USAGE, `${(error as Error).message} (see snpsim sim-guest --help)`);
  }
  const portText = values.port;
  if (portText === undefined)
    throw new SnpsimError(SnpsimErrorCode.USAGE, '--port N is required (0: any free port)');
  if (!/^(?:0|[1-9][0-9]{0,4})$/.test(portText) || Number(portText) > 65535)
    throw new SnpsimError(SnpsimErrorCode.USAGE, `--port ${portText}: expected 0..65535`);
  const port = Number(portText);
  // The same "PATH [ARGS]" syntax as the clients' --agent-command (cli/ssh-options.ts).
  const agentCommand =
    values['agent-command'] !== undefined
      ? parseAgentCommand('--agent-command', values['agent-command'])
      : [DEFAULT_AGENT_PATH];
  const agentCommandText = agentCommand.join(' ');
  // What the connect line passes: quoted for the shell when it has arguments (every word is plain).
  const agentFlag =
    agentCommandText === DEFAULT_AGENT_PATH
      ? ''
      : ` --agent-command ${agentCommand.length > 1 ? `'${agentCommandText}'` : agentCommandText}`;
  const backendName = values.backend ?? DEFAULT_SIM_BACKEND;
  const factory = simBackends[backendName];
  if (factory === undefined)
    throw new SnpsimError(
      SnpsimErrorCode.USAGE,
      `--backend ${backendName}: unknown; known: ${Object.keys(simBackends).join(', ')}`,
    );
  const keyFiles =
    values['authorized-keys'] !== undefined ? [values['authorized-keys']] : defaultPublicKeys();
  if (keyFiles.length === 0)
    throw new SnpsimError(
      SnpsimErrorCode.USAGE,
      'no client keys: pass --authorized-keys FILE, or create one with ssh-keygen -t ed25519',
    );
  const authorized = await loadKeys(keyFiles);
  for (const problem of authorized.problems) io.stderr.write(`snpsim sim-guest: skipped ${problem}\n`);
  if (authorized.keys.length === 0)
    throw new SnpsimError(SnpsimErrorCode.USAGE, `no usable public key in ${keyFiles.join(', ')}`);
  const backend: AgentBackend = await factory({
    ...(values.policy !== undefined ? { policy: values.policy } : {}),
    ...(values.profile !== undefined ? { profile: values.profile } : {}),
  });
  const hostKey =
    values['host-key'] !== undefined ? await persistentHostKey(values['host-key']) : ephemeralHostKey();
  const server = await SimGuestServer.start({
    backend,
    authorizedKeys: authorized.keys,
    hostKey,
    host: values.host ?? '127.0.0.1',
    port,
    agentCommand,
  });
  const hello = backend.hello();
  const hostPart = server.host.includes(':') ? `[${server.host}]` : server.host;
  const user = userInfo().username;
  io.stdout.write(
    [
      `snpsim sim-guest: listening on ${hostPart}:${server.port}`,
      `  backend    ${backendName} (policy ${hello.policy ?? 'none'}, profile ${hello.profile ?? 'none'})`,
      `  host key   ${hostKey.publicKeyLine.split(' ')[0]} ${hostKey.fingerprint} (${hostKey.source})`,
      `  clients    ${authorized.keys.length} key(s) from ${keyFiles.join(', ')}; any user name`,
      `  agent      ${server.command}`,
      'connect with:',
      `  snpsim run scenarios/ --target ssh://${user}@${hostPart}:${server.port} --host-key ${hostKey.fingerprint}${agentFlag}`,
      `  or trust it in known_hosts: ssh-keyscan -p ${server.port} ${server.host} >> ~/.ssh/known_hosts`,
      'stop with Ctrl-C',
      '',
    ].join('\n'),
  );
  if (server.host !== '127.0.0.1' && server.host !== '::1' && server.host !== 'localhost')
    io.stderr.write(
      `snpsim sim-guest: warning: listening on ${server.host}, not loopback: anyone holding an authorized key can use it\n`,
    );
  const signal = await untilSignal();
  io.stdout.write(`snpsim sim-guest: ${signal}, stopping\n`);
  await server.close();
  return ExitCode.OK;
}

export const simGuestCommand: CliCommand = {
  name: 'sim-guest',
  summary: 'serve the simulated SNP guest over SSH (the agent protocol, answered by the model)',
  usage: USAGE,
  run,
};
