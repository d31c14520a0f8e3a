import type { StateSession } from '../state.js';

/**
 * Saves one after another: parallel workers each call `save()` after their VM, and two atomic writes
 * of the same file must never overlap. A save requested while one runs is folded into the next one.
 */
export function serialSaver(session: StateSession): () => Promise<void> {
  let chain: Promise<void> = Promise.resolve();
  return () => {
    chain = chain.catch(() => {}).then(() => session.save());
    return chain;
  };
}
