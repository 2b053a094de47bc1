/**
 * AgentTarget over SSH: one connection per target, one exec channel of the fixed agent command per
 * batch (requests on stdin, responses streamed back), session channels queued below MaxSessions.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { type AgentHello, type AgentRequest, DEFAULT_AGENT_PATH } from '../protocol/index.js';
import { SshConnection, type SshConnectOptions } from '../ssh/connection.js';
import { remoteCommand } from '../ssh/remote-command.js';
import { encodeBatch, exchange, ssh2AgentChannel } from './exchange.js';
import type { AgentTarget, BatchOptions, BatchResult } from './target.js';
import { formatSshTargetUrl, parseSshTargetUrl, type SshTargetUrl } from './url.js';

/** PROTOCOL.md: the agent's default install path. */
export const DEFAULT_AGENT_COMMAND: readonly string[] = Object.freeze([DEFAULT_AGENT_PATH]);
/** Default per-step timeout (also for the hello of `open()`). */
export const DEFAULT_STEP_TIMEOUT_MS = 10_000;

/** The connection's options (host key policy, auth, timeouts, keepalive, sessions) and the agent's. */
export interface SshTargetOptions extends Omit<SshConnectOptions, 'host' | 'port' | 'username'> {
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
    const { agentCommand: _agent, helloTimeoutMs: _hello, ...connection } = this.#options;
    this.#connecting ??= SshConnection.connect({
      ...connection,
      host: this.url.host,
      port: this.url.port,
      username: this.url.user,
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
