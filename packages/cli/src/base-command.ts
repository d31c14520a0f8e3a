import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { EXIT_FAILED, EXIT_USAGE, isLabctlError, UsageError } from '@labctl/core/errors';
import type { EventSink, ProgressEvent } from '@labctl/core/events';
import { LAB_FILE, loadLabFile, type LoadedLabFile } from '@labctl/core/spec';
import { resolveLabDir, StateStore } from '@labctl/core/state';
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { plainLine } from './progress.js';
import { cellSafe, terminalSafe } from './render.js';
import { closest } from './suggest.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<
  (typeof LabctlCommand)['baseFlags'] & T['flags']
>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/** Flags every labctl command takes. Each has an environment variable, like Shopify CLI's global flags. */
export const globalFlags = {
  'lab-dir': Flags.string({
    summary: 'Lab directory holding labctl.yaml and .labctl/state.json.',
    description: 'Defaults to the current directory.',
    env: 'LABCTL_LAB_DIR',
    helpGroup: 'GLOBAL',
  }),
  debug: Flags.boolean({
    summary: 'Show stack traces and every remote script labctl runs.',
    env: 'LABCTL_DEBUG',
    helpGroup: 'GLOBAL',
  }),
};

/**
 * The one base command: parses flags, owns error output and exit statuses (0 ok, 1 failed,
 * 2 usage/input error), and gives `--json` to every command. Commands return a typed result;
 * with --json it is printed as JSON and human output (`this.log`) is suppressed.
 */
export abstract class LabctlCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = globalFlags;
  /**
   * Commands that read or change an existing lab: refused (exit 2) where there is none, so a
   * mistyped --lab-dir says so instead of showing an empty lab (or making one).
   */
  static needsLab = false;

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  /** Warnings collected for the JSON envelope and printed to stderr in human mode. */
  protected warnings: string[] = [];

  public override async init(): Promise<void> {
    await super.init();
    const { args, flags } = await this.parse({
      flags: this.ctor.flags,
      baseFlags: (this.ctor as typeof LabctlCommand).baseFlags,
      enableJsonFlag: this.ctor.enableJsonFlag,
      args: this.ctor.args,
      strict: this.ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    if ((this.ctor as typeof LabctlCommand).needsLab) await requireLab(this.labDir);
  }

  protected get labDir(): string {
    return resolveLabDir(this.flags['lab-dir']);
  }

  protected stateStore(): StateStore {
    return new StateStore(this.labDir);
  }

  protected async labFile(explicit?: string): Promise<LoadedLabFile> {
    return loadLabFile(this.labDir, explicit);
  }

  /** Human output; values inside it may come from state or a hypervisor, so escapes are shown, not sent. */
  public override log(message = '', ...args: unknown[]): void {
    super.log(terminalSafe(message), ...args);
  }

  /** A warning: stderr in human mode, `warnings` in the JSON result. */
  protected note(message: string): void {
    this.warnings.push(message);
    if (!this.jsonEnabled()) process.stderr.write(`labctl: warning: ${terminalSafe(message)}\n`);
  }

  /** Progress events as plain lines on stderr (nothing with --json). */
  protected progressSink(): EventSink {
    if (this.jsonEnabled()) return () => {};
    return (event: ProgressEvent) => process.stderr.write(`${cellSafe(plainLine(event))}\n`);
  }

  /** The command's flag closest to a nonexistent one (`--forse` -> `--force`). */
  private flagGuess(message: string): string | undefined {
    const typed = /Nonexistent flags?: (--[\w-]+)/.exec(message)?.[1];
    if (!typed) return undefined;
    const known = Object.keys({ ...this.ctor.flags, ...(this.ctor as typeof LabctlCommand).baseFlags, json: true });
    const guess = closest(typed.slice(2), known);
    return guess ? `--${guess}` : undefined;
  }

  protected debugEnabled(): boolean {
    return this.argv.includes('--debug') || /^(1|true|yes)$/i.test(process.env.LABCTL_DEBUG ?? '');
  }

  protected override async catch(err: Error & { oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err;
    const debug = this.debugEnabled();
    let exitCode: number;
    let payload: { code: string; message: string; hint?: string; details?: Record<string, unknown> };
    if (isLabctlError(err)) {
      exitCode = err.exitCode;
      payload = err.toJSON();
    } else if (err instanceof Errors.CLIError) {
      // oclif's own parse errors: unknown flag, missing argument, bad option value.
      exitCode = err.oclif?.exit ?? EXIT_USAGE;
      const message = oclifUsageMessage(err.message);
      const guess = this.flagGuess(message);
      payload = {
        code: 'USAGE',
        message,
        hint: `${guess ? `Did you mean ${guess}? ` : ''}See: labctl ${this.id?.replaceAll(':', ' ') ?? ''} --help`,
      };
    } else {
      exitCode = EXIT_FAILED;
      payload = {
        code: 'INTERNAL',
        message: `internal error: ${err.message}`,
        hint: 'This is a labctl bug; run with --debug and report the stack trace.',
      };
    }
    if (this.jsonEnabled()) {
      this.logJson({ error: payload, ...(this.warnings.length ? { warnings: this.warnings } : {}) });
    } else {
      process.stderr.write(`labctl: error: ${terminalSafe(payload.message)}\n`);
      if (payload.hint) process.stderr.write(`  hint: ${terminalSafe(payload.hint)}\n`);
      if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
      if (debug && err.cause instanceof Error && err.cause.stack)
        process.stderr.write(`caused by: ${err.cause.stack}\n`);
    }
    this.exit(exitCode);
  }
}

/** A lab is a directory with a lab file or a state; anything else is refused before it is touched. */
export async function requireLab(labDir: string): Promise<void> {
  const present = async (path: string) => (await stat(path).catch(() => undefined)) !== undefined;
  if ((await present(join(labDir, LAB_FILE))) || (await present(new StateStore(labDir).file))) return;
  const missing = !(await present(labDir));
  throw new UsageError(
    'LAB_NOT_FOUND',
    `no lab in ${labDir}: ${missing ? 'the directory does not exist' : `it has neither ${LAB_FILE} nor .labctl/state.json`}`,
    {
      hint: 'Give the lab directory with --lab-dir (or LABCTL_LAB_DIR), or start a lab there: labctl init, then labctl create.',
    },
  );
}

/**
 * oclif's parse errors come as "The following error occurred:\n  <what>\nSee more help with --help";
 * one line that says what is wrong is what a user (and --json) needs.
 */
export function oclifUsageMessage(message: string): string {
  const lines = message
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !/^The following errors? occurred:?$/.test(line) && !/^See more help with/.test(line));
  return lines.join('; ') || message;
}
