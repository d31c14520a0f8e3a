/**
 * Preflight and verification checks: what was checked, whether it passed, and what to do if not.
 * An `error` stops the command before anything is changed; a `warning` is reported and the run goes on.
 */
export type CheckLevel = 'ok' | 'warning' | 'error';

export interface Check {
  id: string;
  level: CheckLevel;
  message: string;
  hint?: string;
  subject?: string;
}

export function failedChecks(checks: readonly Check[]): Check[] {
  return checks.filter((check) => check.level === 'error');
}
