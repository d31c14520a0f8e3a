import { constants as fsConstants } from 'node:fs';
import { open, readFile, rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { LabctlError, UsageError } from '@labctl/core/errors';
import { OWNER_MARK } from './emit.js';

/**
 * Files labctl writes for Ansible (inventory, known_hosts, inventory script): atomically, and never
 * over a file someone else wrote unless told to (`--force`).
 */

/** Temp file in the same directory + fsync + rename + fsync(dir): readers see the old file or the new one. */
export async function writeFileAtomic(path: string, content: string, mode: number): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}`);
  try {
    const handle = await open(tmp, 'w', mode);
    try {
      await handle.writeFile(content, 'utf8');
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new LabctlError('INVENTORY_WRITE', `cannot write ${path}: ${(err as Error).message}`, { cause: err });
  }
  const dir = await open(dirname(path), fsConstants.O_RDONLY);
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function readIfExists(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new LabctlError('INVENTORY_READ', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

/** labctl wrote it: the mark in its first lines, or (JSON) a `labctl_*` root group carrying the `labctl_lab` var. */
export function writtenByLabctl(content: string): boolean {
  if (content.split('\n', 3).some((line) => line.includes(OWNER_MARK))) return true;
  try {
    const data = JSON.parse(content) as Record<string, { vars?: Record<string, unknown> } | null>;
    return Object.entries(data).some(([key, group]) => key.startsWith('labctl_') && group?.vars?.labctl_lab !== undefined);
  } catch {
    return false;
  }
}

/** Refuse (exit 2, before anything is written) to replace a file labctl did not write. */
export async function checkOverwrite(path: string, force: boolean, what: string, hint?: string): Promise<void> {
  if (force) return;
  const existing = await readIfExists(path);
  if (existing === undefined || writtenByLabctl(existing)) return;
  throw new UsageError('INVENTORY_NOT_OURS', `${path} exists and was not written by labctl; not replacing this ${what}`, {
    hint: hint ?? 'Pass --force to replace it, or choose another --output.',
    details: { path },
  });
}
