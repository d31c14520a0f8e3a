import { stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain, openDisk } from './chain.js';
import { VHD_EPOCH_OFFSET, VHD_LOCATOR_RELATIVE } from './constants.js';
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

  const chainOf = async (path: string) => {
    const chain = await openChain(path);
    try {
      return chain.links.map((link) => link.timestampMismatch);
    } finally {
      await chain.close();
    }
  };

  it('parent timestamps by creator: Hyper-V/labctl record the footer timestamp, blktap the file mtime; only a real change warns', async () => {
    const base = join(dir, 'stamped.vhd');
    const made = await createDisk(base, { format: 'vhd', virtualSize: 8 * 1024 * 1024 });
    await made.finish();
    // A child as Hyper-V (and labctl) write it: the parent's footer timestamp. The file's mtime is not it.
    await createDifferencing(base, join(dir, 'win.vhd'));
    await utimes(base, new Date('2031-01-01T00:00:00Z'), new Date('2031-01-01T00:00:00Z'));
    expect(await chainOf(join(dir, 'win.vhd'))).toEqual([undefined, undefined]);

    // The same child as blktap's vhd-util snapshot writes it: creator tap, the parent file's mtime.
    const tap = join(dir, 'tap.vhd');
    await createDifferencing(base, tap);
    const mtime = Math.floor((await stat(base)).mtimeMs / 1000) - VHD_EPOCH_OFFSET;
    await patchVhdFooter(tap, (footer) => {
      footer.creatorApp = 'tap ';
      footer.creatorVersion = 0x00010003;
    });
    await patchVhdHeader(tap, (header) => {
      header.parentTimestamp = mtime;
    });
    // Under the old rule (footer timestamp) this warned on every blktap chain; it does not now.
    expect(await chainOf(tap)).toEqual([undefined, undefined]);
    // The parent written to after the snapshot (its mtime moves): that is a real change, and it warns.
    await utimes(base, new Date('2032-06-01T00:00:00Z'), new Date('2032-06-01T00:00:00Z'));
    expect(await chainOf(tap)).toEqual([
      undefined,
      { compared: 'file modification time', expected: '2031-01-01T00:00:00.000Z', found: '2032-06-01T00:00:00.000Z' },
    ]);
    // And a Hyper-V child warns when the parent's footer timestamp changed (a tool rewrote the parent).
    await patchVhdFooter(base, (footer) => {
      footer.timestamp += 3600;
    });
    expect((await chainOf(join(dir, 'win.vhd')))[1]).toMatchObject({ compared: 'footer timestamp' });
  });

  it('a footer early td-util marked hidden without a new checksum is accepted, as libvhd does; from another creator it is not', async () => {
    const path = join(dir, 'early.vhd');
    const made = await createDisk(path, { format: 'vhd', virtualSize: 8 * 1024 * 1024 });
    await made.finish();
    const size = (await stat(path)).size;
    const markHidden = async () => {
      await patchBytes(path, size - 512 + 85, Buffer.from([1]));
      await patchBytes(path, 85, Buffer.from([1]));
    };
    await patchVhdFooter(path, (footer) => {
      footer.creatorApp = 'tap ';
      footer.creatorVersion = 0x00010001;
    });
    await markHidden();
    expect(Object.values((await info(path)).checksums)).toEqual(['good', 'good']);
    expect((await info(path)).hidden).toBe(1);
    await patchVhdFooter(path, (footer) => {
      footer.hidden = 0;
      footer.creatorApp = 'win ';
    });
    await markHidden();
    await expect(openDisk(path)).rejects.toThrow(/checksum/);
  });
});
