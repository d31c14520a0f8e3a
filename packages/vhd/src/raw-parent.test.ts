import { readFile, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain, openDisk } from './chain.js';
import { checkDisk } from './check.js';
import { flatten } from './flatten.js';
import { renderInfo } from './format.js';
import { RawImage } from './raw-image.js';
import { pattern, tempDir } from './testing/fixtures.js';
import { createDisk } from './writer.js';

const MiB = 1024 * 1024;
const SIZE = 8 * MiB;

/**
 * Children of raw parents, as blktap's `vhd-util snapshot -m` makes them: a zero parent UUID and
 * MacX + W2KU + W2RU locators naming a raw file by its relative path, data_space in bytes, the raw
 * file's mtime as parent timestamp. No Debian tool writes one, so labctl's writer makes it in
 * blktap's layout (from the blktap sources); labctl reads, checks and flattens it with the raw
 * file as the chain's base.
 */
describe('VHD children of raw parents (blktap)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let expected: Buffer;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('rawparent'));
    const base = Buffer.alloc(SIZE);
    pattern(0, 0, 3 * MiB).copy(base, 0);
    pattern(0, 5 * MiB, MiB).copy(base, 5 * MiB);
    await writeFile(join(dir, 'base.raw'), base);
    await utimes(join(dir, 'base.raw'), new Date('2030-02-03T04:05:06Z'), new Date('2030-02-03T04:05:06Z'));
    const raw = await RawImage.open(join(dir, 'base.raw'));
    const child = await createDisk(join(dir, 'VHD-child'), {
      format: 'vhd',
      virtualSize: SIZE,
      parent: raw,
      layout: 'blktap',
    });
    await raw.close();
    expected = Buffer.from(base);
    for (const [offset, length] of [
      [MiB + 512, 7 * 512],
      [4 * MiB, 2 * MiB],
    ] as const) {
      const data = pattern(1, offset, length);
      await child.write(offset, data);
      data.copy(expected, offset);
    }
    await child.finish();
  });
  afterAll(async () => cleanup?.());

  it('info shows the raw parent, the three blktap locators and the creator', async () => {
    const disk = await openDisk(join(dir, 'VHD-child'));
    const info = disk.info();
    await disk.close();
    expect(info.parent).toMatchObject({ raw: true, name: 'base.raw' });
    expect(info.locators).toEqual([
      { key: 'MacX', path: './base.raw' },
      { key: 'W2ku', path: './base.raw' },
      { key: 'W2ru', path: './base.raw' },
    ]);
    expect(info.creator).toBe('tap 1.3');
    expect(renderInfo(info)).toMatch(/^Parent\s+: a raw file/m);
  });

  it('chain ends at the raw file; check passes; flatten gives the raw data under the child’s', async () => {
    const chain = await openChain(join(dir, 'VHD-child'));
    try {
      expect(chain.links.map((link) => [link.info.format, link.resolvedBy, link.timestampMismatch])).toEqual([
        ['vhd', undefined, undefined],
        ['raw', 'relative', undefined],
      ]);
    } finally {
      await chain.close();
    }
    expect(await checkDisk(join(dir, 'VHD-child'))).toMatchObject({ ok: true });
    const out = join(dir, 'flat.raw');
    await flatten(join(dir, 'VHD-child'), out);
    expect((await readFile(out)).equals(expected)).toBe(true);
  });

  it('a VHD where the raw parent should be is refused; a raw parent written since the snapshot warns', async () => {
    await utimes(join(dir, 'base.raw'), new Date('2031-01-01T00:00:00Z'), new Date('2031-01-01T00:00:00Z'));
    const chain = await openChain(join(dir, 'VHD-child'));
    try {
      expect(chain.links[1]!.timestampMismatch).toEqual({
        compared: 'file modification time',
        expected: '2030-02-03T04:05:06.000Z',
        found: '2031-01-01T00:00:00.000Z',
      });
    } finally {
      await chain.close();
    }
    const swap = await createDisk(join(dir, 'base.raw.vhd'), { format: 'vhd', virtualSize: SIZE });
    await swap.finish();
    await writeFile(join(dir, 'base.raw'), await readFile(join(dir, 'base.raw.vhd')));
    await expect(openChain(join(dir, 'VHD-child'))).rejects.toThrow(/raw \(the child has no parent UUID\)/);
  });
});
