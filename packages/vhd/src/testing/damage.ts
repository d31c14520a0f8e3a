import { open } from 'node:fs/promises';
import { crc32c } from '../binary.js';
import { VHDX_HEADER_OFFSETS, VHDX_HEADER_SIZE } from '../constants.js';
import {
  encodeVhdDynamicHeader,
  encodeVhdFooter,
  type VhdDynamicHeader,
  VhdDynamicHeaderToken,
  type VhdFooter,
  VhdFooterToken,
} from '../vhd-structs.js';

/** Ways to damage a copy of a disk for the corrupt-input corpus. Each writes in place. */

export async function patchBytes(path: string, offset: number, bytes: Buffer): Promise<void> {
  const fh = await open(path, 'r+');
  try {
    await fh.write(bytes, 0, bytes.length, offset);
  } finally {
    await fh.close();
  }
}

export async function readBytes(path: string, offset: number, length: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.alloc(length);
    await fh.read(buf, 0, length, offset);
    return buf;
  } finally {
    await fh.close();
  }
}

async function fileSize(path: string): Promise<number> {
  const fh = await open(path, 'r');
  try {
    return (await fh.stat()).size;
  } finally {
    await fh.close();
  }
}

/** Rewrites a VHD's footer (both copies when dynamic) with a valid checksum after `mutate`. */
export async function patchVhdFooter(path: string, mutate: (f: VhdFooter) => void): Promise<void> {
  const size = await fileSize(path);
  const footer = VhdFooterToken.get(await readBytes(path, size - 512, 512), 0);
  mutate(footer);
  const buf = encodeVhdFooter(footer);
  await patchBytes(path, size - 512, buf);
  if (footer.dataOffset !== 0xffffffffffffffffn) await patchBytes(path, 0, buf);
}

/** Rewrites a dynamic VHD's header with a valid checksum after `mutate`. */
export async function patchVhdHeader(path: string, mutate: (h: VhdDynamicHeader) => void): Promise<void> {
  const header = VhdDynamicHeaderToken.get(await readBytes(path, 512, 1024), 0);
  mutate(header);
  await patchBytes(path, 512, encodeVhdDynamicHeader(header));
}

/** Sets a VHD BAT entry (big-endian sector offset). */
export async function setVhdBatEntry(path: string, index: number, sector: number): Promise<void> {
  const header = VhdDynamicHeaderToken.get(await readBytes(path, 512, 1024), 0);
  const b = Buffer.alloc(4);
  b.writeUInt32BE(sector >>> 0);
  await patchBytes(path, Number(header.tableOffset) + index * 4, b);
}

export async function getVhdBatEntry(path: string, index: number): Promise<number> {
  const header = VhdDynamicHeaderToken.get(await readBytes(path, 512, 1024), 0);
  return (await readBytes(path, Number(header.tableOffset) + index * 4, 4)).readUInt32BE(0);
}

/** Applies `mutate` to both VHDX headers and re-seals their CRC-32C (unless `keepChecksum`). */
export async function patchVhdxHeaders(
  path: string,
  mutate: (header: Buffer) => void,
  options: { keepChecksum?: boolean; only?: number } = {},
): Promise<void> {
  for (const [slot, offset] of VHDX_HEADER_OFFSETS.entries()) {
    if (options.only !== undefined && options.only !== slot) continue;
    const buf = await readBytes(path, offset, VHDX_HEADER_SIZE);
    mutate(buf);
    if (!options.keepChecksum) {
      buf.writeUInt32LE(0, 4);
      buf.writeUInt32LE(crc32c(buf), 4);
    }
    await patchBytes(path, offset, buf);
  }
}

/** VHDX BAT entry i (the BAT region of labctl- and qemu-made files sits at 3 MiB... read it from the region table). */
export async function vhdxBatOffset(path: string): Promise<number> {
  const table = await readBytes(path, 192 * 1024, 64 * 1024);
  const count = table.readUInt32LE(8);
  for (let i = 0; i < count; i++) {
    const e = table.subarray(16 + i * 32, 48 + i * 32);
    // BAT region GUID 2DC27766-F623-4200-9D64-115E9BFD4A08, first 4 bytes little-endian.
    if (e.readUInt32LE(0) === 0x2dc27766) return Number(e.readBigUInt64LE(16));
  }
  throw new Error('no BAT region');
}

export async function setVhdxBatEntry(path: string, index: number, state: number, offset: number): Promise<void> {
  const bat = await vhdxBatOffset(path);
  const b = Buffer.alloc(8);
  b.writeUInt32LE(((offset % 2 ** 32) + state) >>> 0, 0);
  b.writeUInt32LE(Math.floor(offset / 2 ** 32), 4);
  await patchBytes(path, bat + index * 8, b);
}

export async function getVhdxBatEntry(path: string, index: number): Promise<{ state: number; offset: number }> {
  const b = await readBytes(path, (await vhdxBatOffset(path)) + index * 8, 8);
  const lo = b.readUInt32LE(0);
  return { state: lo & 7, offset: b.readUInt32LE(4) * 2 ** 32 + (lo - (lo % 2 ** 20)) };
}
