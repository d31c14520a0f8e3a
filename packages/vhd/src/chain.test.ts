import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain } from './chain.js';
import { type BuiltChain, buildChain, SUB_4K_WRITES } from './testing/chains.js';
import { firstDifference, readChain, run, tempDir, tryRun } from './testing/fixtures.js';

/**
 * Differencing chains written by labctl (2-4 levels, VHD and VHDX), read back by libvhdi as the
 * independent oracle: `vhdiinfo` must see a differencing disk with the right parent, and
 * `vhdimount` must expose every level with exactly the expected bytes (including sectors that fall
 * through a partially present block to the parent).
 */
const gate = requireTestbed('VHD chains vs libvhdi', { root: true, commands: ['vhdimount', 'vhdiinfo', 'qemu-img'] });

describe.skipIf(gate.skip).each(['vhd', 'vhdx'] as const)('%s chain of 4 levels written by labctl', (format) => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let built: BuiltChain;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir(`chain-${format}`));
    built = await buildChain(dir, format, 3);
  });
  afterAll(async () => cleanup?.());

  it('labctl reads every level as expected', async () => {
    for (let level = 0; level < built.files.length; level++) {
      const chain = await openChain(built.files[level]!);
      expect(chain.layers).toHaveLength(level + 1);
      const content = await readChain(chain);
      await chain.close();
      expect(firstDifference(content, built.expected[level]!), `level ${level}`).toBe(-1);
    }
  });

  it('vhdiinfo sees a differencing disk linked to its parent', async () => {
    const top = built.files[3]!;
    const parent = await openChain(built.files[2]!);
    const parentId = parent.top.linkId;
    await parent.close();
    const { stdout } = await run('vhdiinfo', [top]);
    expect(stdout).toMatch(/Disk type\s*:\s*Differential/);
    expect(stdout.toLowerCase()).toContain(parentId.toLowerCase());
    expect(stdout).toMatch(new RegExp(`Parent filename\\s*:.*level2\\.${format}`));
  });

  it('vhdimount exposes every level byte for byte', async () => {
    const mnt = join(dir, 'mnt');
    await mkdir(mnt, { recursive: true });
    await run('vhdimount', [built.files[3]!, mnt]);
    try {
      for (let level = 0; level < 4; level++) {
        const content = await readFile(join(mnt, `vhdi${level + 1}`));
        expect(firstDifference(content, built.expected[level]!), `vhdi${level + 1}`).toBe(-1);
      }
    } finally {
      await tryRun('umount', [mnt]);
    }
  });
});

describe.skipIf(gate.skip).each(['vhd', 'vhdx'] as const)('%s chain with single-sector runs', (format) => {
  it('sectors that fall through inside a bitmap byte come from the right layer', async () => {
    const { dir, cleanup } = await tempDir(`sub4k-${format}`);
    try {
      const built = await buildChain(dir, format, 2, { tag: 's', writes: SUB_4K_WRITES });
      const chain = await openChain(built.files[2]!);
      const content = await readChain(chain);
      await chain.close();
      expect(firstDifference(content, built.expected[2]!)).toBe(-1);
    } finally {
      await cleanup();
    }
  });
});
