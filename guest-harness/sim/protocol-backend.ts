/**
 * The built-in `protocol` backend: no model behind it. It answers `hello` with its own details and
 * every other verb with `unsupported`, honestly: it never invents a model outcome. Malformed lines
 * never reach it (the agent session answers them `bad-request`). Used by tests, the benchmark and
 * `snpsim sim-guest --backend protocol`.
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { type AgentHello, PROTOCOL_VERSION } from '../protocol/index.js';
import type { AgentBackend, AgentBackendFactory } from './backend.js';

/** Version token written as `agent=` by snpsim's TypeScript agents (sim server, stdio agent). */
export const SIM_AGENT_VERSION = '0.1.0';

export interface ProtocolBackendOptions {
  /** Online CPUs reported in the hello (default 4); the hello says nothing about a CPU model. */
  readonly cpus?: number;
}

export function protocolBackend(options: ProtocolBackendOptions = {}): AgentBackend {
  const cpus = options.cpus ?? 4;
  const hello: AgentHello = Object.freeze({
    protocol: PROTOCOL_VERSION,
    agent: SIM_AGENT_VERSION,
    backend: 'sim',
    kernel: 'none',
    module: 'none',
    cpus,
    possibleCpus: cpus,
    policy: 'none',
    profile: 'none',
    hostSteps: false,
    extra: Object.freeze({}),
  });
  return {
    hello: () => hello,
    openSession: () => ({
      execute: (request) =>
        request.verb === 'hello'
          ? { status: 'ok', verb: 'hello', hello }
          : { status: 'err', verb: request.verb, code: 'unsupported' },
      close: () => undefined,
    }),
  };
}

/** Factory form: the protocol backend has no model, so a policy or profile is a usage error. */
export const protocolBackendFactory: AgentBackendFactory = (options) => {
  if (options.policy !== undefined || options.profile !== undefined)
    throw new SnpsimError(
      SnpsimErrorCode.USAGE,
      'the protocol backend has no model: --policy/--profile need a model-backed backend (--backend model)',
    );
  return protocolBackend();
};
