import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDifferencing } from './diff.js';
import { renderScan } from './format.js';
import { globPattern, scanDir } from './scan.js';
import { patchVhdFooter } from './testing/damage.js';
import { tempDir } from './testing/fixtures.js';
import { createDisk } from './writer.js';

/**
 * scan finds disks by content: a XenServer storage repository names its volumes VHD-<uuid> without
 * an extension (made here by labctl's own writer, as no Debian tool writes VHD children), and
 * `--pattern` narrows the names looked at; blktap's hidden flag shows as in `vhd-util scan -p`.
 */
describe('vhd scan by content', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  const base = 'VHD-0b1e7d4a-5f2c-4c8e-9a31-6d2f0e4b7c15';
  const child = 'VHD-9c3f2a10-7e4d-4b6a-8f05-1a2b3c4d5e6f';
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('scan'));
    const made = await createDisk(join(dir, base), { format: 'vhd', virtualSize: 8 * 1024 * 1024 });
    await made.finish();
    await createDifferencing(join(dir, base), join(dir, child));
    await patchVhdFooter(join(dir, base), (footer) => {
      footer.hidden = 1;
    });
    await writeFile(join(dir, 'notes.txt'), 'not a disk\n');
    await writeFile(join(dir, 'VHD-junk'), Buffer.alloc(4096, 7));
    await writeFile(join(dir, 'legacy.vhd'), Buffer.alloc(512));
  });
  afterAll(async () => cleanup?.());

  const byName = (result: Awaited<ReturnType<typeof scanDir>>) =>
    Object.fromEntries(result.disks.map((disk) => [disk.path.slice(dir.length + 1), disk.status]));

  it('finds extension-less VHDs by their footer, links the child to its parent, flags a damaged .vhd, skips other files', async () => {
    const result = await scanDir(dir);
    expect(byName(result)).toEqual({ [base]: 'ok', [child]: 'ok', 'legacy.vhd': 'unreadable' });
    const parent = result.disks.find((disk) => disk.path.endsWith(base))!;
    expect(parent.children).toEqual([join(dir, child)]);
    expect(parent.hidden).toBe(1);
    expect(renderScan(result)).toMatch(new RegExp(`${base}\\s+vhd dynamic .* hidden=1`));
  });

  it('--pattern looks only at matching names, and flags a match that is no disk', async () => {
    expect(byName(await scanDir(dir, { pattern: 'VHD-*' }))).toEqual({
      [base]: 'ok',
      [child]: 'ok',
      'VHD-junk': 'unreadable',
    });
    expect(byName(await scanDir(dir, { pattern: 'VHD-[!j]*' }))).toEqual({ [base]: 'ok', [child]: 'ok' });
  });

  it('globs: *, ?, classes and negated classes; regex characters are literal; an unclosed [ is refused', () => {
    expect(globPattern('VHD-*').test('VHD-abc')).toBe(true);
    expect(globPattern('VHD-*').test('xVHD-abc')).toBe(false);
    expect(globPattern('a?c').test('abc')).toBe(true);
    expect(globPattern('[!a]*').test('abc')).toBe(false);
    expect(globPattern('*.vhd').test('disk.vhd')).toBe(true);
    expect(globPattern('*.vhd').test('diskxvhd')).toBe(false);
    expect(globPattern('a+(b)').test('a+(b)')).toBe(true);
    expect(() => globPattern('VHD-[abc')).toThrow(/unclosed \[/);
  });
});
