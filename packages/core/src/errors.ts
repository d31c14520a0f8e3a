/**
 * Typed errors. Every failure a user can see is a LabctlError with a stable `code`, a one-line
 * `message` and, where there is something to try, a `hint`. Exit status: 2 for bad input (refused
 * before anything changed), 1 for everything that failed while doing the work.
 * Anything that is not a LabctlError is a bug and is reported as such by the CLI.
 */
export const EXIT_OK = 0;
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

export interface LabctlErrorOptions {
  hint?: string;
  cause?: unknown;
  /** Structured facts for `--json` consumers (never secrets). */
  details?: Record<string, unknown>;
  exitCode?: number;
}

export class LabctlError extends Error {
  readonly code: string;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;
  readonly exitCode: number;

  constructor(code: string, message: string, options: LabctlErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.hint = options.hint;
    this.details = options.details;
    this.exitCode = options.exitCode ?? EXIT_FAILED;
  }

  toJSON(): { code: string; message: string; hint?: string; details?: Record<string, unknown> } {
    return {
      code: this.code,
      message: this.message,
      ...(this.hint ? { hint: this.hint } : {}),
      ...(this.details ? { details: this.details } : {}),
    };
  }
}

/** Bad input: a flag, a lab file, a name. Always raised before anything was changed. Exit status 2. */
export class UsageError extends LabctlError {
  constructor(code: string, message: string, options: Omit<LabctlErrorOptions, 'exitCode'> = {}) {
    super(code, message, { ...options, exitCode: EXIT_USAGE });
  }
}

/** The lab's state is held by another labctl process. */
export class LockedError extends LabctlError {}

/** The state file cannot be trusted (corrupt, newer version); it is left untouched. */
export class StateError extends LabctlError {}

export function isLabctlError(err: unknown): err is LabctlError {
  return err instanceof LabctlError;
}

/** A short, human description of any thrown value, for per-VM failure summaries. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
