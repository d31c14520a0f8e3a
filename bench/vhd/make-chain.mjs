#!/usr/bin/env node
// Benchmark inputs: a 2-level chain whose child overwrites part of its base, and the same content
// as one image. BASE (qemu-img from base.raw): every other 2 MiB block random, half the disk (1 GiB
// of a 2 GiB disk). CHILD (labctl diff + writer): new random data over every other one of those
// blocks (512 MiB), so half of the base's data is hidden under the child: a flatten that reads each
// block once, from the layer that holds it, reads 1 GiB. SRC.raw is the chain's content and
// SINGLE is qemu-img's single-level image of it. Usage: make-chain.mjs DIR [SIZE_MIB] [FORMAT]
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
// Every other data block is overwritten by the child.
const childData = dataBlocks.filter((_, index) => index % 2 === 1);
const overwritten = new Set(childData);
const buf = Buffer.alloc(block);
const src = join(dir, 'src.raw');
const baseRaw = join(dir, 'base.raw');
const srcFd = openSync(src, 'w');
const baseFd = openSync(baseRaw, 'w');
for (const b of dataBlocks) {
  randomFillSync(buf);
  writeSync(baseFd, buf, 0, block, b * block);
  // The chain's content: the child's new data where it writes, the base's elsewhere.
  if (overwritten.has(b)) randomFillSync(buf);
  writeSync(srcFd, buf, 0, block, b * block);
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
  JSON.stringify({
    src,
    base,
    child,
    single: join(dir, `single.${format}`),
    // The output's data, and what the chain stores (the base's hidden blocks included).
    dataBytes: dataBlocks.length * block,
    chainBytes: (dataBlocks.length + childData.length) * block,
  }),
);
