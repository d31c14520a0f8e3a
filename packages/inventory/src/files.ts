import { UsageError } from '@labctl/core/errors';
import { outputTarget, readRegularFile, writeFileKeeping } from '@labctl/core/files';
import { OWNER_MARK } from './emit.js';

/**
 * Files labctl writes for Ansible (inventory, known_hosts, inventory script): atomically, and never
 * over a file someone else wrote unless told to (`--force`).
 */

/**
 * Atomic replace through core's writeFileKeeping: the file keeps its mode and owner (a 0600
 * inventory holding a become password stays 0600), a symlink is written through, and a FIFO,
 * device or directory is refused before anything is written.
 */
export async function writeFileAtomic(path: string, content: string, mode: number, what = 'file'): Promise<void> {
  await writeFileKeeping(path, content, mode, what);
}

/** The text of a file labctl may replace or merge; refuses special files without reading them. */
export async function readIfExists(path: string, what = 'file'): Promise<string | undefined> {
  return readRegularFile(path, what, { maxBytes: INVENTORY_MAX_BYTES, missingOk: true, code: 'INVENTORY_READ' });
}

/** Inventories of 100,000 hosts stay well under this. */
export const INVENTORY_MAX_BYTES = 512 * 1024 * 1024;

/** labctl wrote it: the mark in its first lines, or (JSON) a `labctl_*` root group carrying the `labctl_lab` var. */
export function writtenByLabctl(content: string): boolean {
  if (content.split('\n', 3).some((line) => line.includes(OWNER_MARK))) return true;
  try {
    const data = JSON.parse(content) as Record<string, { vars?: Record<string, unknown> } | null>;
    return Object.entries(data).some(
      ([key, group]) => key.startsWith('labctl_') && group?.vars?.labctl_lab !== undefined,
    );
  } catch {
    return false;
  }
}

/** Refuse (exit 2, before anything is written) to replace a file labctl did not write. */
export async function checkOverwrite(path: string, force: boolean, what: string, hint?: string): Promise<void> {
  if (force) return;
  await outputTarget(path, what);
  const existing = await readIfExists(path, what);
  if (existing === undefined || writtenByLabctl(existing)) return;
  throw new UsageError(
    'INVENTORY_NOT_OURS',
    `${path} exists and was not written by labctl; not replacing this ${what}`,
    {
      hint: hint ?? 'Pass --force to replace it, or choose another --output.',
      details: { path },
    },
  );
}
