/**
 * AgentTarget over SSH: one connection per target, one exec channel of the fixed agent command per
 * batch (requests on stdin, responses streamed back), session channels queued below MaxSessions.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { type AgentHello, type AgentRequest, DEFAULT_AGENT_PATH } from '../protocol/index.js';
import type { SshAuthOptions } from '../ssh/auth.js';
import { SshConnection } from '../ssh/connection.js';
import type { HostKeyPolicy } from '../ssh/host-key-policy.js';
import { remoteCommand } from '../ssh/remote-command.js';
import { encodeBatch, exchange, ssh2AgentChannel } from './exchange.js';
import type { AgentTarget, BatchOptions, BatchResult } from './target.js';
import { formatSshTargetUrl, parseSshTargetUrl, type SshTargetUrl } from './url.js';

/** PROTOCOL.md: the agent's default install path. */
export const DEFAULT_AGENT_COMMAND: readonly string[] = Object.freeze([DEFAULT_AGENT_PATH]);
/** Default per-step timeout (also for the hello of `open()`). */
export const DEFAULT_STEP_TIMEOUT_MS = 10_000;

export interface SshTargetOptions {
  readonly hostKey: HostKeyPolicy;
  readonly auth?: SshAuthOptions;
  readonly readyTimeoutMs?: number;
  readonly keepaliveIntervalMs?: number;
  readonly keepaliveCountMax?: number;
  readonly maxSessions?: number;
  /** The agent command as argv (each element validated, then single-quoted). */
  readonly agentCommand?: readonly string[];
  /** Step timeout for the hello read by `open()`. */
  readonly helloTimeoutMs?: number;
}

export class SshAgentTarget implements AgentTarget {
  readonly id: string;
  readonly url: SshTargetUrl;
  /** The remote command string (validated and quoted once). */
  readonly command: string;
  readonly #options: SshTargetOptions;
  #connection: SshConnection | undefined;
  #connecting: Promise<SshConnection> | undefined;
  #hello: AgentHello | undefined;

  constructor(url: string | SshTargetUrl, options: SshTargetOptions) {
    this.url = typeof url === 'string' ? parseSshTargetUrl(url) : url;
    this.id = formatSshTargetUrl(this.url);
    this.command = remoteCommand(options.agentCommand ?? DEFAULT_AGENT_COMMAND, 'agent command');
    this.#options = options;
  }

  /** The hello read by `open()`. */
  get hello(): AgentHello | undefined {
    return this.#hello;
  }

  /** Connects (once) without talking to the agent; install and doctor use the connection directly. */
  async connect(): Promise<SshConnection> {
    if (this.#connection !== undefined && this.#connection.lost === undefined) return this.#connection;
    this.#connecting ??= SshConnection.connect({
      host: this.url.host,
      port: this.url.port,
      username: this.url.user,
      hostKey: this.#options.hostKey,
      ...(this.#options.auth !== undefined ? { auth: this.#options.auth } : {}),
      ...(this.#options.readyTimeoutMs !== undefined ? { readyTimeoutMs: this.#options.readyTimeoutMs } : {}),
      ...(this.#options.keepaliveIntervalMs !== undefined
        ? { keepaliveIntervalMs: this.#options.keepaliveIntervalMs }
        : {}),
      ...(this.#options.keepaliveCountMax !== undefined
        ? { keepaliveCountMax: this.#options.keepaliveCountMax }
        : {}),
      ...(this.#options.maxSessions !== undefined ? { maxSessions: this.#options.maxSessions } : {}),
    });
    try {
      this.#connection = await this.#connecting;
      return this.#connection;
    } finally {
      this.#connecting = undefined;
    }
  }

  async open(): Promise<AgentHello> {
    await this.connect();
    const result = await this.runBatch([], {
      stepTimeoutMs: this.#options.helloTimeoutMs ?? DEFAULT_STEP_TIMEOUT_MS,
    });
    if (result.error !== undefined) throw result.error;
    if (result.hello === undefined)
      throw new SnpsimError(SnpsimErrorCode.AGENT_PROTOCOL, `${this.id}: the agent sent no hello`);
    this.#hello = result.hello;
    return result.hello;
  }

  async runBatch(requests: readonly AgentRequest[], options: BatchOptions): Promise<BatchResult> {
    const connection = this.#connection;
    if (connection === undefined) throw new Error(`${this.id}: runBatch before open()`);
    let encoded: string;
    try {
      encoded = encodeBatch(requests);
    } catch (error) {
      if (SnpsimError.is(error)) return { responses: [], error };
      throw error;
    }
    const endpoint = connection.endpoint;
    try {
      return await connection.withExec(this.command, (stream) =>
        exchange(ssh2AgentChannel(stream), requests, encoded, {
          stepTimeoutMs: options.stepTimeoutMs,
          ...(options.onResponse !== undefined ? { onResponse: options.onResponse } : {}),
          endpoint,
          command: this.command,
          connectionLoss: () => connection.lost,
        }),
      );
    } catch (error) {
      if (!SnpsimError.is(error)) throw error;
      // The channel could not be opened: the connection is gone (GUEST_DIED) or sshd refused it.
      return { responses: [], error };
    }
  }

  async close(): Promise<void> {
    const connection = this.#connection;
    this.#connection = undefined;
    await connection?.close();
  }
}
