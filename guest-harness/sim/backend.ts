/**
 * What answers the agent protocol inside the simulated guest. The model-backed backend (the model's
 * guest, guest-harness/model-guest/) implements this; the built-in `protocol` backend answers only
 * protocol-level requests.
 *
 * A backend opens one session per agent run (= one batch): PROTOCOL.md scopes handles `h=` to a batch
 * and frees pages at its end, and batches on parallel channels must not share handles.
 */
import type { AgentHello, AgentReply, AgentRequest } from '../protocol/index.js';

export interface AgentBackendSession {
  /**
   * Answers one request (already validated by the codec); `reply.verb` must equal `request.verb`.
   * Throw SimGuestStopped when the simulated guest died: the run ends the way a dead guest's does.
   * Any other exception is a backend bug (stderr message, exit status 70).
   */
  execute(request: AgentRequest): AgentReply | Promise<AgentReply>;
  /** End of the batch (EOF on stdin, or the channel closed): release its handles. */
  close(): void | Promise<void>;
}

export interface AgentBackend {
  /** The platform details written as the hello line of every agent run. */
  hello(): AgentHello;
  openSession(): AgentBackendSession;
}

/** Options a backend is created with (`snpsim sim-guest --policy P --profile F`). */
export interface AgentBackendOptions {
  /** Host policy name or JSON file; validated by the backend. */
  readonly policy?: string;
  /** Firmware profile name or JSON file; validated by the backend. */
  readonly profile?: string;
}

/** Creates a backend; throws SnpsimError (POLICY_INVALID, PROFILE_INVALID, USAGE) on bad options. */
export type AgentBackendFactory = (options: AgentBackendOptions) => AgentBackend | Promise<AgentBackend>;

/**
 * Thrown by a session when the simulated guest has stopped (VM dead): the sim server closes the
 * channel with no answer, no stderr and no exit status, as a guest that died would; the stdio agent
 * kills itself with SIGKILL.
 */
export class SimGuestStopped extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = 'SimGuestStopped';
  }
}
