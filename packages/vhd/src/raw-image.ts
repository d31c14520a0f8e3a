import { type FileHandle, open } from 'node:fs/promises';
import { sizeOf } from './device.js';
import { vhdError } from './errors.js';
import type { DiskImage, DiskInfo, Extent } from './image.js';

/**
 * A raw file as the parent of a VHD: what blktap's `vhd-util snapshot -m` makes (a differencing VHD
 * whose parent UUID is zero, its locators naming a raw image). Every byte of the file is data; the
 * virtual size is the file's size. It has no identity to check (no UUID), only its path.
 */
export class RawImage implements DiskImage {
  readonly format = 'raw' as const;
  readonly type = 'fixed' as const;
  readonly blockSize = 2 * 1024 * 1024;
  readonly linkId = '';
  readonly timestamp = undefined;
  readonly parent = undefined;
  readonly findings = [];

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly fileSize: number,
  ) {}

  get virtualSize(): number {
    return this.fileSize;
  }

  static async open(path: string): Promise<RawImage> {
    const fh = await open(path, 'r');
    try {
      const info = await fh.stat();
      if (!info.isFile() && !info.isBlockDevice())
        throw vhdError('VHD_BAD_ARGUMENT', { what: `${path}: a raw parent must be a regular file or a block device` });
      return new RawImage(path, fh, (await sizeOf(fh, path)).size);
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  async map(offset: number, length: number): Promise<Extent[]> {
    const end = Math.min(offset + length, this.fileSize);
    return end > offset ? [{ offset, length: end - offset, kind: 'data', fileOffset: offset }] : [];
  }

  async readStored(fileOffset: number, into: Buffer): Promise<void> {
    let done = 0;
    while (done < into.length) {
      const { bytesRead } = await this.fh.read(into, done, into.length - done, fileOffset + done);
      if (bytesRead === 0)
        throw vhdError('VHD_BLOCK_PAST_EOF', {
          path: this.path,
          what: 'raw data',
          index: 0,
          offset: fileOffset + done,
          size: this.fileSize,
        });
      done += bytesRead;
    }
  }

  info(): DiskInfo {
    return {
      path: this.path,
      format: 'raw',
      type: 'fixed',
      virtualSize: this.fileSize,
      blockSize: this.blockSize,
      logicalSectorSize: 512,
      physicalSectorSize: 512,
      fileSize: this.fileSize,
      allocatedSize: this.fileSize,
      allocatedBlocks: Math.ceil(this.fileSize / this.blockSize),
      totalBlocks: Math.ceil(this.fileSize / this.blockSize),
      uuid: '',
      linkId: '',
      checksums: {},
      warnings: [],
    };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}
