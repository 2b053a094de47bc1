import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type CliCommand, ExitCode, main, SnpsimError, SnpsimErrorCode } from '../../guest-harness/index.js';

function buffers() {
  const out: string[] = [];
  const err: string[] = [];
  return {
    io: { stdout: { write: (s: string) => out.push(s) }, stderr: { write: (s: string) => err.push(s) } },
    out: () => out.join(''),
    err: () => err.join(''),
  };
}

const failing: CliCommand = {
  name: 'boom',
  summary: 'fails',
  usage: 'usage: snpsim boom',
  run: async () => {
    throw new SnpsimError(SnpsimErrorCode.SSH_CONNECTION_REFUSED, 'connect ECONNREFUSED 127.0.0.1:22');
  },
};

test('unknown command is a usage error that lists the commands', async () => {
  const b = buffers();
  assert.equal(await main(['nope'], b.io, [failing]), ExitCode.USAGE);
  assert.match(b.err(), /unknown command 'nope'/);
  assert.match(b.err(), /boom +fails/);
});

test('a harness error ends the command with its code and exit code, no stack trace', async () => {
  const b = buffers();
  assert.equal(await main(['boom'], b.io, [failing]), ExitCode.INFRASTRUCTURE);
  assert.match(b.err(), /SNPSIM_SSH_CONNECTION_REFUSED: connect ECONNREFUSED/);
  assert.doesNotMatch(b.err(), /at .*\.js/);
});

test('input errors map to exit code 2, infrastructure errors to 3', () => {
  assert.equal(new SnpsimError(SnpsimErrorCode.SCENARIO_INVALID, 'x').exitCode, ExitCode.USAGE);
  assert.equal(new SnpsimError(SnpsimErrorCode.GUEST_DIED, 'x').exitCode, ExitCode.INFRASTRUCTURE);
  assert.equal(SnpsimError.is(new Error('x')), false);
});
