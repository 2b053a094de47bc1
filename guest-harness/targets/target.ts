/**
 * What the runner drives: a place that speaks the agent protocol (a real guest over SSH, the
 * simulated guest over loopback SSH). One batch = one agent run = one round trip.
 */
import type { SnpsimError } from '../errors.js';
import type { AgentHello, AgentRequest, AgentResponse } from '../protocol/index.js';

export interface BatchOptions {
  /**
   * Longest wait for each response after the previous one (for the first: after the hello; the
   * hello itself gets the same). A `wait-marker` step gets its own `timeout_ms` on top.
   */
  readonly stepTimeoutMs: number;
  /** Called for each response as it arrives, in order (index = position in `requests`). */
  readonly onResponse?: (response: AgentResponse, index: number) => void;
}

export interface BatchResult {
  /** The agent's hello for this batch (every agent run starts with one), when it arrived. */
  readonly hello?: AgentHello;
  /** Responses in request order; fewer than requested when `error` is set. */
  readonly responses: readonly AgentResponse[];
  /**
   * What stopped the batch: GUEST_DIED (connection dropped, agent exited mid-batch), STEP_TIMEOUT,
   * AGENT_PROTOCOL (a line that is not protocol v1), INPUT_INVALID (a request that cannot be encoded;
   * nothing was sent).
   */
  readonly error?: SnpsimError;
}

export interface AgentTarget {
  /** A stable name for reports, e.g. `ssh://root@10.0.0.5:22`. */
  readonly id: string;
  /** Connects and reads the agent's hello (platform details). Throws SnpsimError. */
  open(): Promise<AgentHello>;
  /**
   * Runs requests as one batch. Infrastructure failures are returned in `error` with the responses
   * received so far; this rejects only on programming errors (e.g. not opened).
   */
  runBatch(requests: readonly AgentRequest[], options: BatchOptions): Promise<BatchResult>;
  /** Closes the connection; idempotent. */
  close(): Promise<void>;
}
