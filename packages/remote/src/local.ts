import { type ChildProcess, spawn } from 'node:child_process';
import { LabctlError } from '@labctl/core/errors';
import type { CommandRunner, ExecOptions, ExecResult } from './powershell.js';

/**
 * Local execution, for when labctl runs on the Hyper-V host itself: the same bootstrap command line
 * and stdin as over SSH (`powershell.exe|pwsh -NoProfile -NonInteractive -EncodedCommand <base64>`,
 * the script and its JSON input as base64 on stdin), run as a child process without a shell. So the
 * script contract, CLIXML parsing, result markers, exit status and timeouts are the ones
 * PowerShellSession already applies to SSH runs; only the pipe differs.
 *
 * Why not node-powershell (the npm package, 5.x): it keeps one long-lived interactive shell and feeds
 * commands to it as text on stdin, reading output up to a delimiter it echoes. labctl's scripts need
 * a process per run: they `exit 1` on failure (which would end that shared shell), success is the
 * process exit status plus the envelope, stderr CLIXML belongs to one run, a timeout must kill
 * exactly the run that hung, and state ($ErrorActionPreference, variables, loaded modules) must not
 * leak from one script into the next. It would also add a second way of quoting commands next to
 * the encoded bootstrap. A plain spawn of the same command line keeps one contract for both
 * transports and needs no dependency.
 */
export class LocalExecError extends LabctlError {}
export class LocalTimeoutError extends LabctlError {}

/** The executables this runner starts: the command line is always labctl's PowerShell bootstrap. */
const EXECUTABLES = new Set(['powershell.exe', 'pwsh']);

export interface LocalRunnerOptions {
  /** Environment of the child (default: this process's). powershell.exe/pwsh are found on its PATH. */
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs labctl's PowerShell bootstrap command line as a local process. The words of the command line
 * become argv directly (no shell, no quoting): the bootstrap has only the executable, fixed switches
 * and a base64 word, and anything else is refused.
 */
export class LocalPowerShellRunner implements CommandRunner {
  private readonly running = new Set<ChildProcess>();

  constructor(private readonly options: LocalRunnerOptions = {}) {}

  exec(command: string, options: ExecOptions = {}): Promise<ExecResult> {
    const [file = '', ...args] = command.split(' ');
    if (!EXECUTABLES.has(file) || !args.every((arg) => /^[-A-Za-z0-9+/=]+$/.test(arg))) {
      return Promise.reject(
        new LocalExecError('LOCAL_COMMAND_REFUSED', `not a PowerShell bootstrap command line: ${command.slice(0, 80)}`),
      );
    }
    return new Promise<ExecResult>((resolve, reject) => {
      const child = spawn(file, args, {
        env: this.options.env ?? process.env,
        stdio: ['pipe', 'pipe', 'pipe'],
        windowsHide: true,
      });
      this.running.add(child);
      const stdout: Buffer[] = [];
      const stderr: Buffer[] = [];
      let settled = false;
      const finish = (result: ExecResult | undefined, error?: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        this.running.delete(child);
        if (error !== undefined || !result) reject(error);
        else resolve(result);
      };
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              child.kill('SIGKILL');
              finish(
                undefined,
                new LocalTimeoutError(
                  'LOCAL_EXEC_TIMEOUT',
                  `${file} did not finish within ${options.timeoutMs} ms (stopped)`,
                  {
                    details: { stderr: Buffer.concat(stderr).toString('utf8').slice(-2000) },
                  },
                ),
              );
            }, options.timeoutMs);
      child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
      child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
      child.on('error', (error: NodeJS.ErrnoException) =>
        finish(
          undefined,
          new LocalExecError('LOCAL_EXEC', `cannot run ${file}: ${error.message}`, {
            cause: error,
            hint:
              error.code === 'ENOENT'
                ? `${file} is not on PATH. This host's address is \`local\`, so labctl runs PowerShell on this machine: install ${file === 'pwsh' ? 'PowerShell 7' : 'Windows PowerShell'} or set hyperv.shell.`
                : undefined,
          }),
        ),
      );
      child.on('close', (code, signal) =>
        finish({
          stdout: Buffer.concat(stdout).toString('utf8'),
          stderr: Buffer.concat(stderr).toString('utf8'),
          code: signal ? null : code,
        }),
      );
      // A child that exits before reading all of stdin gives EPIPE here; its exit status says why.
      child.stdin.on('error', () => {});
      child.stdin.end(options.stdin ?? '');
    });
  }

  /** Stops runs still in flight (an interrupted command); nothing to close otherwise. */
  close(): void {
    for (const child of this.running) child.kill('SIGKILL');
    this.running.clear();
  }
}
