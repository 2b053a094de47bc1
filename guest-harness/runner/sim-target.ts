/**
 * `--target sim`: the built-in simulated guest, backed by the model, started on a loopback port
 * with an ephemeral host key that the client pins, and key authentication with a key generated for
 * this run (kept in a private temporary directory, removed on close). The runner then talks to it
 * over real SSH exactly as it talks to a real guest.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import { modelBackend, resolvePolicy, resolveProfile } from '../model-guest/index.js';
import type { LoadedScenario } from '../scenario/index.js';
import { ephemeralHostKey, parseAuthorizedKeys, SimGuestServer } from '../sim/index.js';
import { generateEd25519KeyPair } from '../ssh/index.js';
import { DEFAULT_STEP_TIMEOUT_MS, SshAgentTarget } from '../targets/index.js';
import { AgentScenarioTarget } from './agent-target.js';
import type { ScenarioExecution, ScenarioTarget } from './target.js';

export class SimTarget implements ScenarioTarget {
  readonly kind = 'sim' as const;
  #server: SimGuestServer | undefined;
  #dir: string | undefined;
  #inner: AgentScenarioTarget | undefined;

  constructor(
    readonly spec: string,
    readonly policy: string,
    readonly profile: string,
    readonly stepTimeoutMs: number = DEFAULT_STEP_TIMEOUT_MS,
  ) {}

  async open(): Promise<Readonly<Record<string, string>>> {
    const backend = modelBackend({
      policy: resolvePolicy(this.policy),
      profile: resolveProfile(this.profile),
    });
    const client = generateEd25519KeyPair({ comment: 'snpsim-run' });
    const authorized = parseAuthorizedKeys(client.public, 'the run key');
    if (authorized.keys.length !== 1) {
      throw new SnpsimError(
        SnpsimErrorCode.SSH_AUTH,
        `could not prepare the run key: ${authorized.problems.join('; ')}`,
      );
    }
    const hostKey = ephemeralHostKey();
    this.#server = await SimGuestServer.start({ backend, authorizedKeys: authorized.keys, hostKey });
    this.#dir = await mkdtemp(join(tmpdir(), 'snpsim-sim-'));
    const identity = join(this.#dir, 'id_ed25519');
    await writeFile(identity, client.private, { mode: 0o600 });
    const target = new SshAgentTarget(
      { user: 'snpsim', host: this.#server.host, port: this.#server.port },
      {
        hostKey: { pins: [hostKey.fingerprint] },
        auth: { agentSocket: null, identityFiles: [identity] },
        helloTimeoutMs: this.stepTimeoutMs,
      },
    );
    this.#inner = new AgentScenarioTarget(this.spec, 'sim', target, this.stepTimeoutMs);
    const platform = await this.#inner.open();
    return { ...platform, endpoint: `127.0.0.1:${this.#server.port}`, host_key: hostKey.fingerprint };
  }

  cannotRun(scenario: LoadedScenario): string | undefined {
    return this.#inner?.cannotRun(scenario);
  }

  async run(scenario: LoadedScenario): Promise<ScenarioExecution> {
    if (this.#inner === undefined) throw new Error('SimTarget.run before open');
    return this.#inner.run(scenario);
  }

  async recover(): Promise<string | undefined> {
    return this.#inner === undefined ? 'not open' : this.#inner.recover();
  }

  async close(): Promise<void> {
    await this.#inner?.close().catch(() => undefined);
    await this.#server?.close();
    if (this.#dir !== undefined) await rm(this.#dir, { recursive: true, force: true });
    this.#inner = undefined;
    this.#server = undefined;
    this.#dir = undefined;
  }
}
