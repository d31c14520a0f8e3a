import { LabctlError } from '@labctl/core/errors';
import { summarizeClixmlErrors } from './clixml.js';

/**
 * Running labctl's PowerShell scripts on a Hyper-V host: over SSH (Windows OpenSSH) or any other
 * `CommandRunner`. The command line is always a short, fixed, encoded bootstrap
 * (`powershell.exe -NoProfile -NonInteractive -EncodedCommand <base64 UTF-16LE>`); the script and its
 * JSON input travel on stdin as base64 of UTF-8. That keeps the command line far below cmd.exe's
 * 8191-character limit whatever the script size, avoids console code-page mangling of non-ASCII
 * names, and keeps user values out of code: the script receives its input as one string parameter
 * and decodes it with ConvertFrom-Json.
 */
export interface ExecResult {
  stdout: string;
  stderr: string;
  /** Exit status; null when the remote side gave none (connection dropped, killed by a signal). */
  code: number | null;
}

export interface ExecOptions {
  stdin?: string;
  timeoutMs?: number;
}

/** Anything that runs one command line and returns its output (the SSH client, a local spawn). */
export interface CommandRunner {
  exec(command: string, options?: ExecOptions): Promise<ExecResult>;
}

export type PowerShellFlavor = 'powershell' | 'pwsh';

export const RESULT_START = '<<<LABCTL-JSON';
export const RESULT_END = 'LABCTL-JSON>>>';
/** Separates the base64 script from the base64 input on stdin ('.' never occurs in base64). */
export const STDIN_SEPARATOR = '.';

/**
 * Reads stdin, splits it at the separator line, decodes both halves as UTF-8 and runs the script
 * with the input as `-InputJson`. One script block, so try/catch, $ErrorActionPreference and `exit`
 * behave as in a script file. Parsed by tree-sitter in the tests like every other script.
 */
export const BOOTSTRAP =
  "$ErrorActionPreference = 'Stop'; $labctlParts = [Console]::In.ReadToEnd().Split([char]'.'); " +
  '$labctlUtf8 = New-Object System.Text.UTF8Encoding $false; ' +
  '$labctlScript = $labctlUtf8.GetString([Convert]::FromBase64String($labctlParts[0])); ' +
  '$labctlInput = $labctlUtf8.GetString([Convert]::FromBase64String($labctlParts[1])); ' +
  '& ([scriptblock]::Create($labctlScript)) -InputJson $labctlInput; exit $LASTEXITCODE';

export function encodePowerShellCommand(script: string): string {
  return Buffer.from(script, 'utf16le').toString('base64');
}

export function decodePowerShellCommand(encoded: string): string {
  return Buffer.from(encoded, 'base64').toString('utf16le');
}

export function powershellExecutable(flavor: PowerShellFlavor): string {
  return flavor === 'pwsh' ? 'pwsh' : 'powershell.exe';
}

/** The whole command line sent to the host; the same for every script. */
export function bootstrapCommandLine(flavor: PowerShellFlavor = 'powershell'): string {
  return `${powershellExecutable(flavor)} -NoProfile -NonInteractive -EncodedCommand ${encodePowerShellCommand(BOOTSTRAP)}`;
}

/** Base64 wrapped at 76 characters: ConsoleHost reads stdin lines of at most 8192 characters. */
function wrappedBase64(text: string): string {
  return (
    Buffer.from(text, 'utf8')
      .toString('base64')
      .match(/.{1,76}/g)
      ?.join('\n') ?? ''
  );
}

export function bootstrapStdin(script: string, inputJson: string): string {
  return `${wrappedBase64(script)}\n${STDIN_SEPARATOR}\n${wrappedBase64(inputJson)}\n`;
}

/** The inverse of `bootstrapStdin` (used by the recorded test host and by `--debug` output). */
export function decodeBootstrapStdin(stdin: string): { script: string; inputJson: string } {
  const [script = '', input = ''] = stdin.split(STDIN_SEPARATOR);
  const decode = (part: string) => Buffer.from(part.replace(/\s+/g, ''), 'base64').toString('utf8');
  return { script: decode(script), inputJson: decode(input) };
}

export interface ScriptEnvelope {
  ok: boolean;
  data?: unknown;
  error?: { message?: string; type?: string; fqid?: string; category?: string };
}

/** The text between the markers on stdout, parsed; undefined when the markers are missing. */
export function extractEnvelope(stdout: string): ScriptEnvelope | undefined {
  const lines = stdout.replace(/^\uFEFF/, '').split(/\r?\n/);
  const start = lines.findIndex((line) => line.trim() === RESULT_START);
  if (start < 0) return undefined;
  const end = lines.findIndex((line, index) => index > start && line.trim() === RESULT_END);
  if (end < 0) return undefined;
  const body = lines
    .slice(start + 1, end)
    .join('\n')
    .trim();
  if (!body) return undefined;
  const parsed = JSON.parse(body) as ScriptEnvelope;
  return { ...parsed, ok: parsed.ok === true };
}

/** A script a host can run: its name (verb_object, for logs) and its text. */
export interface PowerShellScript {
  name: string;
  text: string;
}

export interface ScriptRunLog {
  script: string;
  host: string;
  durationMs: number;
  /** Remote exit status; null when there was none. */
  exit: number | null;
  ok: boolean;
  /** Only with debug on: the script text and its JSON input. */
  scriptText?: string;
  inputJson?: string;
  error?: string;
}

export interface PowerShellSessionOptions {
  host: string;
  flavor?: PowerShellFlavor;
  /** Called after every run; with `debug` the entry carries the script text. */
  log?: (entry: ScriptRunLog) => void;
  debug?: boolean;
  defaultTimeoutMs?: number;
}

/** The script ran and reported a failure in its envelope (`ok: false`). */
export class PowerShellScriptError extends LabctlError {}
/** The host answered without a result envelope: a parse error, a crash, powershell.exe missing. */
export class PowerShellHostError extends LabctlError {}
/** The connection or the runner failed: dropped, timed out, host key refused. */
export class PowerShellTransportError extends LabctlError {}

/**
 * One PowerShell endpoint (one host, one connection). Every `run` is one invocation; `invocations`
 * counts them so benchmarks and tests can prove a batch is one round trip.
 */
export class PowerShellSession {
  invocations = 0;
  readonly host: string;
  private readonly flavor: PowerShellFlavor;

  constructor(
    private readonly runner: CommandRunner,
    private readonly options: PowerShellSessionOptions,
  ) {
    this.host = options.host;
    this.flavor = options.flavor ?? 'powershell';
  }

  async run<T = unknown>(script: PowerShellScript, input: unknown, options: { timeoutMs?: number } = {}): Promise<T> {
    const inputJson = JSON.stringify(input ?? {});
    const started = Date.now();
    this.invocations++;
    const log = (exit: number | null, ok: boolean, error?: string) =>
      this.options.log?.({
        script: script.name,
        host: this.host,
        durationMs: Date.now() - started,
        exit,
        ok,
        ...(this.options.debug ? { scriptText: script.text, inputJson } : {}),
        ...(error ? { error } : {}),
      });
    let result: ExecResult;
    try {
      result = await this.runner.exec(bootstrapCommandLine(this.flavor), {
        stdin: bootstrapStdin(script.text, inputJson),
        timeoutMs: options.timeoutMs ?? this.options.defaultTimeoutMs ?? 300_000,
      });
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      log(null, false, message);
      if (error instanceof LabctlError) throw error;
      throw new PowerShellTransportError('POWERSHELL_TRANSPORT', `${script.name} on ${this.host}: ${message}`, {
        cause: error,
        hint: 'Check that the host is reachable over SSH; the run can be repeated, finished steps are skipped.',
      });
    }
    let envelope: ScriptEnvelope | undefined;
    try {
      envelope = extractEnvelope(result.stdout);
    } catch (error) {
      log(result.code, false, 'unparsable result');
      throw new PowerShellHostError(
        'POWERSHELL_BAD_OUTPUT',
        `${script.name} on ${this.host} printed a result that is not JSON`,
        {
          cause: error,
          details: { stdout: result.stdout.slice(0, 2000) },
        },
      );
    }
    if (envelope === undefined) {
      const errors = summarizeClixmlErrors(result.stderr);
      const first = errors[0];
      const reason =
        result.code === null
          ? 'the connection ended without an exit status'
          : first
            ? first.message
            : `exit status ${result.code} and no result`;
      log(result.code, false, reason);
      throw new PowerShellHostError('POWERSHELL_NO_RESULT', `${script.name} on ${this.host} failed: ${reason}`, {
        hint:
          result.code === null
            ? 'The SSH session was cut (host rebooted, sshd restarted, network). Re-run the command; finished steps are skipped.'
            : 'Run with --debug to see the script; check that Windows PowerShell and the Hyper-V module are installed on the host.',
        details: { exit: result.code, errors },
      });
    }
    if (!envelope.ok) {
      const message = envelope.error?.message ?? 'failed without a message';
      log(result.code, false, message);
      throw new PowerShellScriptError('POWERSHELL_SCRIPT_FAILED', `${script.name} on ${this.host}: ${message}`, {
        details: { type: envelope.error?.type, fqid: envelope.error?.fqid, category: envelope.error?.category },
      });
    }
    log(result.code, true);
    return envelope.data as T;
  }
}
