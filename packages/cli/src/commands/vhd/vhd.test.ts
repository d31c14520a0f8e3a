import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { createDifferencing } from '@labctl/vhd/diff';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

/**
 * `labctl vhd ...` as a user runs it (the built binary): exit statuses, --json shapes, messages.
 * Fixture children are made with the library (`createDifferencing`); the commands under test run as the binary.
 */
const bin = resolve(import.meta.dirname, '../../../bin/run.js');
const exec = promisify(execFile);
/** Each case runs the binary several times; on a loaded 2-core machine one run can take seconds. */
const SLOW = { timeout: 120_000 };
const gate = requireTestbed('labctl vhd commands', { commands: ['qemu-img', 'qemu-io'] });

async function labctl(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await exec('node', [bin, ...args], { cwd });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe.skipIf(gate.skip)('labctl vhd', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labctl-vhd-cli-'));
    const base = join(dir, 'golden.vhd');
    await exec('qemu-img', ['create', '-q', '-f', 'vpc', '-o', 'subformat=dynamic,force_size=on', base, '16M']);
    await exec('qemu-io', ['-f', 'vpc', '-c', 'write -P 0x5a 1M 3M', base]);
  });
  afterAll(async () => rm(dir, { recursive: true, force: true }));

  it('diff makes a child; info and chain show the link; --json has the documented shape', SLOW, async () => {
    const diff = await labctl(['vhd', 'diff', join(dir, 'golden.vhd'), '-o', join(dir, 'vm1.vhd'), '--json']);
    expect(diff.code).toBe(0);
    const made = JSON.parse(diff.stdout);
    expect(made).toMatchObject({ format: 'vhd', virtualSize: 16 * 1024 * 1024 });

    const info = await labctl(['vhd', 'info', join(dir, 'vm1.vhd')]);
    expect(info.code).toBe(0);
    expect(info.stdout).toMatch(/Format\s+: VHD differencing/);
    expect(info.stdout).toMatch(new RegExp(`Parent UUID\\s+: ${made.parentId}`));
    expect(info.stdout).toMatch(/Parent name\s+: golden\.vhd/);
    expect(info.stdout).toMatch(/Checksums\s+: footer good, dynamicHeader good/);

    const chain = JSON.parse((await labctl(['vhd', 'chain', join(dir, 'vm1.vhd'), '--json'])).stdout);
    expect(chain.depth).toBe(2);
    expect(chain.links[1]).toMatchObject({ resolvedBy: 'relative', info: { type: 'dynamic', linkId: made.parentId } });
  });

  it(
    'a copied chain reads its copied parent; only --absolute-parent makes a copy follow the original',
    SLOW,
    async () => {
      const original = join(dir, 'orig');
      const copy = join(dir, 'copy');
      await mkdir(original);
      await mkdir(copy);
      await exec('cp', [join(dir, 'golden.vhd'), join(original, 'base.vhd')]);
      expect((await labctl(['vhd', 'diff', join(original, 'base.vhd'), '-o', join(original, 'child.vhd')])).code).toBe(
        0,
      );
      expect(
        (
          await labctl([
            'vhd',
            'diff',
            join(original, 'base.vhd'),
            '-o',
            join(original, 'pinned.vhd'),
            '--absolute-parent',
          ])
        ).code,
      ).toBe(0);
      for (const file of ['base.vhd', 'child.vhd', 'pinned.vhd'])
        await exec('cp', [join(original, file), join(copy, file)]);
      // The copy's parent gets other data than the original's (the parent UUID stays the same).
      await exec('qemu-io', ['-f', 'vpc', '-c', 'write -P 0x33 1M 1M', join(copy, 'base.vhd')]);

      const chain = JSON.parse((await labctl(['vhd', 'chain', join(copy, 'child.vhd'), '--json'])).stdout);
      expect(chain.links[1]).toMatchObject({ resolvedBy: 'relative', path: join(copy, 'base.vhd') });
      const flat = join(dir, 'copy-flat.vhd');
      expect((await labctl(['vhd', 'flatten', join(copy, 'child.vhd'), '-o', flat])).code).toBe(0);
      const read = await exec('qemu-io', ['-f', 'vpc', '-c', 'read -P 0x33 1M 1M', flat]);
      expect(read.stdout).not.toMatch(/Pattern verification failed/);
      expect(read.stdout).toMatch(/read 1048576\/1048576 bytes/);

      const pinned = JSON.parse((await labctl(['vhd', 'chain', join(copy, 'pinned.vhd'), '--json'])).stdout);
      expect(pinned.links[1]).toMatchObject({ resolvedBy: 'absolute', path: join(original, 'base.vhd') });
    },
  );

  it('a parent moved away: chain names where it looked (exit 1); --search finds it', SLOW, async () => {
    await createDifferencing(join(dir, 'golden.vhd'), join(dir, 'moved-child.vhd'));
    await mkdir(join(dir, 'elsewhere'));
    await exec('cp', [join(dir, 'golden.vhd'), join(dir, 'elsewhere', 'golden-copy.vhd')]);
    await exec('cp', [join(dir, 'moved-child.vhd'), join(dir, 'elsewhere', 'child.vhd')]);
    await mkdir(join(dir, 'store'));
    await rename(join(dir, 'elsewhere', 'golden-copy.vhd'), join(dir, 'store', 'golden.vhd'));
    // No absolute locator points back at the original: the copy looks beside itself, and says where.
    const missing = await labctl(['vhd', 'chain', join(dir, 'elsewhere', 'child.vhd')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(
      /^labctl: error: .*child\.vhd: parent golden\.vhd not found \(looked in: .*elsewhere\/golden\.vhd\)/m,
    );
    expect(missing.stderr).toMatch(/hint: .*--search DIR/);
    expect(missing.stderr).not.toMatch(/\s+at /);
    const found = JSON.parse(
      (await labctl(['vhd', 'chain', join(dir, 'elsewhere', 'child.vhd'), '--search', join(dir, 'store'), '--json']))
        .stdout,
    );
    expect(found.links[1]).toMatchObject({ resolvedBy: 'search', path: join(dir, 'store', 'golden.vhd') });
  });

  it('scan draws the tree and flags an orphan and its child', SLOW, async () => {
    const tree = join(dir, 'tree');
    await mkdir(tree);
    await exec('cp', [join(dir, 'golden.vhd'), join(tree, 'base.vhd')]);
    await createDifferencing(join(tree, 'base.vhd'), join(tree, 'a.vhd'));
    await createDifferencing(join(tree, 'a.vhd'), join(tree, 'a1.vhd'));
    await createDifferencing(join(tree, 'base.vhd'), join(tree, 'b.vhd'));
    await exec('cp', [join(tree, 'base.vhd'), join(tree, 'lost-parent.vhd')]);
    await createDifferencing(join(tree, 'lost-parent.vhd'), join(tree, 'orphan.vhd'));
    await createDifferencing(join(tree, 'orphan.vhd'), join(tree, 'orphan-child.vhd'));
    await rm(join(tree, 'lost-parent.vhd'));
    const human = await labctl(['vhd', 'scan', tree]);
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/^base\.vhd .*parent=none\n {2}a\.vhd .*\n {4}a1\.vhd .*\n {2}b\.vhd /m);
    expect(human.stdout).toMatch(/^orphan\.vhd .*ORPHAN: .*parent lost-parent\.vhd not found/m);
    expect(human.stdout).toMatch(/^ {2}orphan-child\.vhd .*ANCESTOR-MISSING/m);
    const json = JSON.parse((await labctl(['vhd', 'scan', tree, '--json'])).stdout);
    const status = Object.fromEntries(
      json.disks.map((d: { path: string; status: string }) => [d.path.split('/').pop(), d.status]),
    );
    expect(status).toEqual({
      'a.vhd': 'ok',
      'a1.vhd': 'ok',
      'b.vhd': 'ok',
      'base.vhd': 'ok',
      'orphan.vhd': 'orphan',
      'orphan-child.vhd': 'ancestor-missing',
    });
  });

  it('check: exit 0 when sound, exit 1 with the findings when damaged', SLOW, async () => {
    await createDifferencing(join(dir, 'golden.vhd'), join(dir, 'checked.vhd'));
    const good = await labctl(['vhd', 'check', join(dir, 'checked.vhd')]);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/checked\.vhd: ok \(vhd differencing\)/);
    const bad = join(dir, 'bad.vhd');
    await exec('cp', [join(dir, 'golden.vhd'), bad]);
    await exec('dd', ['if=/dev/zero', `of=${bad}`, 'bs=1', 'count=4', 'seek=1536', 'conv=notrunc']); // BAT entry 0 -> sector 0
    const human = await labctl(['vhd', 'check', bad]);
    expect(human.code).toBe(1);
    expect(human.stdout).toMatch(
      /ERROR VHD_BLOCK_OVERLAP: .*(block 0 \(offset 0\) overlaps footer copy|footer copy \(offset 0\) overlaps block 0)/,
    );
    const json = await labctl(['vhd', 'check', bad, '--json']);
    expect(json.code).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      ok: false,
      findings: [{ severity: 'error', code: 'VHD_BLOCK_OVERLAP' }],
    });
  });

  it(
    'flatten writes a standalone disk qemu-img agrees with, refuses to overwrite, and never leaves partial output',
    SLOW,
    async () => {
      const out = join(dir, 'flat.vhdx');
      await createDifferencing(join(dir, 'golden.vhd'), join(dir, 'to-flatten.vhd'));
      const run = await labctl(['vhd', 'flatten', join(dir, 'to-flatten.vhd'), '-o', out]);
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/flat\.vhdx: vhdx dynamic, 16\.0 MiB virtual, 4\.00 MiB of data from 2 layer\(s\)/);
      expect(run.stderr).toMatch(/flat\.vhdx: 100%/);
      const compare = await exec('qemu-img', ['compare', '-F', 'vhdx', '-f', 'vpc', join(dir, 'golden.vhd'), out]);
      expect(compare.stdout).toMatch(/Images are identical/);
      const again = await labctl(['vhd', 'flatten', join(dir, 'to-flatten.vhd'), '-o', out, '--json']);
      expect(again.code).toBe(2);
      expect(JSON.parse(again.stdout).error).toMatchObject({ code: 'VHD_OUTPUT_EXISTS' });
      const notADisk = join(dir, 'notes.txt');
      await writeFile(notADisk, 'hello');
      const before = await readdir(dir);
      const refused = await labctl(['vhd', 'flatten', notADisk, '-o', join(dir, 'never.vhd')]);
      expect(refused.code).toBe(1);
      expect(refused.stderr).toMatch(/^labctl: error: .*notes\.txt: not a VHD or VHDX file/m);
      expect(await readdir(dir)).toEqual(before);
    },
  );

  it('a missing input or output directory is bad input: exit 2, one line, no stack', SLOW, async () => {
    const missing = await labctl(['vhd', 'info', join(dir, 'nope.vhd')]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/^labctl: error: .*nope\.vhd: no such file$/m);
    expect(missing.stderr).not.toMatch(/internal error|\s+at /);
    const noDir = await labctl(['vhd', 'flatten', join(dir, 'golden.vhd'), '-o', join(dir, 'no-such-dir', 'x.vhd')]);
    expect(noDir.code).toBe(2);
    expect(noDir.stderr).toMatch(/the directory .*no-such-dir does not exist/);
  });

  it('--help has a summary and examples', SLOW, async () => {
    const help = await labctl(['vhd', 'flatten', '--help']);
    expect(help.stdout).toMatch(/Merge a differencing chain into a new standalone disk/);
    expect(help.stdout).toMatch(/EXAMPLES/);
  });
});
