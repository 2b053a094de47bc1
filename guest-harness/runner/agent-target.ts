/**
 * A target that speaks the agent protocol (a real guest over SSH, the simulated guest over loopback
 * SSH) as the runner needs it: one batch per scenario, its requests followed by a `hello` that
 * tells whether the guest survived the last step, and the replies turned into observations.
 */
import { SnpsimErrorCode } from '../errors.js';
import type { AgentHello, AgentReply, AgentRequest } from '../protocol/index.js';
import { type LoadedScenario, scenarioRequests } from '../scenario/index.js';
import type { AgentTarget } from '../targets/index.js';
import { hex } from './observation.js';
import { batchObservations } from './replies.js';
import type { ScenarioExecution, ScenarioTarget } from './target.js';

/** Platform details of a hello line, with the protocol's key names (kernel, sev_status ...). */
export function helloPlatform(hello: AgentHello): Record<string, string> {
  const out: Record<string, string> = {
    backend: hello.backend,
    agent: hello.agent,
    kernel: hello.kernel,
    module: hello.module,
  };
  if (hello.sevStatus !== undefined) out.sev_status = hex(hello.sevStatus);
  if (hello.vmpl !== undefined) out.vmpl = String(hello.vmpl);
  if (hello.cpus !== undefined) out.cpus = String(hello.cpus);
  if (hello.possibleCpus !== undefined) out.possible_cpus = String(hello.possibleCpus);
  if (hello.family !== undefined) out.family = String(hello.family);
  if (hello.model !== undefined) out.model = String(hello.model);
  if (hello.stepping !== undefined) out.stepping = String(hello.stepping);
  if (hello.microcode !== undefined) out.microcode = hex(hello.microcode);
  if (hello.policy !== undefined) out.policy = hello.policy;
  if (hello.profile !== undefined) out.profile = hello.profile;
  if (hello.hostSteps) out.host_steps = '1';
  for (const [k, v] of Object.entries(hello.extra))
    if (/^[a-z][a-z0-9_]*$/.test(k) && !(k in out)) out[k] = v;
  return out;
}

export class AgentScenarioTarget implements ScenarioTarget {
  #hello: AgentHello | undefined;

  constructor(
    readonly spec: string,
    readonly kind: 'ssh' | 'sim',
    readonly target: AgentTarget,
    readonly stepTimeoutMs: number,
  ) {}

  async open(): Promise<Readonly<Record<string, string>>> {
    this.#hello = await this.target.open();
    return helloPlatform(this.#hello);
  }

  cannotRun(scenario: LoadedScenario): string | undefined {
    if (scenario.modelOnly) return 'uses model-only steps (host-run, concurrent); run it with --target model';
    if (scenario.needsHostSteps && this.#hello?.hostSteps !== true) {
      return 'uses host steps (host-set-mp-state), which only a model-backed target offers (host_steps=1)';
    }
    return undefined;
  }

  async run(scenario: LoadedScenario): Promise<ScenarioExecution> {
    const steps = scenarioRequests(scenario);
    const requests: AgentRequest[] = [...steps.flat(), { verb: 'hello' }];
    const count = requests.length - 1;
    const result = await this.target.runBatch(requests, { stepTimeoutMs: this.stepTimeoutMs });
    const replies: AgentReply[] = result.responses.slice(0, count);
    const aliveAtEnd = result.responses.length > count;
    const died = result.error?.code === SnpsimErrorCode.GUEST_DIED;
    if (result.error !== undefined && !died) {
      return {
        observations: batchObservations(steps, replies, {
          died: false,
          aliveAtEnd: false,
          brokeReason: `${result.error.code}: ${result.error.message}`,
        }),
        error: { code: result.error.code, message: result.error.message },
      };
    }
    return { observations: batchObservations(steps, replies, { died, aliveAtEnd }) };
  }

  async recover(): Promise<string | undefined> {
    await this.target.close().catch(() => undefined);
    try {
      this.#hello = await this.target.open();
      return undefined;
    } catch (error) {
      return `reconnecting failed: ${(error as Error).message}`;
    }
  }

  async close(): Promise<void> {
    await this.target.close();
  }
}
