import type { FileHandle } from 'node:fs/promises';
import { readFile } from 'node:fs/promises';
import { vhdError } from './errors.js';

export interface OpenedSize {
  /** Bytes readable: the file's size, or a block device's capacity. */
  size: number;
  /** A block device (an LVM volume of a XenServer LVM SR, a loop device): its size is not in stat. */
  device: boolean;
}

/**
 * The size of an opened disk. stat() gives 0 for a block device, so its capacity comes from sysfs
 * (`/sys/dev/block/MAJ:MIN/size`, in 512-byte sectors whatever the device's sector size).
 */
export async function sizeOf(fh: FileHandle, path: string): Promise<OpenedSize> {
  const stats = await fh.stat({ bigint: true });
  if (!stats.isBlockDevice()) return { size: Number(stats.size), device: false };
  const { major, minor } = deviceNumbers(stats.rdev);
  const sysfs = `/sys/dev/block/${major}:${minor}/size`;
  let sectors: string;
  try {
    sectors = (await readFile(sysfs, 'latin1')).trim();
  } catch (err) {
    throw vhdError('VHD_CANNOT_OPEN', {
      path,
      reason: `it is a block device whose size cannot be read from ${sysfs} (${(err as Error).message})`,
    });
  }
  if (!/^\d{1,16}$/.test(sectors))
    throw vhdError('VHD_CANNOT_OPEN', { path, reason: `${sysfs} does not hold a sector count` });
  return { size: Number(sectors) * 512, device: true };
}

/** Linux's dev_t encoding (glibc's gnu_dev_major/gnu_dev_minor). */
export function deviceNumbers(rdev: bigint): { major: number; minor: number } {
  const major = ((rdev >> 8n) & 0xfffn) | ((rdev >> 32n) & ~0xfffn);
  const minor = (rdev & 0xffn) | ((rdev >> 12n) & ~0xffn);
  return { major: Number(major), minor: Number(minor) };
}
