/** One remote command to completion over an SSH connection: exit status, stdout and stderr. */
import { SnpsimError, SnpsimErrorCode } from '../errors.js';
import type { SshConnection } from './connection.js';

export interface RemoteResult {
  /** Exit status; null when the command was killed or the server sent none. */
  readonly code: number | null;
  readonly signal: string | null;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunRemoteOptions {
  /** The command must finish within this (STEP_TIMEOUT otherwise). */
  readonly timeoutMs: number;
  /** Bytes kept of each of stdout and stderr (the tail). Default 64 KiB. */
  readonly maxOutput?: number;
}

/**
 * Runs `command` (already validated and quoted: see remote-command.ts) with stdin closed. Throws
 * SnpsimError: STEP_TIMEOUT, GUEST_DIED when the connection drops, SSH_PROTOCOL when refused.
 */
export async function runRemote(
  connection: SshConnection,
  command: string,
  options: RunRemoteOptions,
): Promise<RemoteResult> {
  const max = options.maxOutput ?? 65_536;
  return connection.withExec(
    command,
    (channel) =>
      new Promise<RemoteResult>((resolve, reject) => {
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        let signal: string | null = null;
        const timer = setTimeout(() => {
          channel.close();
          reject(
            new SnpsimError(
              SnpsimErrorCode.STEP_TIMEOUT,
              `\`${command}\` on ${connection.endpoint} did not finish within ${options.timeoutMs} ms`,
              { endpoint: connection.endpoint, command },
            ),
          );
        }, options.timeoutMs);
        channel.on('data', (chunk: Buffer) => {
          stdout = (stdout + chunk.toString('utf8')).slice(-max);
        });
        channel.stderr.on('data', (chunk: Buffer) => {
          stderr = (stderr + chunk.toString('utf8')).slice(-max);
        });
        channel.on('exit', (exitCode: number | null, exitSignal?: string) => {
          code = exitCode ?? null;
          signal = exitSignal ?? null;
        });
        channel.on('close', () => {
          clearTimeout(timer);
          const loss = connection.lost;
          if (loss !== undefined && code === null && signal === null)
            reject(
              new SnpsimError(loss.code, `\`${command}\`: ${loss.message}`, {
                endpoint: connection.endpoint,
              }),
            );
          else resolve({ code, signal, stdout, stderr });
        });
        channel.end();
      }),
  );
}
