/**
 * The model behind the SSH side's `AgentTarget` interface, in-process: every batch is one agent run
 * on a freshly booted model guest (as the simulated guest serves it), answered with the protocol's
 * typed responses. A guest that stops mid-batch ends the batch with SNPSIM_GUEST_DIED and the
 * responses received so far, as a real guest's dropped connection does.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import type { AgentHello, AgentRequest, AgentResponse } from '../protocol/index.js';
import type { AgentBackend } from '../sim/backend.js';
import type { AgentTarget, BatchOptions, BatchResult } from '../targets/index.js';
import { type ModelBackendOptions, modelBackend } from './backend.js';

export class ModelAgentTarget implements AgentTarget {
  readonly id: string;
  readonly #backend: AgentBackend;
  #open = false;

  constructor(options: ModelBackendOptions, id = `model:${options.policy.name}:${options.profile.name}`) {
    this.id = id;
    this.#backend = modelBackend(options);
  }

  async open(): Promise<AgentHello> {
    this.#open = true;
    return this.#backend.hello();
  }

  async runBatch(requests: readonly AgentRequest[], options: BatchOptions): Promise<BatchResult> {
    if (!this.#open) throw new Error(`${this.id}: runBatch before open()`);
    const session = this.#backend.openSession();
    const responses: AgentResponse[] = [];
    try {
      for (const [i, request] of requests.entries()) {
        let reply: Awaited<ReturnType<typeof session.execute>>;
        try {
          reply = await session.execute(request);
        } catch (error) {
          return {
            hello: this.#backend.hello(),
            responses,
            error: new SnpsimError(
              SnpsimErrorCode.GUEST_DIED,
              `${this.id}: the guest stopped at request ${i + 1} of ${requests.length} (${request.verb}): ${(error as Error).message}`,
              { received: responses.length, requested: requests.length },
            ),
          };
        }
        const response = { ...reply, seq: i + 1 } as AgentResponse;
        responses.push(response);
        options.onResponse?.(response, i);
      }
      return { hello: this.#backend.hello(), responses };
    } finally {
      await session.close();
    }
  }

  async close(): Promise<void> {
    this.#open = false;
  }
}
