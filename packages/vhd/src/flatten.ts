import { randomBytes } from 'node:crypto';
import { lstat, readdir, realpath, rename, stat, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import type { EventSink } from '@labctl/core/events';
import { isProcessAlive } from '@labctl/core/state';
import { isZero } from './binary.js';
import { type Chain, openChain } from './chain.js';
import { vhdError } from './errors.js';
import { createDisk, type DiskWriter, type OutputFormat } from './writer.js';

export interface FlattenOptions {
  format?: OutputFormat;
  type?: 'dynamic' | 'fixed';
  search?: readonly string[];
  /** See OpenChainOptions.allowGrownChild. */
  allowGrownChild?: boolean;
  events?: EventSink;
  signal?: AbortSignal;
}

export interface FlattenResult {
  source: string;
  output: string;
  format: OutputFormat;
  type: 'dynamic' | 'fixed';
  virtualSize: number;
  /** Bytes of data written (holes and all-zero blocks are skipped). */
  dataBytes: number;
  chain: string[];
  seconds: number;
}

/** Output format from the flag, else from the output's extension (.vhd, .vhdx, anything else raw). */
export function outputFormatFor(out: string, format?: OutputFormat): OutputFormat {
  if (format) return format;
  const lower = out.toLowerCase();
  if (lower.endsWith('.vhdx') || lower.endsWith('.avhdx')) return 'vhdx';
  if (lower.endsWith('.vhd') || lower.endsWith('.avhd')) return 'vhd';
  return 'raw';
}

/** Units read concurrently per batch. */
const BATCH = 4;
/** Batches checked at once for being empty (64 MiB with 2 MiB units). */
const HOLE_PROBE_BATCHES = 8;

async function pathExists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/** Refuses an output that is a member of the chain or that exists already (checked before any write). */
export async function assertNewOutput(out: string, chain?: Chain): Promise<void> {
  if (chain) {
    let real = resolve(out);
    try {
      real = await realpath(out);
    } catch {
      // Does not exist: compare the path it would have.
      real = join(await realpath(dirname(resolve(out))).catch(() => dirname(resolve(out))), basename(out));
    }
    const member = chain.links.find((l) => l.realPath === real);
    if (member) throw vhdError('VHD_OUTPUT_IN_CHAIN', { path: out, member: member.path });
  }
  if (await pathExists(out)) throw vhdError('VHD_OUTPUT_EXISTS', { path: out });
  const dir = dirname(resolve(out));
  if (
    !(await stat(dir)
      .then((s) => s.isDirectory())
      .catch(() => false))
  ) {
    throw vhdError('VHD_BAD_ARGUMENT', { what: `${out}: the directory ${dir} does not exist` });
  }
}

/**
 * Reads the whole chain of `source` and writes a new standalone disk `out`. The chain is opened
 * read-only and never written; the output goes to a temporary name in the same directory and is
 * renamed only when complete, so a failure or an interrupt leaves no partial `out` behind.
 * Reads of the next unit overlap the write of the previous one; ranges that are holes in every
 * layer (or read as zeros) are not written, so holes stay holes.
 */
export async function flatten(source: string, out: string, options: FlattenOptions = {}): Promise<FlattenResult> {
  const started = performance.now();
  const format = outputFormatFor(out, options.format);
  const type = options.type ?? 'dynamic';
  const events = options.events ?? (() => {});
  const chain = await openChain(source, {
    search: options.search ?? [],
    ...(options.allowGrownChild ? { allowGrownChild: true } : {}),
  });
  let writer: DiskWriter | undefined;
  const temp = join(
    dirname(resolve(out)),
    `.${basename(out)}.labctl-${process.pid}-${randomBytes(4).toString('hex')}.tmp`,
  );
  try {
    await assertNewOutput(out, chain);
    await removeDeadTemporaries(dirname(resolve(out)));
    const top = chain.top;
    const logical = top.format === 'vhdx' ? (top.info().logicalSectorSize ?? 512) : 512;
    writer = await createDisk(temp, {
      format,
      type,
      virtualSize: chain.virtualSize,
      ...(format === 'vhdx' && logical !== 512 ? { logicalSectorSize: logical } : {}),
    });
    const unit = writer.blockSize;
    const size = chain.virtualSize;
    // Reads go out BATCH units at a time (the disk serves several requests better than one), and
    // the writes of one batch overlap the reads of the next: two sets of buffers, fixed memory.
    const sets = [0, 1].map(() => Array.from({ length: BATCH }, () => Buffer.allocUnsafe(unit)));
    let pendingWrites: Promise<void> = Promise.resolve();
    let dataBytes = 0;
    let lastFraction = 0;
    events({
      subject: out,
      phase: 'flatten',
      status: 'start',
      message: `${chain.layers.length} layer(s), ${size} bytes`,
    });
    const span = unit * BATCH;
    const report = (done: number) => {
      const fraction = Math.min(1, done / size);
      if (fraction - lastFraction < 0.01) return;
      lastFraction = fraction;
      events({ subject: out, phase: 'flatten', status: 'progress', fraction });
    };
    for (let offset = 0, batch = 0; offset < size; offset += span) {
      if (options.signal?.aborted) throw vhdError('VHD_ABORTED', { path: out });
      // Sparse disks: skip a whole run of empty batches with one look-up instead of one per unit.
      const probe = Math.min(size - offset, span * HOLE_PROBE_BATCHES);
      if (probe > span && (await chain.resolve(offset, probe)).every((e) => e.layer === -1)) {
        offset += probe - span;
        report(offset + span);
        continue;
      }
      const buffers = sets[batch++ % 2]!;
      const units = await Promise.all(
        buffers.map(async (buffer, k) => {
          const at = offset + k * unit;
          if (at >= size) return undefined;
          const length = Math.min(unit, size - at);
          const extents = await chain.resolve(at, length);
          if (extents.every((e) => e.layer === -1)) return undefined;
          const buf = buffer.subarray(0, length);
          await chain.read(at, buf, extents);
          return isZero(buf) ? undefined : { at, buf };
        }),
      );
      // The previous batch's writes must be done before its buffers are reused by the next batch.
      await pendingWrites;
      const w = writer;
      pendingWrites = (async () => {
        for (const u of units) if (u) await w.write(u.at, u.buf);
      })();
      // Caught here so a failure is not unhandled while the next batch is read; awaited (and thrown) above.
      pendingWrites.catch(() => {});
      for (const u of units) if (u) dataBytes += u.buf.length;
      report(offset + span);
    }
    await pendingWrites;
    await writer.finish();
    writer = undefined;
    if (await pathExists(out)) throw vhdError('VHD_OUTPUT_EXISTS', { path: out });
    await rename(temp, out);
    const result: FlattenResult = {
      source,
      output: out,
      format,
      type,
      virtualSize: size,
      dataBytes,
      chain: chain.links.map((l) => l.path),
      seconds: (performance.now() - started) / 1000,
    };
    events({ subject: out, phase: 'flatten', status: 'done', fraction: 1, message: `${dataBytes} bytes of data` });
    return result;
  } catch (err) {
    if (writer) await writer.abort().catch(() => {});
    await unlink(temp).catch(() => {});
    throw err;
  } finally {
    await chain.close();
  }
}

/** `.<name>.labctl-<pid>-<hex>.tmp`: the temporary output of a flatten run (see flatten()). */
const TEMP_NAME = /^\..+\.labctl-(\d+)-[0-9a-f]{8}\.tmp$/;

/**
 * Temporary outputs left by runs that died without cleaning up (SIGKILL, power loss) are removed:
 * only files named the way flatten names them, only regular files, only when the PID in the name is
 * not a running process.
 */
export async function removeDeadTemporaries(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = Number(TEMP_NAME.exec(name)?.[1]);
    if (!pid || pid === process.pid || isProcessAlive(pid)) continue;
    const path = join(dir, name);
    const stats = await lstat(path).catch(() => undefined);
    if (!stats?.isFile()) continue;
    await unlink(path).then(
      () => removed.push(path),
      () => {},
    );
  }
  return removed;
}
