import { constants as fsConstants } from 'node:fs';
import { open, realpath, stat } from 'node:fs/promises';
import { fileKind } from '@labctl/core/files';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { MAX_CHAIN_DEPTH, VHD_EPOCH_OFFSET, VHDX_SIGNATURE } from './constants.js';
import { openError, vhdError } from './errors.js';
import type { DiskImage, DiskInfo, ParentLink } from './image.js';
import { RawImage } from './raw-image.js';
import { looksLikeDisk } from './sniff.js';
import { VhdImage } from './vhd-image.js';
import { vhdTimestampToDate } from './vhd-structs.js';
import { VhdxImage } from './vhdx-image.js';

/** Opens a VHD or VHDX read-only, telling them apart by signature. */
export async function openDisk(path: string, options: { strict?: boolean } = {}): Promise<DiskImage> {
  const head = Buffer.alloc(8);
  try {
    // O_NONBLOCK: a FIFO given as a disk must not hang the open; it is refused below.
    const fh = await open(path, fsConstants.O_RDONLY | (fsConstants.O_NONBLOCK ?? 0));
    try {
      const stats = await fh.stat();
      if (!stats.isFile() && !stats.isBlockDevice())
        throw vhdError('VHD_CANNOT_OPEN', { path, reason: `it is a ${fileKind(stats)}, not a disk image file` });
      await fh.read(head, 0, 8, 0);
    } finally {
      await fh.close();
    }
  } catch (err) {
    throw openError(path, err);
  }
  if (head.toString('latin1') === VHDX_SIGNATURE) return VhdxImage.open(path, options);
  return VhdImage.open(path, options);
}

export type ResolvedBy = 'absolute' | 'relative' | 'name' | 'search';

export interface ParentCandidate {
  path: string;
  via: ResolvedBy;
  locator: string;
}

/** A Windows path ("C:\\...", "\\\\server\\share") cannot be opened on this host as it is. */
function isWindowsAbsolute(p: string): boolean {
  return /^[A-Za-z]:[\\/]/.test(p) || p.startsWith('\\\\');
}

/**
 * The places Hyper-V looks for a parent, in its order: the absolute locator, the relative locator
 * (against the child's directory), the parent's file name next to the child, then each --search
 * directory. Windows-style absolute paths are skipped (their file name still counts).
 */
export function parentCandidates(
  childPath: string,
  link: ParentLink,
  searchDirs: readonly string[] = [],
): ParentCandidate[] {
  const childDir = dirname(resolve(childPath));
  const out: ParentCandidate[] = [];
  const names = new Set<string>();
  const nameOf = (p: string) => p.split(/[\\/]/).pop() ?? '';
  for (const locator of link.locators) {
    if (locator.path) names.add(nameOf(locator.path));
    const local = locator.path.replaceAll('\\', '/');
    if (locator.kind === 'absolute' && !isWindowsAbsolute(locator.path) && isAbsolute(local)) {
      out.push({ path: local, via: 'absolute', locator: locator.key });
    } else if (locator.kind === 'relative') {
      out.push({ path: resolve(childDir, locator.path.replaceAll('\\', '/')), via: 'relative', locator: locator.key });
    }
  }
  const primaryName = nameOf(link.name) || [...names][0] || '';
  const allNames = [primaryName, ...names].filter((n, i, a) => n && a.indexOf(n) === i);
  for (const name of allNames) out.push({ path: join(childDir, name), via: 'name', locator: 'parent name' });
  for (const dir of searchDirs)
    for (const name of allNames)
      out.push({ path: join(resolve(dir), name), via: 'search', locator: `--search ${dir}` });
  const seen = new Set<string>();
  return out.filter((c) => (seen.has(c.path) ? false : (seen.add(c.path), true)));
}

/** A file or a block device (the volumes of XenServer's LVM SRs) at `path`, links followed. */
async function exists(path: string): Promise<boolean> {
  try {
    const stats = await stat(path);
    return stats.isFile() || stats.isBlockDevice();
  } catch {
    return false;
  }
}

export interface ChainLink {
  path: string;
  realPath: string;
  info: DiskInfo;
  /** How this layer was found from its child (absent for the top). */
  resolvedBy?: ResolvedBy;
  locator?: string;
  /** VHD: the child's recorded parent timestamp differs from this parent's (a warning, see docs/vhd.md). */
  timestampMismatch?: { expected: string; found: string; compared: 'footer timestamp' | 'file modification time' };
}

/**
 * An opened chain, top (the file asked for) first, base last. Reads resolve through the layers:
 * a sector comes from the first layer that holds it; explicit zeros and holes read as zeros.
 */
export class Chain {
  constructor(
    readonly layers: DiskImage[],
    readonly links: ChainLink[],
  ) {}

  get top(): DiskImage {
    return this.layers[0]!;
  }

  get virtualSize(): number {
    return this.top.virtualSize;
  }

  /** Runs of [offset, offset+length): `layer` index holding the data at `fileOffset`, or -1 for zeros/holes. */
  async resolve(offset: number, length: number): Promise<ResolvedExtent[]> {
    const out: ResolvedExtent[] = [];
    await this.resolveIn(0, offset, Math.min(length, this.virtualSize - offset), out);
    return out;
  }

  private async resolveIn(index: number, offset: number, length: number, out: ResolvedExtent[]): Promise<void> {
    const layer = this.layers[index];
    const push = (e: ResolvedExtent) => {
      const last = out[out.length - 1];
      if (last && last.layer === -1 && e.layer === -1 && last.offset + last.length === e.offset)
        last.length += e.length;
      else out.push(e);
    };
    if (!layer || offset >= layer.virtualSize) {
      push({ offset, length, layer: -1, fileOffset: 0 });
      return;
    }
    const inLayer = Math.min(length, layer.virtualSize - offset);
    for (const extent of await layer.map(offset, inLayer)) {
      if (extent.kind === 'data')
        push({ offset: extent.offset, length: extent.length, layer: index, fileOffset: extent.fileOffset });
      else if (extent.kind === 'parent') await this.resolveIn(index + 1, extent.offset, extent.length, out);
      else push({ offset: extent.offset, length: extent.length, layer: -1, fileOffset: 0 });
    }
    // A parent smaller than its child: the rest reads as zeros.
    if (inLayer < length) push({ offset: offset + inLayer, length: length - inLayer, layer: -1, fileOffset: 0 });
  }

  /** Fills `into` with the virtual disk at `offset`; returns false when the whole range is a hole. */
  async read(offset: number, into: Buffer, extents?: ResolvedExtent[]): Promise<boolean> {
    const runs = extents ?? (await this.resolve(offset, into.length));
    let any = false;
    for (const run of runs) {
      const slice = into.subarray(run.offset - offset, run.offset - offset + run.length);
      if (run.layer === -1) slice.fill(0);
      else {
        await this.layers[run.layer]!.readStored(run.fileOffset, slice);
        any = true;
      }
    }
    return any;
  }

  async close(): Promise<void> {
    await Promise.all(this.layers.map((l) => l.close()));
  }
}

export interface ResolvedExtent {
  offset: number;
  length: number;
  layer: number;
  fileOffset: number;
}

/** Finds and verifies `child`'s parent. Throws VHD_PARENT_NOT_FOUND / VHD_PARENT_MISMATCH. */
export async function findParent(
  child: DiskImage,
  searchDirs: readonly string[],
): Promise<{ image: DiskImage; candidate: ParentCandidate; timestampMismatch?: ChainLink['timestampMismatch'] }> {
  const link = child.parent!;
  const candidates = parentCandidates(child.path, link, searchDirs);
  let mismatch: Error | undefined;
  for (const candidate of candidates) {
    if (!(await exists(candidate.path))) continue;
    if (link.raw) {
      // A raw parent has no identity to match; a VHD/VHDX in its place is the wrong file (its
      // bytes would be read as the disk's).
      if (await looksLikeDisk(candidate.path)) {
        mismatch ??= vhdError('VHD_PARENT_MISMATCH', {
          path: child.path,
          field: 'format',
          expected: 'raw (the child has no parent UUID)',
          candidate: candidate.path,
          found: 'a VHD/VHDX',
        });
        continue;
      }
      const image = await RawImage.open(candidate.path);
      const timestampMismatch = await parentTimestampMismatch(child, link, image, candidate.path);
      return { image, candidate, ...(timestampMismatch ? { timestampMismatch } : {}) };
    }
    const image = await openDisk(candidate.path);
    if (image.format !== child.format) {
      await image.close();
      mismatch ??= vhdError('VHD_PARENT_MISMATCH', {
        path: child.path,
        field: 'format',
        expected: child.format,
        candidate: candidate.path,
        found: image.format,
      });
      continue;
    }
    if (image.linkId.toLowerCase() !== link.id.toLowerCase()) {
      await image.close();
      mismatch ??= vhdError('VHD_PARENT_MISMATCH', {
        path: child.path,
        field: link.idField,
        expected: link.id,
        candidate: candidate.path,
        found: image.linkId,
      });
      continue;
    }
    const timestampMismatch = await parentTimestampMismatch(child, link, image, candidate.path);
    return { image, candidate, ...(timestampMismatch ? { timestampMismatch } : {}) };
  }
  if (mismatch) throw mismatch;
  throw vhdError('VHD_PARENT_NOT_FOUND', {
    path: child.path,
    parent: link.name || link.locators[0]?.path || link.id,
    tried: candidates.map((c) => c.path).join(', ') || 'nowhere (no locator)',
  });
}

/**
 * Whether the parent changed since the child was made, by what the child's creator recorded: blktap
 * (`tap`) stores the parent file's modification time (vhd-util snapshot: `vhd_time(st_mtime)`),
 * Hyper-V and labctl the parent's footer timestamp. Compared with the matching value of the parent
 * found; a copy of the parent made without keeping its mtime shows as changed on a blktap chain too.
 * A block-device parent of a blktap child has nothing to compare.
 */
async function parentTimestampMismatch(
  child: DiskImage,
  link: ParentLink,
  parent: DiskImage,
  parentPath: string,
): Promise<ChainLink['timestampMismatch']> {
  if (link.timestamp === undefined || child.format !== 'vhd') return undefined;
  let actual: number | undefined;
  let source: 'footer timestamp' | 'file modification time';
  if (child.creatorApp?.startsWith('tap')) {
    source = 'file modification time';
    const stats = await stat(parentPath);
    // A device node's mtime is when udev made the node (each boot, each LV activation): on an LVM
    // SR it says nothing about the volume's data.
    if (stats.isBlockDevice()) return undefined;
    const mtime = Math.floor(stats.mtimeMs / 1000);
    actual = mtime - VHD_EPOCH_OFFSET;
  } else {
    source = 'footer timestamp';
    actual = parent.timestamp;
  }
  if (actual === undefined || actual === link.timestamp) return undefined;
  return {
    expected: vhdTimestampToDate(link.timestamp).toISOString(),
    found: vhdTimestampToDate(actual).toISOString(),
    compared: source,
  };
}

/** Opens `path` and every parent down to the base; on any failure closes what it opened. */
export interface OpenChainOptions {
  search?: readonly string[];
  /**
   * Accept a parent smaller than its child. Refused by default: an edited footer or VHDX metadata
   * makes a child claim a size its chain never had, and flatten would fill the gap with zeros.
   * Grown on purpose (`vhd-util resize`, `Resize-VHD` on a child) reads past the parent as zeros.
   */
  allowGrownChild?: boolean;
}

export async function openChain(path: string, options: OpenChainOptions = {}): Promise<Chain> {
  const layers: DiskImage[] = [];
  const links: ChainLink[] = [];
  try {
    let image = await openDisk(path);
    let real = await realpath(path);
    layers.push(image);
    links.push({ path, realPath: real, info: image.info() });
    while (image.parent) {
      if (layers.length > MAX_CHAIN_DEPTH) throw vhdError('VHD_CHAIN_TOO_DEEP', { path, limit: MAX_CHAIN_DEPTH });
      const found = await findParent(image, options.search ?? []);
      real = await realpath(found.candidate.path);
      // A parent that is already in the chain (same file, or same identity) is a cycle.
      if (links.some((l) => l.realPath === real) || layers.some((l) => l.linkId === found.image.linkId)) {
        await found.image.close();
        throw vhdError('VHD_CHAIN_CYCLE', {
          path,
          repeated: found.candidate.path,
          chain: [...links.map((l) => l.path), found.candidate.path].join(' -> '),
        });
      }
      if (found.image.virtualSize < image.virtualSize && !options.allowGrownChild) {
        const parentSize = found.image.virtualSize;
        await found.image.close();
        throw vhdError('VHD_PARENT_SMALLER', {
          path: image.path,
          parent: found.candidate.path,
          childSize: image.virtualSize,
          parentSize,
        });
      }
      image = found.image;
      layers.push(image);
      links.push({
        path: found.candidate.path,
        realPath: real,
        info: image.info(),
        resolvedBy: found.candidate.via,
        locator: found.candidate.locator,
        ...(found.timestampMismatch ? { timestampMismatch: found.timestampMismatch } : {}),
      });
    }
    return new Chain(layers, links);
  } catch (err) {
    await Promise.all(layers.map((l) => l.close()));
    throw err;
  }
}
