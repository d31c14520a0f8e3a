import { type FileHandle, open } from 'node:fs/promises';
import { writeAll } from './binary.js';
import { SECTOR, VHD_DEFAULT_BLOCK_SIZE, VHD_MAX_SIZE, VHDX_MAX_SIZE, VHDX_SIGNATURE } from './constants.js';
import { vhdError } from './errors.js';
import { VhdImage } from './vhd-image.js';
import { encodeVhdFooter } from './vhd-structs.js';
import { VhdxImage } from './vhdx-image.js';
import { checkRange, type CreateDiskOptions, type DiskWriter } from './writer-common.js';
import { newVhdFooter, VhdDynamicWriter } from './vhd-writer.js';
import { VhdxWriter } from './vhdx-writer.js';

export type { CreateDiskOptions, DiskWriter, OutputFormat } from './writer-common.js';

/**
 * Writers for new disks: raw, VHD (fixed, dynamic, differencing) and VHDX (fixed, dynamic,
 * differencing). `write(offset, data)` takes sector-aligned ranges; a range that covers a whole
 * unallocated block goes out in one write; zero data is the caller's to skip (holes stay holes).
 * Metadata (BAT, footer, headers) is written by `finish()`. Writers are only ever used on new files
 * (or, in tests and benchmarks, on files a writer just made): never on a chain being read.
 */
export async function createDisk(path: string, options: CreateDiskOptions): Promise<DiskWriter> {
  const sectorSize = options.logicalSectorSize ?? SECTOR;
  if (
    !Number.isSafeInteger(options.virtualSize) ||
    options.virtualSize <= 0 ||
    options.virtualSize % sectorSize !== 0
  ) {
    throw vhdError('VHD_BAD_ARGUMENT', {
      what: `virtual size ${options.virtualSize} must be a positive multiple of ${sectorSize}`,
    });
  }
  // 'wx': never overwrite; the caller picked a fresh temp name or refused an existing output.
  const fh = await open(path, 'wx', 0o644);
  try {
    switch (options.format) {
      case 'raw':
        return new RawWriter(path, fh, options.virtualSize, false);
      case 'vhd':
        if (options.virtualSize > VHD_MAX_SIZE)
          throw vhdError('VHD_BAD_ARGUMENT', { what: `a VHD holds at most 2040 GiB; use --format vhdx` });
        if (options.type === 'fixed' && !options.parent) return new RawWriter(path, fh, options.virtualSize, true);
        return await VhdDynamicWriter.create(path, fh, options);
      case 'vhdx':
        if (options.virtualSize > VHDX_MAX_SIZE)
          throw vhdError('VHD_BAD_ARGUMENT', { what: 'a VHDX holds at most 64 TiB' });
        return await VhdxWriter.create(path, fh, options, sectorSize);
    }
  } catch (err) {
    await fh.close();
    throw err;
  }
}

/** Reopens a dynamic or differencing disk this library wrote, to add data (tests, benchmarks). */
export async function openDiskForWrite(path: string): Promise<DiskWriter> {
  const head = Buffer.alloc(8);
  const probe = await open(path, 'r');
  await probe.read(head, 0, 8, 0);
  await probe.close();
  if (head.toString('latin1') === VHDX_SIGNATURE)
    return VhdxWriter.reopen(await VhdxImage.open(path, { writable: true }));
  return VhdDynamicWriter.reopen(await VhdImage.open(path, { writable: true }));
}

/** Raw image, or a fixed VHD (raw data + footer). Holes are never written: the file stays sparse. */
class RawWriter implements DiskWriter {
  readonly blockSize = VHD_DEFAULT_BLOCK_SIZE;
  constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly virtualSize: number,
    private readonly vhdFooter: boolean,
  ) {}
  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data, SECTOR);
    await writeAll(this.fh, data, offset);
  }
  async finish(): Promise<void> {
    await this.fh.truncate(this.virtualSize);
    if (this.vhdFooter)
      await writeAll(this.fh, encodeVhdFooter(newVhdFooter(this.virtualSize, 'fixed')), this.virtualSize);
    await this.fh.datasync();
    await this.fh.close();
  }
  async abort(): Promise<void> {
    await this.fh.close();
  }
}
