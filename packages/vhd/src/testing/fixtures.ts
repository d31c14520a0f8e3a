import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Chain } from '../chain.js';

/** Test helpers: temp dirs, the reference tools (qemu-img, qemu-io, libvhdi), known data. */
const exec = promisify(execFile);

export async function run(command: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return exec(command, args, { maxBuffer: 64 * 1024 * 1024 });
}

/** Runs a command that may fail; returns its exit status and output. */
export async function tryRun(
  command: string,
  args: string[],
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(command, args);
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export async function tempDir(tag: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), `labctl-vhd-${tag}-`));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/**
 * Known data: every 512-byte sector says which layer wrote it and where, so a wrong fall-through
 * or an off-by-one block shows up as a different byte, never as a lucky match.
 */
export function pattern(layer: number, offset: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  for (let at = 0; at < length; at += 512) {
    const sector = (offset + at) / 512;
    buf.fill((layer * 37 + sector * 7) & 0xff, at, at + 512);
    buf.writeUInt32LE(sector, at);
    buf.writeUInt8(layer, at + 4);
    buf.write('labctl', at + 5, 'latin1');
  }
  return buf;
}

/** The whole virtual disk of a (small, test) chain in memory. */
export async function readChain(chain: Chain): Promise<Buffer> {
  const buf = Buffer.alloc(chain.virtualSize);
  const unit = 4 * 1024 * 1024;
  for (let offset = 0; offset < buf.length; offset += unit) {
    await chain.read(offset, buf.subarray(offset, Math.min(buf.length, offset + unit)));
  }
  return buf;
}

export async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** First differing byte of two buffers, for readable failures. */
export function firstDifference(a: Buffer, b: Buffer): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i += 65536) {
    const x = a.subarray(i, i + 65536);
    const y = b.subarray(i, i + 65536);
    if (!x.equals(y)) for (let k = 0; k < x.length; k++) if (x[k] !== y[k]) return i + k;
  }
  return -1;
}
