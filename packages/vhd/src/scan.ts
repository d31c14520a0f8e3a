import type { Dirent } from 'node:fs';
import { readdir, realpath, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describeError, isLabctlError } from '@labctl/core/errors';
import { findParent, openDisk } from './chain.js';
import { vhdError } from './errors.js';
import { looksLikeDisk } from './sniff.js';

export { looksLikeDisk };
import type { DiskFormat, DiskType } from './image.js';

export type ScanStatus = 'ok' | 'orphan' | 'ancestor-missing' | 'cycle' | 'unreadable';

export interface ScanNode {
  path: string;
  format?: DiskFormat;
  type?: DiskType;
  virtualSize?: number;
  fileSize?: number;
  linkId?: string;
  /** VHD: blktap's hidden byte (XenServer: 1 on snapshot bases). */
  hidden?: number;
  /** The parent's path when found (it may lie outside the scanned directory). */
  parent?: string;
  /** What the child expects when the parent is missing or does not match. */
  parentExpected?: string;
  children: string[];
  status: ScanStatus;
  problem?: string;
}

export interface ScanResult {
  dir: string;
  disks: ScanNode[];
  /** Top-level entries of the tree: base disks, orphans, disks whose parent lies outside `dir`. */
  roots: string[];
}

const DISK_NAME = /\.a?vhdx?$/i;

export interface ScanOptions {
  /**
   * A glob on file names (`*`, `?`, `[abc]`, `[!abc]`): only those are looked at, and one that is
   * not a VHD/VHDX is listed as unreadable. Without it, every regular file is looked at: `.vhd` /
   * `.vhdx` / `.avhd(x)` names always (a damaged one is listed), any other name when its content is
   * a VHD or VHDX (XenServer's LVM and file SRs name volumes `VHD-<uuid>`, without an extension).
   * Block devices (and links to them) are looked at only when the pattern names them.
   */
  pattern?: string;
}

/** A file-name glob as a RegExp on the whole name; a bad one is refused. */
export function globPattern(glob: string): RegExp {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '[^/]*';
    else if (c === '?') out += '[^/]';
    else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) throw vhdError('VHD_BAD_ARGUMENT', { what: `--pattern ${JSON.stringify(glob)}: an unclosed [` });
      const body = glob
        .slice(i + 1, end)
        .replace(/^!/, '^')
        .replace(/\\/g, '\\\\');
      out += `[${body}]`;
      i = end;
    } else out += c.replace(/[.+^${}()|\\/\]]/g, '\\$&');
  }
  return new RegExp(`^${out}$`);
}

/**
 * What a directory entry is once links are followed: links into other directories are not walked
 * (no loops), links to files and devices are (XenServer's `/dev/VG_XenStorage-<sr>/VHD-<uuid>` are
 * links to device-mapper volumes).
 */
async function entryKind(path: string, entry: Dirent): Promise<'dir' | 'file' | 'device' | 'other'> {
  if (entry.isDirectory()) return 'dir';
  if (entry.isFile()) return 'file';
  if (entry.isBlockDevice()) return 'device';
  if (!entry.isSymbolicLink()) return 'other';
  const target = await stat(path).catch(() => undefined);
  if (target?.isFile()) return 'file';
  if (target?.isBlockDevice()) return 'device';
  return 'other';
}

async function listDisks(dir: string, options: ScanOptions): Promise<string[]> {
  const pattern = options.pattern !== undefined ? globPattern(options.pattern) : undefined;
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      const kind = await entryKind(p, e);
      if (kind === 'dir') await walk(p);
      if (kind !== 'file' && kind !== 'device') continue;
      // Block devices only when named by --pattern: reading every device under /dev is not a scan.
      const wanted = pattern
        ? pattern.test(e.name)
        : kind === 'file' && (DISK_NAME.test(e.name) || (await looksLikeDisk(p)));
      if (!wanted) continue;
      const real = await realpath(p);
      if (!seen.has(real)) {
        seen.add(real);
        out.push(p);
      }
    }
  };
  await walk(dir);
  return out;
}

/**
 * Every VHD/VHDX below `dir` as a forest of parents and children (like `vhd-util scan -p`).
 * Parents are resolved as `chain` resolves them and verified by UUID / DataWriteGuid. Flags:
 * `orphan` (its parent is missing or does not match), `ancestor-missing` (a parent further up is),
 * `cycle`, `unreadable` (damaged file). Files are only read.
 */
export async function scanDir(dir: string, options: ScanOptions = {}): Promise<ScanResult> {
  const files = await listDisks(dir, options);
  const nodes = new Map<string, ScanNode>();
  const byReal = new Map<string, string>();
  for (const path of files) {
    byReal.set(await realpath(path), path);
    const node: ScanNode = { path, children: [], status: 'ok' };
    nodes.set(path, node);
    let image: Awaited<ReturnType<typeof openDisk>> | undefined;
    try {
      image = await openDisk(path);
      Object.assign(node, {
        format: image.format,
        type: image.type,
        virtualSize: image.virtualSize,
        fileSize: image.fileSize,
        linkId: image.linkId,
      });
      const hidden = image.info().hidden;
      if (hidden !== undefined) node.hidden = hidden;
      if (image.parent) {
        node.parentExpected = `${image.parent.name || image.parent.locators[0]?.path} (${image.parent.idField} ${image.parent.id})`;
        try {
          const found = await findParent(image, []);
          await found.image.close();
          node.parent = found.candidate.path;
        } catch (err) {
          if (!isLabctlError(err)) throw err;
          node.status = 'orphan';
          node.problem = err.message;
        }
      }
    } catch (err) {
      if (!isLabctlError(err)) throw err;
      node.status = 'unreadable';
      node.problem = describeError(err);
    } finally {
      await image?.close();
    }
  }
  // Link children to parents found inside the scan (by real path, so ./x and x are one file).
  for (const node of nodes.values()) {
    if (!node.parent) continue;
    const inside = byReal.get(await realpath(node.parent).catch(() => node.parent!));
    if (inside) {
      node.parent = inside;
      nodes.get(inside)!.children.push(node.path);
    }
  }
  // Walk up from every node: a cycle, or a broken ancestor, taints it.
  for (const node of nodes.values()) {
    if (node.status !== 'ok') continue;
    const seen = new Set<string>([node.path]);
    let up = node.parent ? nodes.get(node.parent) : undefined;
    while (up) {
      if (seen.has(up.path)) {
        node.status = 'cycle';
        node.problem = `the parent chain loops back to ${relative(dir, up.path) || up.path}`;
        break;
      }
      seen.add(up.path);
      if (up.status === 'orphan' || up.status === 'unreadable') {
        node.status = 'ancestor-missing';
        node.problem = `ancestor ${up.path} is ${up.status === 'orphan' ? 'missing its parent' : 'unreadable'}`;
        break;
      }
      up = up.parent ? nodes.get(up.parent) : undefined;
    }
  }
  const disks = [...nodes.values()];
  const roots = disks.filter((n) => !n.parent || !nodes.has(n.parent) || n.status === 'cycle').map((n) => n.path);
  return { dir, disks, roots };
}
