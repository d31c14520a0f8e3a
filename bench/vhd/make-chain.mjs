#!/usr/bin/env node
// Benchmark inputs: SRC.raw (SIZE MiB, every other 2 MiB block random = half the disk is data),
// BASE.vhd (qemu-img, the first half of the data blocks) and CHILD.vhd (labctl diff + writer, the
// second half), so the 2-level chain holds the same content as SRC.raw; SINGLE.vhd is qemu-img's
// single-level image of SRC.raw. Usage: make-chain.mjs DIR [SIZE_MIB] [FORMAT]
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { createDifferencing } from '@labctl/vhd/diff';
import { openDiskForWrite } from '@labctl/vhd/writer';

const [dir, sizeArg = '2048', format = 'vhd'] = process.argv.slice(2);
const MiB = 1024 * 1024;
const size = Number(sizeArg) * MiB;
const block = 2 * MiB;
const blocks = size / block;
const dataBlocks = [];
for (let b = 0; b < blocks; b += 2) dataBlocks.push(b);
const baseBlocks = new Set(dataBlocks.slice(0, dataBlocks.length / 2));
const buf = Buffer.alloc(block);
const src = join(dir, 'src.raw');
const baseRaw = join(dir, 'base.raw');
const srcFd = openSync(src, 'w');
const baseFd = openSync(baseRaw, 'w');
const childData = [];
for (const b of dataBlocks) {
  randomFillSync(buf);
  writeSync(srcFd, buf, 0, block, b * block);
  if (baseBlocks.has(b)) writeSync(baseFd, buf, 0, block, b * block);
  else childData.push(b);
}
ftruncateSync(srcFd, size);
ftruncateSync(baseFd, size);
closeSync(srcFd);
closeSync(baseFd);
const q =
  format === 'vhd'
    ? ['-O', 'vpc', '-o', 'subformat=dynamic,force_size=on']
    : ['-O', 'vhdx', '-o', 'subformat=dynamic,block_size=2M'];
const base = join(dir, `base.${format}`);
execFileSync('qemu-img', ['convert', '-f', 'raw', ...q, baseRaw, base]);
execFileSync('qemu-img', ['convert', '-f', 'raw', ...q, src, join(dir, `single.${format}`)]);
const child = join(dir, `child.${format}`);
await createDifferencing(base, child);
const writer = await openDiskForWrite(child);
const fd = openSync(src, 'r');
for (const b of childData) {
  const data = Buffer.alloc(block);
  readSync(fd, data, 0, block, b * block);
  await writer.write(b * block, data);
}
closeSync(fd);
await writer.finish();
console.log(
  JSON.stringify({ src, base, child, single: join(dir, `single.${format}`), dataBytes: dataBlocks.length * block }),
);
