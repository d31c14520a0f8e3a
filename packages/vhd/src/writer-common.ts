import { basename, dirname, relative, resolve } from 'node:path';
import { vhdError } from './errors.js';
import type { DiskImage } from './image.js';

/** What every disk writer (raw, VHD, VHDX) shares: its interface, options, range check and parent paths. */
export interface DiskWriter {
  readonly path: string;
  readonly virtualSize: number;
  /** Allocation unit: writes aligned to it and as large as it are the fast path. */
  readonly blockSize: number;
  write(offset: number, data: Buffer): Promise<void>;
  /** Writes the metadata, flushes to disk, closes. */
  finish(): Promise<void>;
  /** Closes without finishing (the caller removes the file). */
  abort(): Promise<void>;
}

export type OutputFormat = 'raw' | 'vhd' | 'vhdx';

export interface CreateDiskOptions {
  format: OutputFormat;
  type?: 'dynamic' | 'fixed';
  virtualSize: number;
  blockSize?: number;
  logicalSectorSize?: number;
  /** Makes a differencing disk on this (already opened) parent. */
  parent?: DiskImage;
  /**
   * VHD: also record the parent's absolute path (a W2ku locator, after the relative one). Off by
   * default: tools follow the first locator that resolves, and an absolute one makes a copied chain
   * resolve to the original parent.
   */
  absoluteParent?: boolean;
  /**
   * VHD: write the child as blktap's `vhd-util snapshot` does (creator `tap`, MacX + W2KU + W2RU
   * locators with the relative path, data_space in bytes, the parent file's mtime as parent
   * timestamp, a zero parent UUID for a raw parent): for tests and for tools that expect it.
   */
  layout?: 'blktap';
}

export function checkRange(w: DiskWriter, offset: number, data: Buffer, unit: number): void {
  if (offset % unit !== 0 || data.length % unit !== 0 || offset + data.length > w.virtualSize) {
    throw vhdError('VHD_BAD_ARGUMENT', {
      what: `write of ${data.length} bytes at ${offset} is not ${unit}-aligned or past the disk end`,
    });
  }
}

/**
 * Where a child records its parent, in the Windows form readers expect: the absolute path with
 * backslashes (on Linux it has no drive letter) and the relative path (".\\base.vhdx"). libvhdi,
 * for one, takes the parent's file name after the last backslash of the absolute path.
 */
export function parentPaths(
  childPath: string,
  parentPath: string,
): { absolute: string; relative: string; name: string } {
  const absolute = resolve(parentPath);
  const rel = relative(dirname(resolve(childPath)), absolute)
    .split('/')
    .join('\\');
  return {
    absolute: absolute.split('/').join('\\'),
    relative: rel.startsWith('..') ? rel : `.\\${rel}`,
    name: basename(absolute),
  };
}
