import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createDifferencing } from '../diff.js';
import { openDiskForWrite } from '../writer.js';
import { pattern, run } from './fixtures.js';

const MiB = 1024 * 1024;

export interface BuiltChain {
  /** Files, base first. */
  files: string[];
  /** The expected virtual disk after each level (index = level). */
  expected: Buffer[];
  rawExpected: string[];
}

/** One level's writes: [offset, length] pairs; they cross block boundaries, hit partial sectors ranges, whole blocks. */
/**
 * Runs of present sectors end on 4 KiB boundaries here: libvhdi 20210425 reads the rest of a bitmap
 * byte from the child when a present run ends inside it (see docs/vhd.md); runs that end inside a
 * byte are covered by SUB_4K_WRITES, checked against the expected content only.
 */
export const LEVEL_WRITES: Array<Array<[number, number]>> = [
  [], // base: see BASE_REGIONS
  [
    [1 * MiB + 512, 7 * 512],
    [4 * MiB, 2 * MiB],
    [7 * MiB - 4096, 12288],
    [15 * MiB, MiB],
  ],
  [
    [0, 64 * 1024],
    [4 * MiB + 1024 * 1024, 4096],
    [9 * MiB, 3 * MiB],
  ],
  [
    [6 * MiB + 512, 7 * 512],
    [10 * MiB, 4096],
    [14 * MiB - 512, 4608],
  ],
];

/** Single sectors and runs that start and end inside a bitmap byte, for the reader's own check. */
export const SUB_4K_WRITES: Array<Array<[number, number]>> = [
  [],
  [
    [1 * MiB + 512, 3 * 512],
    [2 * MiB - 512, 1024],
    [6 * MiB + 1536, 512],
  ],
  [
    [1 * MiB + 1024, 512],
    [6 * MiB, 2048],
  ],
];
export const BASE_REGIONS: Array<[number, number]> = [
  [0, 3 * MiB],
  [6 * MiB, 2 * MiB],
  [12 * MiB, 1 * MiB + 4096],
];

/**
 * A base made by qemu-img from known data (converted from raw), then `levels` differencing disks
 * made by labctl (`createDifferencing`) and filled with labctl's writer. Returns the expected
 * content of every level, computed independently of any reader.
 */
export async function buildChain(
  dir: string,
  format: 'vhd' | 'vhdx',
  levels: number,
  options: { size?: number; tag?: string; writes?: Array<Array<[number, number]>> } = {},
): Promise<BuiltChain> {
  const { size = 16 * MiB, tag = 'c', writes = LEVEL_WRITES } = options;
  const base = Buffer.alloc(size);
  for (const [offset, length] of BASE_REGIONS) pattern(0, offset, length).copy(base, offset);
  const baseRaw = join(dir, `${tag}-base.raw`);
  await writeFile(baseRaw, base);
  const ext = format;
  const files = [join(dir, `${tag}-base.${ext}`)];
  const convertOptions =
    format === 'vhd'
      ? ['-O', 'vpc', '-o', 'subformat=dynamic,force_size=on']
      : ['-O', 'vhdx', '-o', 'subformat=dynamic,block_size=1M'];
  await run('qemu-img', ['convert', '-f', 'raw', ...convertOptions, baseRaw, files[0]!]);
  const expected = [base];
  const rawExpected = [baseRaw];
  for (let level = 1; level <= levels; level++) {
    const file = join(dir, `${tag}-level${level}.${ext}`);
    await createDifferencing(files[level - 1]!, file);
    const writer = await openDiskForWrite(file);
    const content = Buffer.from(expected[level - 1]!);
    for (const [offset, length] of writes[level] ?? []) {
      const data = pattern(level, offset, length);
      await writer.write(offset, data);
      data.copy(content, offset);
    }
    await writer.finish();
    const raw = join(dir, `${tag}-level${level}.raw`);
    await writeFile(raw, content);
    files.push(file);
    expected.push(content);
    rawExpected.push(raw);
  }
  return { files, expected, rawExpected };
}
