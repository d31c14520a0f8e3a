import type { VmResult } from '../provider.js';

/** The facts of every result, in order; a failed one fails the test, naming the VM and its error. */
export function okFacts<F>(results: ReadonlyArray<VmResult<F>>): F[] {
  return results.map((result) => {
    if (!result.ok) throw new Error(`${result.name} failed: ${result.error.code}: ${result.error.message}`);
    return result.facts;
  });
}

/** "ok", or the error code: for tests that check which VMs of a call failed. */
export function outcomes<F>(results: ReadonlyArray<VmResult<F>>): string[] {
  return results.map((result) => (result.ok ? 'ok' : result.error.code));
}
