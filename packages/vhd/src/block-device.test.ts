import { appendFile, mkdir, readFile, rename, stat, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain, openDisk } from './chain.js';
import { checkDisk } from './check.js';
import { flatten } from './flatten.js';
import { scanDir } from './scan.js';
import { pattern, run, tempDir } from './testing/fixtures.js';
import { createDisk } from './writer.js';

const MiB = 1024 * 1024;
const SIZE = 16 * MiB;
/** LVM's default extent: a XenServer LVM SR rounds every VHD volume up to it. */
const EXTENT = 4 * MiB;

const gate = requireTestbed('VHD chains on block devices (loop devices)', { root: true, commands: ['losetup'] });

/**
 * A XenServer LVM SR as the admin of seed 001 meets it: each VHD is a logical volume named
 * `VHD-<uuid>`, rounded up to whole extents (so the VHD's footer is not at the end of the device and
 * blktap reads the copy at offset 0), reached through `/dev/VG_XenStorage-<sr>/VHD-<uuid>` links to
 * device-mapper nodes, the child's locator naming its parent's volume. Loop devices over padded
 * files stand in for the logical volumes: the same block-device reads, sizes from sysfs, links.
 */
describe.skipIf(gate.skip)('VHD chains on block devices (a XenServer LVM SR)', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let sr: string;
  const loops: string[] = [];
  const expected = Buffer.alloc(SIZE);

  /** The volume: the VHD padded to whole extents, attached as a loop device, linked from the SR directory. */
  const attach = async (file: string, name: string) => {
    const size = (await stat(file)).size;
    await appendFile(file, Buffer.alloc(Math.ceil(size / EXTENT) * EXTENT + EXTENT - size));
    const { stdout } = await run('losetup', ['--find', '--show', '--read-only', file]);
    loops.push(stdout.trim());
    await symlink(stdout.trim(), join(sr, name));
  };

  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('lvmsr'));
    sr = join(dir, 'VG_XenStorage-5f0c');
    await mkdir(sr);
    const base = await createDisk(join(dir, 'base.vhd'), { format: 'vhd', virtualSize: SIZE, layout: 'blktap' });
    for (const [offset, length] of [
      [0, 3 * MiB],
      [9 * MiB, 2 * MiB],
    ] as const) {
      const data = pattern(0, offset, length);
      await base.write(offset, data);
      data.copy(expected, offset);
    }
    await base.finish();
    await attach(join(dir, 'base.vhd'), 'VHD-base');
    // Written in the SR directory so its locators name `./VHD-base`, as blktap's LVM SR writes them;
    // then moved out to become a volume.
    const parent = await openDisk(join(sr, 'VHD-base'));
    const child = await createDisk(join(sr, 'VHD-child'), {
      format: 'vhd',
      virtualSize: SIZE,
      parent,
      layout: 'blktap',
    });
    await parent.close();
    for (const [offset, length] of [
      [MiB, MiB],
      [10 * MiB, 4 * MiB],
    ] as const) {
      const data = pattern(1, offset, length);
      await child.write(offset, data);
      data.copy(expected, offset);
    }
    await child.finish();
    await rename(join(sr, 'VHD-child'), join(dir, 'child.vhd'));
    await attach(join(dir, 'child.vhd'), 'VHD-child');
    // A decoy: the same padded file is only a damaged VHD as a regular file, not on a device.
    await run('cp', [join(dir, 'child.vhd'), join(dir, 'padded.vhd')]);
  });
  afterAll(async () => {
    for (const loop of loops) await run('losetup', ['--detach', loop]).catch(() => {});
    await cleanup?.();
  });

  it('info reads a volume: its size from sysfs, the footer copy at offset 0, no damage reported', async () => {
    const disk = await openDisk(join(sr, 'VHD-child'));
    try {
      const info = disk.info();
      expect(info).toMatchObject({ format: 'vhd', type: 'differencing', virtualSize: SIZE });
      expect(info.fileSize % EXTENT).toBe(0);
      expect(info.fileSize).toBe(
        Number((await readFile(`/sys/class/block/${loops[1]!.slice(5)}/size`, 'latin1')).trim()) * 512,
      );
    } finally {
      await disk.close();
    }
    expect(await checkDisk(join(sr, 'VHD-child'))).toMatchObject({ ok: true });
    const file = await checkDisk(join(dir, 'padded.vhd'));
    expect(file.ok).toBe(false);
    expect(JSON.stringify(file)).toMatch(/no footer at the end of the file/);
  });

  it('chain resolves the parent volume by its locator; flatten gives the data of both layers', async () => {
    const chain = await openChain(join(sr, 'VHD-child'));
    try {
      expect(chain.links.map((link) => [link.path, link.resolvedBy, link.timestampMismatch])).toEqual([
        [join(sr, 'VHD-child'), undefined, undefined],
        [join(sr, 'VHD-base'), 'relative', undefined],
      ]);
      expect(chain.links[1]!.realPath).toBe(loops[0]);
    } finally {
      await chain.close();
    }
    const out = join(dir, 'flat.raw');
    await flatten(join(sr, 'VHD-child'), out);
    expect((await readFile(out)).equals(expected)).toBe(true);
  });

  it('scan looks at devices only when --pattern names them, and shows the SR as one tree', async () => {
    expect((await scanDir(sr)).disks).toEqual([]);
    const scan = await scanDir(sr, { pattern: 'VHD-*' });
    expect(scan.roots).toEqual([join(sr, 'VHD-base')]);
    expect(scan.disks.map((d) => [d.path, d.status, d.children])).toEqual([
      [join(sr, 'VHD-base'), 'ok', [join(sr, 'VHD-child')]],
      [join(sr, 'VHD-child'), 'ok', []],
    ]);
  });
});
