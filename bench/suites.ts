/** The benchmark registry: one import and one entry per suite. */
import { measureSuite } from './measure.js';
import { rmpCheckSuite } from './rmp-check.js';
import { sshSuite } from './ssh.js';
import type { BenchSuite } from './suite.js';

export const suites: readonly BenchSuite[] = [measureSuite, rmpCheckSuite, sshSuite];
