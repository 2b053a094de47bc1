/**
 * One SSH connection to one target on ssh2's Client: host key verified before anything else (ssh2
 * accepts any key unless `hostVerifier` is set), agent/key auth without prompts, a handshake timeout
 * (`readyTimeout`, covering TCP connect, key exchange and auth), keepalive, and many exec channels
 * multiplexed over it through a queue kept below OpenSSH's `MaxSessions` (10 by default).
 * Every failure is a SnpsimError naming `user@host:port` and what failed.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { prepareAuth, type SshAuthOptions } from './auth.js';
import {
  type HostKeyAcceptance,
  type HostKeyPolicy,
  preferredHostKeyAlgorithms,
  verifyHostKey,
} from './host-key-policy.js';
import { Limiter } from './limiter.js';
import { type AnyAuthMethod, Client, type ClientChannel, type SFTPWrapper } from './ssh2.js';

/** ssh2's default readyTimeout (landscape §4.3). */
export const DEFAULT_READY_TIMEOUT_MS = 20_000;
/** Keepalive every 15 s, give up after 3 unanswered (OpenSSH ServerAliveInterval/CountMax style). */
export const DEFAULT_KEEPALIVE_INTERVAL_MS = 15_000;
export const DEFAULT_KEEPALIVE_COUNT_MAX = 3;
/** Below OpenSSH sshd's MaxSessions default of 10 (sshd_config(5)). */
export const DEFAULT_MAX_SESSIONS = 8;

export interface SshConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly username: string;
  readonly hostKey: HostKeyPolicy;
  readonly auth?: SshAuthOptions;
  readonly readyTimeoutMs?: number;
  /** 0 disables keepalive. */
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveCountMax?: number;
  /** Concurrent session channels (exec, SFTP) on this connection. */
  readonly maxSessions?: number;
}

interface Ssh2Error extends Error {
  level?: string;
  code?: string | number;
}

const DNS_CODES = new Set(['ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EAI_FAIL', 'EAI_NODATA']);
const UNREACHABLE_CODES = new Set(['EHOSTUNREACH', 'ENETUNREACH', 'EHOSTDOWN', 'ENETDOWN']);

/** A brand-new error, never the ssh2 one, so messages are ours. */
function mapConnectError(
  error: Ssh2Error,
  endpoint: string,
  context: {
    readyTimeoutMs: number;
    offered: readonly string[];
    skipped: readonly string[];
    agentErrors: string[];
  },
): SnpsimError {
  const details = { endpoint, cause: error.message };
  const code = typeof error.code === 'string' ? error.code : undefined;
  if (error.level === 'client-socket' || error.level === 'client-dns') {
    if (code === 'ECONNREFUSED')
      return new SnpsimError(
        SnpsimErrorCode.SSH_CONNECTION_REFUSED,
        `connection refused by ${endpoint}: nothing listens on that port (is sshd or \`snpsim sim-guest\` running?)`,
        details,
        error,
      );
    if ((code !== undefined && DNS_CODES.has(code)) || error.level === 'client-dns')
      return new SnpsimError(
        SnpsimErrorCode.SSH_DNS,
        `cannot resolve the host of ${endpoint}: ${code ?? error.message}`,
        details,
        error,
      );
    if (code !== undefined && UNREACHABLE_CODES.has(code))
      return new SnpsimError(
        SnpsimErrorCode.SSH_UNREACHABLE,
        `${endpoint} is unreachable (${code})`,
        details,
        error,
      );
    if (code === 'ETIMEDOUT')
      return new SnpsimError(
        SnpsimErrorCode.SSH_TIMEOUT,
        `TCP connect to ${endpoint} timed out`,
        details,
        error,
      );
    return new SnpsimError(
      SnpsimErrorCode.SSH_PROTOCOL,
      `connection to ${endpoint} failed during the SSH handshake: ${code ?? error.message}`,
      details,
      error,
    );
  }
  if (error.level === 'client-timeout')
    return new SnpsimError(
      SnpsimErrorCode.SSH_TIMEOUT,
      `no SSH handshake with ${endpoint} within ${context.readyTimeoutMs} ms (connect + key exchange + auth; ` +
        'raise it with --connect-timeout)',
      details,
      error,
    );
  if (error.level === 'client-authentication') {
    const tried = context.offered.length > 0 ? context.offered.join(', ') : 'nothing';
    const notes = [...context.skipped, ...context.agentErrors];
    return new SnpsimError(
      SnpsimErrorCode.SSH_AUTH,
      `authentication to ${endpoint} failed: the server accepted none of: ${tried}` +
        `${notes.length > 0 ? ` (also: ${notes.join('; ')})` : ''}. Put the public key in the guest's ` +
        'authorized_keys, or name the right key with --identity FILE',
      details,
      error,
    );
  }
  return new SnpsimError(
    SnpsimErrorCode.SSH_PROTOCOL,
    error.message === 'Connection lost before handshake'
      ? `${endpoint} closed the connection before the SSH handshake (not an SSH server, or sshd refused it)`
      : `SSH protocol failure with ${endpoint}: ${error.message}`,
    details,
    error,
  );
}

/** Why a connection ended after it was established. */
export interface ConnectionLoss {
  readonly message: string;
  readonly code: SnpsimErrorCode;
}

export class SshConnection {
  readonly endpoint: string;
  readonly hostKey: HostKeyAcceptance;
  readonly #client: InstanceType<typeof Client>;
  readonly #sessions: Limiter;
  #lost: ConnectionLoss | undefined;
  #closing = false;
  readonly #lossListeners = new Set<(loss: ConnectionLoss) => void>();

  private constructor(
    client: InstanceType<typeof Client>,
    endpoint: string,
    hostKey: HostKeyAcceptance,
    maxSessions: number,
  ) {
    this.#client = client;
    this.endpoint = endpoint;
    this.hostKey = hostKey;
    this.#sessions = new Limiter(maxSessions);
    let lastError: Ssh2Error | undefined;
    client.on('error', (error: Ssh2Error) => {
      lastError = error;
    });
    client.on('close', () => {
      if (this.#lost !== undefined) return;
      this.#lost = this.#closing
        ? { code: SnpsimErrorCode.GUEST_DIED, message: `connection to ${endpoint} was closed by snpsim` }
        : lastError?.message === 'Keepalive timeout'
          ? {
              code: SnpsimErrorCode.GUEST_DIED,
              message: `connection to ${endpoint} lost: keepalives unanswered (guest hung, or network down)`,
            }
          : {
              code: SnpsimErrorCode.GUEST_DIED,
              message: `connection to ${endpoint} lost${lastError !== undefined ? ` (${lastError.message})` : ''}`,
            };
      for (const listener of this.#lossListeners) listener(this.#lost);
    });
  }

  /** Connects, verifies the host key and authenticates. Throws SnpsimError. */
  static async connect(options: SshConnectOptions): Promise<SshConnection> {
    const { host, port, username } = options;
    const endpoint = `${username}@${host}:${port}`;
    const readyTimeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const auth = await prepareAuth(username, options.auth);
    const serverHostKey = await preferredHostKeyAlgorithms(options.hostKey, host, port);
    const client = new Client();
    const agentErrors: string[] = [];
    let hostKeyError: SnpsimError | undefined;
    let accepted: HostKeyAcceptance | undefined;
    const methods = [...auth.methods];
    const authHandler = (
      _left: unknown,
      _partial: unknown,
      next: (method: AnyAuthMethod | false) => void,
    ) => {
      next(methods.shift() ?? false);
    };
    const ready = new Promise<void>((resolve, reject) => {
      let settled = false;
      const settle = (error?: SnpsimError) => {
        if (settled) return;
        settled = true;
        if (error === undefined) resolve();
        else {
          client.destroy();
          reject(error);
        }
      };
      client.once('ready', () => settle());
      client.on('error', (error: Ssh2Error) => {
        if (settled) return;
        if (error.level === 'agent') {
          agentErrors.push(`ssh-agent: ${error.message}`);
          return;
        }
        if (hostKeyError !== undefined) return settle(hostKeyError);
        settle(
          mapConnectError(error, endpoint, {
            readyTimeoutMs,
            offered: auth.offered,
            skipped: auth.skipped,
            agentErrors,
          }),
        );
      });
      client.once('close', () =>
        settle(
          hostKeyError ??
            new SnpsimError(
              SnpsimErrorCode.SSH_PROTOCOL,
              `${endpoint} closed the connection before authentication completed`,
              { endpoint },
            ),
        ),
      );
    });
    client.connect({
      host,
      port,
      username,
      readyTimeout: readyTimeoutMs,
      keepaliveInterval: options.keepaliveIntervalMs ?? DEFAULT_KEEPALIVE_INTERVAL_MS,
      keepaliveCountMax: options.keepaliveCountMax ?? DEFAULT_KEEPALIVE_COUNT_MAX,
      algorithms: { serverHostKey: serverHostKey as never },
      authHandler: authHandler as never,
      hostVerifier: (key: Buffer, verify: (valid: boolean) => void) => {
        verifyHostKey(options.hostKey, host, port, key).then(
          (verdict) => {
            if (verdict.ok) accepted = verdict.accepted;
            else hostKeyError = verdict.error;
            verify(verdict.ok);
          },
          (error: unknown) => {
            hostKeyError = SnpsimError.is(error)
              ? error
              : new SnpsimError(
                  SnpsimErrorCode.SSH_PROTOCOL,
                  `host key check for ${endpoint} failed: ${(error as Error).message}`,
                  { endpoint },
                  error,
                );
            verify(false);
          },
        );
      },
    });
    // Small request/response lines: Nagle + delayed ACK would add ~40 ms per exchange.
    client.setNoDelay(true);
    await ready;
    if (accepted === undefined) {
      client.destroy();
      throw new SnpsimError(SnpsimErrorCode.SSH_PROTOCOL, `${endpoint}: ready without a verified host key`);
    }
    return new SshConnection(client, endpoint, accepted, options.maxSessions ?? DEFAULT_MAX_SESSIONS);
  }

  /** Set once the connection has ended (lost or closed). */
  get lost(): ConnectionLoss | undefined {
    return this.#lost;
  }

  /** Called once when the connection ends; returns an unsubscribe function. */
  onLoss(listener: (loss: ConnectionLoss) => void): () => void {
    this.#lossListeners.add(listener);
    return () => this.#lossListeners.delete(listener);
  }

  /** Session channels open or queued (for tests and progress). */
  get sessions(): { readonly active: number; readonly waiting: number } {
    return { active: this.#sessions.active, waiting: this.#sessions.waiting };
  }

  #lostError(what: string): SnpsimError {
    const loss = this.#lost;
    return new SnpsimError(
      loss?.code ?? SnpsimErrorCode.GUEST_DIED,
      `${what}: ${loss?.message ?? 'not connected'}`,
      {
        endpoint: this.endpoint,
      },
    );
  }

  /**
   * Opens an exec channel for `command` (already validated and quoted), runs `use`, and returns its
   * result as soon as `use` settles. The session slot stays taken until the server has closed the
   * channel (or the connection is gone): a remote process stuck in the kernel keeps counting
   * against MaxSessions, but never blocks the caller.
   */
  async withExec<T>(command: string, use: (channel: ClientChannel) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.#sessions
        .run(async () => {
          if (this.#lost !== undefined)
            throw this.#lostError(`cannot start \`${command}\` on ${this.endpoint}`);
          const channel = await this.#openExec(command);
          const closed = new Promise<void>((done) => channel.once('close', () => done()));
          try {
            resolve(await use(channel));
          } catch (error) {
            reject(error);
          }
          if (this.#lost === undefined) channel.close();
          await closed;
        })
        .catch(reject);
    });
  }

  #openExec(command: string): Promise<ClientChannel> {
    return new Promise<ClientChannel>((resolve, reject) => {
      try {
        this.#client.exec(command, (error, stream) => {
          if (!error) return resolve(stream);
          reject(
            this.#lost !== undefined
              ? this.#lostError(`cannot start \`${command}\``)
              : new SnpsimError(
                  SnpsimErrorCode.SSH_PROTOCOL,
                  `${this.endpoint} refused to run \`${command}\`: ${error.message}`,
                  { endpoint: this.endpoint, command },
                  error,
                ),
          );
        });
      } catch {
        // ssh2 throws "Not connected" when the socket is already gone.
        reject(this.#lostError(`cannot start \`${command}\``));
      }
    });
  }

  /** Runs `use` with an SFTP session (one session slot). */
  async withSftp<T>(use: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    return this.#sessions.run(async () => {
      if (this.#lost !== undefined) throw this.#lostError(`cannot start SFTP on ${this.endpoint}`);
      const sftp = await new Promise<SFTPWrapper>((resolve, reject) => {
        this.#client.sftp((error, session) => {
          if (error)
            reject(
              new SnpsimError(
                SnpsimErrorCode.SSH_PROTOCOL,
                `${this.endpoint} refused the SFTP subsystem: ${error.message}`,
                { endpoint: this.endpoint },
                error,
              ),
            );
          else resolve(session);
        });
      });
      try {
        return await use(sftp);
      } finally {
        sftp.end();
      }
    });
  }

  /** Ends the connection; resolves once the socket has closed. */
  async close(): Promise<void> {
    if (this.#lost !== undefined) return;
    this.#closing = true;
    const closed = new Promise<void>((resolve) => this.#client.once('close', () => resolve()));
    this.#client.end();
    await closed;
  }
}
