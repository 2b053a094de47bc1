/** The benchmark registry: one import and one entry per suite. */
import { experimentSuite } from './experiment.js';
import { measureSuite } from './measure.js';
import { rmpCheckSuite } from './rmp-check.js';
import { sshSuite } from './ssh.js';
import type { BenchSuite } from './suite.js';

export const suites: readonly BenchSuite[] = [experimentSuite, measureSuite, rmpCheckSuite, sshSuite];
