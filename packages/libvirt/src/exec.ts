import { execFile } from 'node:child_process';
import { LabctlError } from '@labctl/core/errors';

/**
 * Runs a program without a shell (arguments are never parsed by anyone but the program) with a
 * deadline, so a hung virsh or qemu-img can never hang labctl.
 */
export interface RunOptions {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandFailedError extends LabctlError {}

export function run(program: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const timeoutMs = options.timeoutMs ?? 60_000;
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      args,
      {
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
        maxBuffer: 32 * 1024 * 1024,
        signal: options.signal,
        encoding: 'utf8',
      },
      (error, stdout, stderr) => {
        if (!error) return resolve({ stdout, stderr });
        const err = error as NodeJS.ErrnoException & { killed?: boolean; code?: string | number };
        const command = `${program} ${args.join(' ')}`;
        if (err.code === 'ENOENT') {
          return reject(
            new CommandFailedError('COMMAND_NOT_FOUND', `${program} is not installed`, {
              hint:
                program === 'virsh'
                  ? 'Install libvirt-clients (Debian) / libvirt-client.'
                  : 'Install qemu-utils (Debian) / qemu-img.',
              cause: error,
            }),
          );
        }
        if (err.killed && err.name !== 'AbortError') {
          return reject(
            new CommandFailedError(
              'COMMAND_TIMEOUT',
              `${command} did not finish within ${Math.round(timeoutMs / 1000)} s`,
              { cause: error },
            ),
          );
        }
        const detail = firstErrorLine(stderr) ?? err.message;
        reject(
          new CommandFailedError(
            'COMMAND_FAILED',
            `${program} ${args[0] === '-q' ? args.slice(3, 4).join(' ') : (args[0] ?? '')}: ${detail}`.replace(
              / +:/,
              ':',
            ),
            {
              cause: error,
              details: { command, stderr: stderr.trim().slice(0, 2000) },
            },
          ),
        );
      },
    );
    // No input, ever: a question (an unknown SSH host key of a qemu+libssh:// host, a password) gets
    // end-of-file at once and fails, instead of waiting for the deadline.
    child.stdin?.end();
  });
}

/** virsh prints "error: Failed to start domain 'x'" and then the reason; the reason is the useful line. */
export function firstErrorLine(stderr: string): string | undefined {
  const lines = stderr
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const reasons = lines.filter((line) => !/^error: Failed to /i.test(line));
  const pick = reasons.at(-1) ?? lines.at(-1);
  return pick?.replace(/^error:\s*/i, '');
}
