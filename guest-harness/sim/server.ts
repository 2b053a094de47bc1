/**
 * The simulated guest: an ssh2 Server that runs the agent protocol on exec of the agent command and
 * refuses everything else (other commands, shells, ptys, subsystems including SFTP, forwarding).
 * Public-key auth against the configured keys only, any user name.
 */
import { timingSafeEqual } from 'node:crypto';
import { createServer, type Server as NetServer, type Socket } from 'node:net';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { DEFAULT_AGENT_PATH } from '../protocol/index.js';
import { remoteCommand } from '../ssh/remote-command.js';
import {
  type AuthContext,
  type Connection,
  type ParsedKey,
  Server,
  type ServerChannel,
  type Session,
} from '../ssh/ssh2.js';
import { GUEST_STOPPED, serveAgent } from './agent-session.js';
import type { AgentBackend } from './backend.js';
import { ephemeralHostKey, type HostKeyMaterial } from './keys.js';

export interface SimGuestOptions {
  readonly backend: AgentBackend;
  /** Client public keys allowed to log in (any user name). */
  readonly authorizedKeys: readonly ParsedKey[];
  /** Default: a fresh ephemeral ed25519 key. */
  readonly hostKey?: HostKeyMaterial;
  /** Default 127.0.0.1. */
  readonly host?: string;
  /** Default 0 (any free port). */
  readonly port?: number;
  /** The one command served (argv); default the agent's install path. */
  readonly agentCommand?: readonly string[];
}

function keyMatches(key: ParsedKey, offered: Buffer): boolean {
  const blob = key.getPublicSSH();
  return blob.length === offered.length && timingSafeEqual(blob, offered);
}

export class SimGuestServer {
  readonly host: string;
  readonly port: number;
  readonly hostKey: HostKeyMaterial;
  /** The exec command string served (what an SSH target sends). */
  readonly command: string;
  readonly #net: NetServer;
  readonly #sockets: Set<Socket>;

  private constructor(
    host: string,
    port: number,
    hostKey: HostKeyMaterial,
    command: string,
    net: NetServer,
    sockets: Set<Socket>,
  ) {
    this.host = host;
    this.port = port;
    this.hostKey = hostKey;
    this.command = command;
    this.#net = net;
    this.#sockets = sockets;
  }

  static async start(options: SimGuestOptions): Promise<SimGuestServer> {
    if (options.authorizedKeys.length === 0)
      throw new SnpsimError(
        SnpsimErrorCode.USAGE,
        'the simulated guest needs at least one authorized public key',
      );
    const hostKey = options.hostKey ?? ephemeralHostKey();
    const command = remoteCommand(options.agentCommand ?? [DEFAULT_AGENT_PATH], 'agent command');
    const ssh = new Server({ hostKeys: [hostKey.privateKey], ident: 'snpsim-sim-guest' });
    ssh.on('connection', (client: Connection) => serveConnection(client, options, command));
    const sockets = new Set<Socket>();
    const net = createServer((socket) => {
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
      ssh.injectSocket(socket);
    });
    const host = options.host ?? '127.0.0.1';
    await new Promise<void>((resolve, reject) => {
      net.once('error', (error: NodeJS.ErrnoException) =>
        reject(
          new SnpsimError(
            SnpsimErrorCode.USAGE,
            `sim-guest cannot listen on ${host}:${options.port ?? 0}: ${error.code ?? error.message}`,
            { host, port: options.port },
            error,
          ),
        ),
      );
      net.listen(options.port ?? 0, host, () => resolve());
    });
    const address = net.address();
    const port = typeof address === 'object' && address !== null ? address.port : (options.port ?? 0);
    return new SimGuestServer(host, port, hostKey, command, net, sockets);
  }

  /** Open client connections. */
  get connections(): number {
    return this.#sockets.size;
  }

  /** Cuts every client connection at the TCP level, as a guest that died would. */
  dropConnections(): void {
    for (const socket of this.#sockets) socket.destroy();
  }

  /**
   * Stops reading from every client connection, as a hung guest would: TCP stays up, nothing is
   * answered (not even keepalives).
   */
  freezeConnections(): void {
    for (const socket of this.#sockets) socket.pause();
  }

  /** Stops listening and cuts the remaining connections. */
  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#net.close(() => resolve()));
    this.dropConnections();
    await closed;
  }
}

function serveConnection(client: Connection, options: SimGuestOptions, command: string): void {
  client.on('error', () => undefined);
  client.on('authentication', (ctx: AuthContext) => {
    if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
    const key = options.authorizedKeys.find((k) => keyMatches(k, ctx.key.data));
    if (key === undefined) return ctx.reject(['publickey']);
    if (ctx.signature === undefined || ctx.blob === undefined) return ctx.accept();
    if (key.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true) return ctx.accept();
    return ctx.reject(['publickey']);
  });
  client.on('ready', () => {
    client.on('request', (_accept: unknown, reject?: () => void) => reject?.());
    client.on('tcpip', (_accept: unknown, reject: () => void) => reject());
    client.on('openssh.streamlocal', (_accept: unknown, reject: () => void) => reject());
    client.on('session', (acceptSession: () => Session) => {
      const session = acceptSession();
      for (const event of [
        'pty',
        'shell',
        'subsystem',
        'sftp',
        'x11',
        'env',
        'auth-agent',
        'signal',
        'window-change',
      ])
        session.on(event, (_accept: unknown, reject?: () => void) => reject?.());
      session.once('exec', (accept: () => ServerChannel, reject: () => void, info: { command: string }) => {
        if (info.command !== command) return reject();
        runAgent(accept(), options.backend);
      });
    });
  });
}

function runAgent(channel: ServerChannel, backend: AgentBackend): void {
  let open = true;
  channel.on('error', () => undefined);
  channel.on('close', () => {
    open = false;
  });
  serveAgent(
    {
      input: channel,
      write: (text) => {
        if (open) channel.write(text);
      },
      writeError: (text) => {
        if (open) channel.stderr.write(text);
      },
    },
    backend,
  ).then(
    (status) => {
      if (!open) return;
      if (status === GUEST_STOPPED) {
        channel.close();
        return;
      }
      channel.exit(status);
      channel.end();
    },
    () => {
      if (!open) return;
      channel.exit(70);
      channel.end();
    },
  );
}
