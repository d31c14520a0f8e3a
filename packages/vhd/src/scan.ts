import { readdir, realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { describeError, isLabctlError } from '@labctl/core/errors';
import { findParent, openDisk } from './chain.js';
import type { DiskFormat, DiskType } from './image.js';

export type ScanStatus = 'ok' | 'orphan' | 'ancestor-missing' | 'cycle' | 'unreadable';

export interface ScanNode {
  path: string;
  format?: DiskFormat;
  type?: DiskType;
  virtualSize?: number;
  fileSize?: number;
  linkId?: string;
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

async function listDisks(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    const entries = await readdir(d, { withFileTypes: true });
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.isFile() && DISK_NAME.test(e.name)) out.push(p);
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
export async function scanDir(dir: string): Promise<ScanResult> {
  const files = await listDisks(dir);
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
