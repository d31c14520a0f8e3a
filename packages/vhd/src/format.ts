import { relative } from 'node:path';
import type { ChainLink } from './chain.js';
import type { DiskInfo } from './image.js';
import type { ScanNode, ScanResult } from './scan.js';

/** Text renderings for the CLI (libraries never print; the command decides where this goes). */

export function humanSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(value < 10 ? 2 : 1)} ${units[unit]}`;
}

/** `labctl vhd info`: one "key: value" line each, like `vhd-util read -p`. */
export function renderInfo(info: DiskInfo): string {
  const lines: Array<[string, string]> = [
    ['File', info.path],
    ['Format', `${info.format.toUpperCase()} ${info.type}`],
    ['Virtual size', `${humanSize(info.virtualSize)} (${info.virtualSize} bytes)`],
    ['Block size', humanSize(info.blockSize)],
    ['Allocated', `${humanSize(info.allocatedSize)} in ${info.allocatedBlocks} of ${info.totalBlocks} blocks`],
    ['File size', `${humanSize(info.fileSize)} (${info.fileSize} bytes)`],
    ['Sector size', `${info.logicalSectorSize} logical, ${info.physicalSectorSize} physical`],
    [info.format === 'vhd' ? 'UUID' : 'Disk identifier', info.uuid],
  ];
  if (info.format === 'vhdx') lines.push(['DataWriteGuid', info.linkId]);
  if (info.timestamp) lines.push(['Timestamp', info.timestamp]);
  if (info.creator) lines.push(['Creator', info.creator]);
  if (info.hidden !== undefined) lines.push(['Hidden', String(info.hidden)]);
  lines.push([
    'Checksums',
    Object.entries(info.checksums)
      .map(([k, v]) => `${k} ${v}`)
      .join(', '),
  ]);
  if (info.parent) {
    lines.push(['Parent name', info.parent.name || '-']);
    lines.push(
      info.parent.raw
        ? ['Parent', 'a raw file (zero parent UUID: vhd-util snapshot -m)']
        : [`Parent ${info.parent.idField}`, info.parent.id],
    );
    if (info.parent.timestamp) lines.push(['Parent timestamp', info.parent.timestamp]);
    for (const l of info.locators ?? info.parent.locators) lines.push([`Parent locator ${l.key}`, l.path]);
  }
  for (const w of info.warnings) lines.push(['Warning', w]);
  const width = Math.max(...lines.map(([k]) => k.length));
  return lines.map(([k, v]) => `${k.padEnd(width)} : ${v}`).join('\n');
}

/** `labctl vhd chain`: the file, then each parent indented under its child, with how it was found. */
export function renderChain(links: ChainLink[]): string {
  return links
    .map((l, depth) => {
      const how = l.resolvedBy ? `  (found by ${l.resolvedBy}: ${l.locator})` : '';
      const ts = l.timestampMismatch
        ? `  WARNING parent ${l.timestampMismatch.compared}: expected ${l.timestampMismatch.expected}, found ${l.timestampMismatch.found}`
        : '';
      const i = l.info;
      return `${'  '.repeat(depth)}${depth ? '└─ ' : ''}${l.path}  ${i.format} ${i.type} ${humanSize(i.virtualSize)}, ${humanSize(i.allocatedSize)} allocated, ${i.format === 'vhd' ? 'UUID' : 'DataWriteGuid'} ${i.linkId}${how}${ts}`;
    })
    .join('\n');
}

/** `labctl vhd scan`: a forest like `vhd-util scan -p`, problems flagged in capitals. */
export function renderScan(result: ScanResult): string {
  const byPath = new Map(result.disks.map((d) => [d.path, d]));
  const lines: string[] = [];
  const flag = (n: ScanNode) =>
    n.status === 'ok' ? '' : `  ${n.status.toUpperCase()}${n.problem ? `: ${n.problem}` : ''}`;
  const walk = (n: ScanNode, depth: number, seen: Set<string>) => {
    const name = relative(result.dir, n.path) || n.path;
    const what = n.format
      ? `${n.format} ${n.type} ${humanSize(n.virtualSize ?? 0)} file ${humanSize(n.fileSize ?? 0)}${n.hidden ? ' hidden=1' : ''}`
      : '';
    const parent =
      depth === 0 && n.parent
        ? `  parent=${n.parent}`
        : depth === 0 && n.type !== 'differencing'
          ? '  parent=none'
          : '';
    lines.push(`${'  '.repeat(depth)}${name}  ${what}${parent}${flag(n)}`);
    if (seen.has(n.path)) return;
    seen.add(n.path);
    for (const c of n.children) {
      const child = byPath.get(c);
      if (child && !seen.has(c)) walk(child, depth + 1, seen);
    }
  };
  for (const root of result.roots) walk(byPath.get(root)!, 0, new Set());
  if (result.disks.length === 0) lines.push(`No .vhd/.vhdx files below ${result.dir}`);
  return lines.join('\n');
}
