import { readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { collectingSink } from '@labctl/core/events';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain, openDisk } from './chain.js';
import { flatten } from './flatten.js';
import { type BuiltChain, buildChain, LEVEL_WRITES } from './testing/chains.js';
import { firstDifference, readChain, sha256, tempDir, tryRun } from './testing/fixtures.js';

/**
 * flatten: the output equals the chain's logical content (read back by labctl and by
 * `qemu-img compare` against the expected raw image), holes stay holes, the chain is never
 * modified, an existing output or one inside the chain is refused, an interrupted run leaves nothing.
 */
const gate = requireTestbed('VHD flatten vs qemu-img', { commands: ['qemu-img'] });
const MiB = 1024 * 1024;
const qemuFormat = { raw: 'raw', vhd: 'vpc', vhdx: 'vhdx' } as const;

/** 2 MiB blocks of the expected content that hold any non-zero byte. */
function dataBlocks(content: Buffer, blockSize: number): number {
  let n = 0;
  for (let off = 0; off < content.length; off += blockSize) {
    if (content.subarray(off, off + blockSize).some((b) => b !== 0)) n++;
  }
  return n;
}

describe.skipIf(gate.skip).each(['vhd', 'vhdx'] as const)('flatten a 4-level %s chain', (source) => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let built: BuiltChain;
  let hashesBefore: string[];
  let mtimesBefore: number[];
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir(`flatten-${source}`));
    // Holes between data blocks (16-20, 22-26, 28-32 MiB) catch a writer that reuses a buffer too early.
    const writes = LEVEL_WRITES.map((w, level) =>
      level === 1 ? [...w, [20 * MiB, 65536]] : level === 2 ? [...w, [26 * MiB, MiB]] : w,
    ) as Array<Array<[number, number]>>;
    built = await buildChain(dir, source, 3, { tag: 'f', size: 32 * MiB, writes });
    hashesBefore = await Promise.all(built.files.map(sha256));
    mtimesBefore = await Promise.all(built.files.map(async (f) => (await stat(f)).mtimeMs));
  });
  afterAll(async () => cleanup?.());

  const outputs = [
    { format: 'raw', type: 'dynamic', ext: 'raw' },
    { format: 'vhd', type: 'dynamic', ext: 'vhd' },
    { format: 'vhd', type: 'fixed', ext: 'vhd' },
    { format: 'vhdx', type: 'dynamic', ext: 'vhdx' },
    { format: 'vhdx', type: 'fixed', ext: 'vhdx' },
  ] as const;

  for (const o of outputs) {
    it(`to ${o.format}${o.format === 'raw' ? '' : ` ${o.type}`}: same content for labctl and qemu-img compare, holes kept`, async () => {
      const out = join(dir, `flat-${o.type}.${o.ext}`);
      const events = collectingSink();
      const result = await flatten(built.files[3]!, out, { format: o.format, type: o.type, events });
      expect(result.chain).toHaveLength(4);
      const expected = built.expected[3]!;
      // labctl reads it back as a standalone disk
      const chain = await openChain(out.endsWith('.raw') ? built.files[3]! : out);
      if (o.format !== 'raw') {
        expect(chain.layers).toHaveLength(1);
        expect(chain.top.type).toBe(o.type);
        expect(firstDifference(await readChain(chain), expected)).toBe(-1);
      }
      await chain.close();
      if (o.format === 'raw') expect(firstDifference(await readFile(out), expected)).toBe(-1);
      // qemu-img opens it and finds the same bytes as the expected raw image
      const compare = await tryRun('qemu-img', [
        'compare',
        '-f',
        'raw',
        '-F',
        qemuFormat[o.format],
        built.rawExpected[3]!,
        out,
      ]);
      expect(compare.stdout + compare.stderr).toMatch(/Images are identical/);
      expect(compare.code).toBe(0);
      // holes stay holes: only blocks with data take space
      const blocks = dataBlocks(expected, 2 * MiB);
      expect(blocks).toBeLessThan(expected.length / (2 * MiB));
      const allocated = (await stat(out)).blocks * 512;
      expect(allocated).toBeLessThanOrEqual(blocks * 2 * MiB + 5 * MiB);
      if (o.format !== 'raw' && o.type === 'dynamic') {
        const image = await openDisk(out);
        expect(image.info().allocatedBlocks).toBe(blocks);
        await image.close();
      }
      // progress: start, rising fractions, done at 1
      const fractions = events.events.filter((e) => e.status === 'progress').map((e) => e.fraction ?? 0);
      expect(events.events[0]?.status).toBe('start');
      expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
      expect(events.events.at(-1)).toMatchObject({ status: 'done', fraction: 1 });
    });
  }

  it('never modifies the chain', async () => {
    expect(await Promise.all(built.files.map(sha256))).toEqual(hashesBefore);
    expect(await Promise.all(built.files.map(async (f) => (await stat(f)).mtimeMs))).toEqual(mtimesBefore);
  });

  it('refuses an existing output and leaves it untouched', async () => {
    const out = join(dir, 'existing.img');
    await writeFile(out, 'precious');
    await expect(flatten(built.files[3]!, out)).rejects.toMatchObject({ code: 'VHD_OUTPUT_EXISTS', exitCode: 2 });
    expect(await readFile(out, 'utf8')).toBe('precious');
  });

  it('refuses to write into the chain (the shared parent stays intact)', async () => {
    await expect(flatten(built.files[3]!, built.files[0]!)).rejects.toMatchObject({
      code: 'VHD_OUTPUT_IN_CHAIN',
      message: expect.stringContaining('is part of the chain being read'),
    });
    expect(await sha256(built.files[0]!)).toBe(hashesBefore[0]);
  });

  it('an interrupted flatten leaves neither the output nor a temp file', async () => {
    const before = await readdir(dir);
    const abort = new AbortController();
    const out = join(dir, 'interrupted.vhd');
    const run = flatten(built.files[3]!, out, {
      signal: abort.signal,
      events: (e) => {
        if (e.status === 'progress') abort.abort();
      },
    });
    await expect(run).rejects.toMatchObject({ code: 'VHD_ABORTED' });
    expect(await readdir(dir)).toEqual(before);
  });
});
