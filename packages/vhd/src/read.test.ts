import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain, openDisk } from './chain.js';
import { firstDifference, readChain, run, tempDir } from './testing/fixtures.js';

/**
 * The reader against qemu-img: base images made by qemu-img (VHD dynamic/fixed with force_size,
 * VHDX dynamic/fixed, zero-state and not-present blocks), filled by qemu-io, read by labctl and
 * compared byte for byte with `qemu-img convert -O raw`.
 */
const gate = requireTestbed('VHD reader vs qemu-img', { commands: ['qemu-img', 'qemu-io'] });
const MiB = 1024 * 1024;
const SIZE = 23 * MiB; // not a multiple of the block size: the last block is partial

const cases = [
  { name: 'vhd-dynamic', format: 'vpc', options: 'subformat=dynamic,force_size=on', type: 'dynamic' },
  { name: 'vhd-fixed', format: 'vpc', options: 'subformat=fixed,force_size=on', type: 'fixed' },
  { name: 'vhdx-dynamic', format: 'vhdx', options: 'subformat=dynamic', type: 'dynamic' },
  {
    name: 'vhdx-dynamic-1m-notpresent',
    format: 'vhdx',
    options: 'subformat=dynamic,block_size=1M,block_state_zero=off',
    type: 'dynamic',
  },
  { name: 'vhdx-fixed', format: 'vhdx', options: 'subformat=fixed,block_size=8M', type: 'fixed' },
] as const;

describe.skipIf(gate.skip)('reading qemu-img images', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('read'));
  });
  afterAll(async () => cleanup?.());

  for (const c of cases) {
    it(`${c.name}: every byte equals qemu-img convert -O raw`, async () => {
      const file = join(dir, `${c.name}.${c.format === 'vpc' ? 'vhd' : 'vhdx'}`);
      await run('qemu-img', ['create', '-q', '-f', c.format, '-o', c.options, file, String(SIZE)]);
      await run('qemu-io', [
        '-f',
        c.format,
        '-c',
        'write -P 0xaa 0 1M',
        '-c',
        'write -P 0x55 5243392 65536', // 5 MiB + 512: inside a block, unaligned to it
        '-c',
        'write -P 0x11 22M 1M', // the partial last block
        '-c',
        'write -z 0 4096', // zeros written over data
        file,
      ]);
      const raw = join(dir, `${c.name}.raw`);
      await run('qemu-img', ['convert', '-O', 'raw', '-f', c.format, file, raw]);
      const image = await openDisk(file);
      expect(image.info()).toMatchObject({
        type: c.type,
        virtualSize: SIZE,
        format: c.format === 'vpc' ? 'vhd' : 'vhdx',
      });
      await image.close();
      const chain = await openChain(file);
      const ours = await readChain(chain);
      await chain.close();
      const expected = await readFile(raw);
      expect(firstDifference(ours, expected)).toBe(-1);
    });
  }
});
