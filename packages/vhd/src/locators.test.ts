import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain, openDisk } from './chain.js';
import { VHD_LOCATOR_RELATIVE } from './constants.js';
import { createDifferencing } from './diff.js';
import { renderInfo } from './format.js';
import { patchBytes, patchVhdFooter, patchVhdHeader, readBytes } from './testing/damage.js';
import { tempDir } from './testing/fixtures.js';
import { createDisk } from './writer.js';

/**
 * What `vhd-util read` shows of a VHD, shown by `labctl vhd info` too: every parent locator with its
 * code and decoded path (the MacX `file://` URL blktap writes first included) and blktap's hidden
 * byte; and the locators `vhd diff` writes: the relative one only, unless asked for the absolute.
 */
describe('VHD locators and the hidden flag', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('locators'));
    const base = await createDisk(join(dir, 'base.vhd'), { format: 'vhd', virtualSize: 8 * 1024 * 1024 });
    await base.finish();
  });
  afterAll(async () => cleanup?.());

  const info = async (path: string) => {
    const disk = await openDisk(path);
    try {
      return disk.info();
    } finally {
      await disk.close();
    }
  };

  it('vhd diff writes the relative locator only; --absolute-parent adds the absolute one after it', async () => {
    await createDifferencing(join(dir, 'base.vhd'), join(dir, 'child.vhd'));
    expect((await info(join(dir, 'child.vhd'))).locators).toEqual([{ key: 'W2ru', path: '.\\base.vhd' }]);
    await createDifferencing(join(dir, 'base.vhd'), join(dir, 'pinned.vhd'), { absoluteParent: true });
    expect((await info(join(dir, 'pinned.vhd'))).locators).toEqual([
      { key: 'W2ru', path: '.\\base.vhd' },
      { key: 'W2ku', path: join(dir, 'base.vhd').replaceAll('/', '\\') },
    ]);
  });

  it('a MacX locator and the hidden byte are shown as vhd-util shows them; the chain still resolves', async () => {
    const child = join(dir, 'blktap.vhd');
    await createDifferencing(join(dir, 'base.vhd'), child);
    // Turn the W2ru locator into the MacX one blktap writes: a UTF-8 file:// URL, relative.
    await patchVhdHeader(child, (header) => {
      const locator = header.parentLocators.find((entry) => entry.platformCode === VHD_LOCATOR_RELATIVE)!;
      locator.platformCode = 'MacX';
      locator.platformDataLength = Buffer.byteLength('file://./base%20copy.vhd');
    });
    const header = await readBytes(child, 512, 1024);
    const offset = Number(header.readBigUInt64BE(576 + 16));
    await patchBytes(child, offset, Buffer.from('file://./base%20copy.vhd'));
    await patchVhdFooter(child, (footer) => {
      footer.hidden = 1;
    });
    const shown = await info(child);
    expect(shown.hidden).toBe(1);
    expect(shown.locators).toEqual([{ key: 'MacX', path: './base copy.vhd' }]);
    expect(renderInfo(shown)).toMatch(/^Hidden\s+: 1$/m);
    expect(renderInfo(shown)).toMatch(/^Parent locator MacX\s+: \.\/base copy\.vhd$/m);
    // labctl follows W2ku/W2ru; without them it finds the parent by the name the child records.
    const chain = await openChain(child);
    try {
      expect(chain.links.map((link) => link.resolvedBy)).toEqual([undefined, 'name']);
    } finally {
      await chain.close();
    }
    expect((await info(join(dir, 'base.vhd'))).hidden).toBe(0);
  });
});
