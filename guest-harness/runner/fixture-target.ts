/**
 * `--target fixture:FILE`: replays a recorded target run offline. A scenario that was not recorded
 * is skipped; a scenario edited since the recording is refused before anything runs (its recorded
 * observations would answer different requests).
 */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import type { LoadedScenario } from '../scenario/index.js';
import type { Fixture, FixtureScenario } from './fixture.js';
import type { ScenarioExecution, ScenarioTarget } from './target.js';

/** Scenarios whose recorded hash differs from the loaded one, as problems (empty when none). */
export function staleScenarios(
  fixture: Fixture,
  file: string,
  scenarios: readonly LoadedScenario[],
): string[] {
  const recorded = new Map(fixture.scenarios.map((s) => [s.name, s]));
  return scenarios
    .filter((s) => {
      const r = recorded.get(s.name);
      return r !== undefined && r.hash !== s.hash;
    })
    .map(
      (s) =>
        `${file}: scenario '${s.name}' (${s.file}) changed since it was recorded (hash ${recorded.get(s.name)?.hash.slice(0, 12)} recorded, ${s.hash.slice(0, 12)} now); record it again`,
    );
}

export class FixtureTarget implements ScenarioTarget {
  readonly kind = 'fixture' as const;
  readonly #recorded: ReadonlyMap<string, FixtureScenario>;

  constructor(
    readonly spec: string,
    readonly fixture: Fixture,
  ) {
    this.#recorded = new Map(fixture.scenarios.map((s) => [s.name, s]));
  }

  async open(): Promise<Readonly<Record<string, string>>> {
    return {
      ...this.fixture.platform,
      recorded_target: this.fixture.target,
      recorded_at: this.fixture.recordedAt,
    };
  }

  cannotRun(scenario: LoadedScenario): string | undefined {
    const r = this.#recorded.get(scenario.name);
    if (r === undefined) return `not recorded in ${this.spec.slice('fixture:'.length)}`;
    if (r.status === 'skipped') return `skipped when recorded: ${r.reason ?? 'no reason recorded'}`;
    return undefined;
  }

  async run(scenario: LoadedScenario): Promise<ScenarioExecution> {
    const r = this.#recorded.get(scenario.name);
    if (r === undefined || r.hash !== scenario.hash) {
      throw new SnpsimError(
        SnpsimErrorCode.FIXTURE_INVALID,
        `fixture has no current recording of '${scenario.name}'`,
      );
    }
    return {
      observations: r.observations,
      ...(r.status === 'error' && r.error !== undefined
        ? { error: { code: r.error.code, message: `recorded: ${r.error.message}` } }
        : {}),
    };
  }

  async recover(): Promise<string | undefined> {
    return undefined;
  }

  async close(): Promise<void> {}
}
