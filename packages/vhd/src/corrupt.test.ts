import { copyFile, readdir, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isLabctlError, type LabctlError } from '@labctl/core/errors';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openChain } from './chain.js';
import { checkDisk } from './check.js';
import { flatten } from './flatten.js';
import { type BuiltChain, buildChain } from './testing/chains.js';
import {
  getVhdBatEntry,
  getVhdxBatEntry,
  patchBytes,
  patchVhdFooter,
  patchVhdHeader,
  patchVhdxHeaders,
  readBytes,
  setVhdBatEntry,
  setVhdxBatEntry,
} from './testing/damage.js';
import { tempDir } from './testing/fixtures.js';

/**
 * The damaged-input corpus: each file is a copy of a good disk (made by qemu-img or labctl) with one
 * thing broken. Each must be refused with its own code and a message that names the problem,
 * by `chain` (what every command opens) and by `check` (exit 1 with findings); `flatten` must
 * leave no output behind.
 */
const gate = requireTestbed('VHD damaged-input corpus', { commands: ['qemu-img'] });
const MiB = 1024 * 1024;

async function refusal(path: string): Promise<LabctlError> {
  try {
    const chain = await openChain(path);
    await chain.close();
  } catch (err) {
    if (isLabctlError(err)) return err;
    throw err;
  }
  throw new Error(`${path} was accepted`);
}

describe.skipIf(gate.skip)('damaged disks are refused, each with its own message', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let vhd: BuiltChain;
  let vhdx: BuiltChain;
  beforeAll(async () => {
    ({ dir, cleanup } = await tempDir('corrupt'));
    vhd = await buildChain(dir, 'vhd', 2, { tag: 'v' });
    vhdx = await buildChain(dir, 'vhdx', 2, { tag: 'x' });
  });
  afterAll(async () => cleanup?.());

  /** A copy of a good file to damage. */
  async function damaged(source: string, name: string): Promise<string> {
    const path = join(dir, name);
    await copyFile(source, path);
    return path;
  }

  const corpus: Array<{
    name: string;
    code: string;
    message: RegExp;
    make: () => Promise<string>;
  }> = [
    {
      name: 'VHD footer with a bad checksum',
      code: 'VHD_BAD_CHECKSUM',
      message: /footer checksum mismatch: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}/,
      make: async () => {
        const p = await damaged(vhd.files[0]!, 'bad-footer.vhd');
        const { size } = await stat(p);
        await patchBytes(p, size - 512 + 40, Buffer.from([0x7f])); // original size, checksum left stale
        return p;
      },
    },
    {
      name: 'VHD dynamic header with a bad checksum',
      code: 'VHD_BAD_CHECKSUM',
      message: /dynamic header checksum mismatch/,
      make: async () => {
        const p = await damaged(vhd.files[1]!, 'bad-header.vhd');
        await patchBytes(p, 512 + 64, Buffer.from('zz')); // parent name, checksum left stale
        return p;
      },
    },
    {
      name: 'VHD block allocation table running past the end of the file',
      code: 'VHD_BAT_TRUNCATED',
      message: /block allocation table truncated: 8 entries at offset \d+ need bytes up to \d+, the file has \d+/,
      make: async () => {
        const p = await damaged(vhd.files[0]!, 'bat-truncated.vhd');
        const { size } = await stat(p);
        await patchVhdHeader(p, (h) => {
          h.tableOffset = BigInt(size - 16);
        });
        return p;
      },
    },
    {
      name: 'VHD truncated in the middle (footer lost)',
      code: 'VHD_BAD_STRUCTURE',
      message: /no footer at the end of the file .*truncated/,
      make: async () => {
        const p = await damaged(vhd.files[0]!, 'truncated.vhd');
        await truncate(p, 3 * MiB);
        return p;
      },
    },
    {
      name: 'VHD BAT entry pointing past the end of the file',
      code: 'VHD_BLOCK_PAST_EOF',
      message: /block 0 points at offset \d+, past the end of the file/,
      make: async () => {
        const p = await damaged(vhd.files[0]!, 'bat-past-eof.vhd');
        await setVhdBatEntry(p, 0, 0x00fffff0);
        return p;
      },
    },
    {
      name: 'VHD with two blocks sharing file space',
      code: 'VHD_BLOCK_OVERLAP',
      message: /block \d \(offset \d+\) overlaps block \d \(offset \d+\)/,
      make: async () => {
        const p = await damaged(vhd.files[0]!, 'overlap.vhd');
        await setVhdBatEntry(p, 3, await getVhdBatEntry(p, 0));
        return p;
      },
    },
    {
      name: 'VHD claiming a 1 EiB disk',
      code: 'VHD_TOO_LARGE',
      message: /the footer claims \d+, more than the format allows/,
      make: async () => {
        const p = await damaged(vhd.files[0]!, 'huge.vhd');
        await patchVhdFooter(p, (f) => {
          f.currentSize = 1n << 60n;
        });
        return p;
      },
    },
    {
      name: 'VHD claiming a 2^28-entry BAT',
      code: 'VHD_TOO_LARGE',
      message: /block allocation table claims 268435456 entries/,
      make: async () => {
        const p = await damaged(vhd.files[0]!, 'huge-bat.vhd');
        await patchVhdHeader(p, (h) => {
          h.maxTableEntries = 1 << 28;
        });
        return p;
      },
    },
    {
      name: 'VHD child whose parent has another UUID',
      code: 'VHD_PARENT_MISMATCH',
      message:
        /parent link broken: expected UUID 12345678-0000-4000-8000-000000000000, but .*v-level1\.vhd has [0-9a-f-]{36}/,
      make: async () => {
        const p = await damaged(vhd.files[2]!, 'wrong-parent.vhd');
        await patchVhdHeader(p, (h) => {
          h.parentUuid = '12345678-0000-4000-8000-000000000000';
        });
        return p;
      },
    },
    {
      name: 'VHD chain that loops (A is the parent of B, B of A)',
      code: 'VHD_CHAIN_CYCLE',
      message: /the parent chain loops back to .*loop-b\.vhd: .*loop-b\.vhd -> .*loop-a\.vhd -> .*loop-b\.vhd/,
      make: async () => {
        // loop-a: a copy of level 1 pointing at loop-b; loop-b: a copy of level 2 pointing at loop-a.
        const a = await damaged(vhd.files[1]!, 'loop-a.vhd');
        const b = await damaged(vhd.files[2]!, 'loop-b.vhd');
        await patchVhdFooter(a, (f) => {
          f.uuid = '0000000a-0000-4000-8000-00000000000a';
        });
        await patchVhdFooter(b, (f) => {
          f.uuid = '0000000b-0000-4000-8000-00000000000b';
        });
        const noLocators = (h: Parameters<Parameters<typeof patchVhdHeader>[1]>[0]) => {
          for (const l of h.parentLocators)
            Object.assign(l, {
              platformCode: '\0\0\0\0',
              platformDataLength: 0,
              platformDataSpace: 0,
              platformDataOffset: 0n,
            });
        };
        await patchVhdHeader(a, (h) => {
          h.parentUuid = '0000000b-0000-4000-8000-00000000000b';
          h.parentUnicodeName = 'loop-b.vhd';
          noLocators(h);
        });
        await patchVhdHeader(b, (h) => {
          h.parentUuid = '0000000a-0000-4000-8000-00000000000a';
          h.parentUnicodeName = 'loop-a.vhd';
          noLocators(h);
        });
        return b;
      },
    },
    {
      name: 'VHDX with a dirty log',
      code: 'VHDX_DIRTY_LOG',
      message:
        /the VHDX log is not empty \(log 0badf00d-.*\): the disk was not closed cleanly and the log must be replayed/,
      make: async () => {
        const p = await damaged(vhdx.files[0]!, 'dirty.vhdx');
        await patchVhdxHeaders(p, (h) => Buffer.from('0df0ad0b0000004080000000000000aa', 'hex').copy(h, 48));
        return p;
      },
    },
    {
      name: 'VHDX whose both headers fail their CRC-32C',
      code: 'VHD_BAD_CHECKSUM',
      message:
        /both VHDX headers are invalid; checksum mismatch: stored header 1 checksum: stored 0x[0-9a-f]{8}, computed 0x[0-9a-f]{8}; header 2/,
      make: async () => {
        const p = await damaged(vhdx.files[0]!, 'bad-headers.vhdx');
        await patchVhdxHeaders(p, (h) => h.writeUInt16LE(7, 64), { keepChecksum: true });
        return p;
      },
    },
    {
      name: 'VHDX truncated inside its BAT',
      code: 'VHD_BAT_TRUNCATED',
      message:
        /block allocation table truncated: \d+ entries at offset 3145728 need bytes up to \d+, the file has 3145732/,
      make: async () => {
        const p = await damaged(vhdx.files[2]!, 'bat-truncated.vhdx');
        await truncate(p, 3 * MiB + 4);
        return p;
      },
    },
    {
      name: 'VHDX BAT entry pointing past the end of the file',
      code: 'VHD_BLOCK_PAST_EOF',
      message: /payload block 1 points at offset 1099511627776, past the end of the file/,
      make: async () => {
        const p = await damaged(vhdx.files[1]!, 'bat-past-eof.vhdx');
        await setVhdxBatEntry(p, 1, 6, 2 ** 40);
        return p;
      },
    },
    {
      name: 'VHDX with two payload blocks sharing file space',
      code: 'VHD_BLOCK_OVERLAP',
      message: /payload block \d+ \(offset \d+\) overlaps payload block \d+ \(offset \d+\)/,
      make: async () => {
        const p = await damaged(vhdx.files[0]!, 'overlap.vhdx');
        await setVhdxBatEntry(p, 5, 6, (await getVhdxBatEntry(p, 0)).offset);
        return p;
      },
    },
    {
      name: 'VHDX child whose parent has another DataWriteGuid',
      code: 'VHD_PARENT_MISMATCH',
      message: /parent link broken: expected DataWriteGuid [0-9a-f-]{36}, but .*x-level1\.vhdx has [0-9a-f-]{36}/,
      make: async () => {
        const p = await damaged(vhdx.files[2]!, 'wrong-parent.vhdx');
        // Flip one hex digit of the parent_linkage value inside the metadata region (2 MiB .. 3 MiB).
        const meta = await readBytes(p, 2 * MiB, MiB);
        const at = meta.indexOf(Buffer.from('{', 'utf16le'));
        const digit = meta.subarray(at + 2, at + 4).toString('utf16le');
        await patchBytes(p, 2 * MiB + at + 2, Buffer.from(digit === '0' ? '1' : '0', 'utf16le'));
        return p;
      },
    },
    {
      name: 'a file that is not a disk at all',
      code: 'VHD_NOT_A_DISK',
      message: /not a VHD or VHDX file/,
      make: async () => {
        const p = join(dir, 'notes.vhd');
        await writeFile(p, Buffer.alloc(4096, 'x'));
        return p;
      },
    },
  ];

  for (const c of corpus) {
    it(`${c.name}: ${c.code}`, async () => {
      const path = await c.make();
      const err = await refusal(path);
      expect(err.code, err.message).toBe(c.code);
      expect(err.message).toMatch(c.message);
      expect(err.hint).toBeTruthy();
      const check = await checkDisk(path);
      expect(check.ok).toBe(false);
      expect(check.findings.map((f) => f.code)).toContain(c.code);
      // Flatten refuses too, and leaves nothing behind.
      const before = await readdir(dir);
      await expect(flatten(path, join(dir, 'never.raw'))).rejects.toMatchObject({ code: c.code });
      expect(await readdir(dir)).toEqual(before);
    });
  }

  it('every message in the corpus is different', () => {
    expect(new Set(corpus.map((c) => c.message.source)).size).toBe(corpus.length);
  });

  it('a VHDX with one damaged header opens from the other; check warns but passes', async () => {
    const p = await damaged(vhdx.files[0]!, 'one-bad-header.vhdx');
    await patchVhdxHeaders(p, (h) => h.writeUInt16LE(7, 64), { keepChecksum: true, only: 1 });
    const chain = await openChain(p);
    await chain.close();
    const check = await checkDisk(p);
    expect(check.ok).toBe(true);
    expect(check.findings).toEqual([expect.objectContaining({ severity: 'warning', code: 'VHDX_HEADER_INVALID' })]);
  });

  it('check lists several problems of one file at once', async () => {
    const p = await damaged(vhd.files[0]!, 'many.vhd');
    await setVhdBatEntry(p, 0, 0x00fffff0);
    await setVhdBatEntry(p, 7, await getVhdBatEntry(p, 3));
    const check = await checkDisk(p);
    expect(check.findings.map((f) => f.code)).toEqual(['VHD_BLOCK_PAST_EOF', 'VHD_BLOCK_OVERLAP']);
  });
});
