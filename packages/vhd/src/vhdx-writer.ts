import { randomUUID } from 'node:crypto';
import { type FileHandle } from 'node:fs/promises';
import { alignUp, crc32c, encodeUtf16, guidToBytes, NIL_UUID, readExact, writeAll } from './binary.js';
import {
  MiB,
  VHDX_BLOCK,
  VHDX_DEFAULT_BLOCK_SIZE,
  VHDX_FILE_PARAMS_HAS_PARENT,
  VHDX_FILE_PARAMS_LEAVE_ALLOCATED,
  VHDX_HEADER_OFFSETS,
  VHDX_METADATA,
  VHDX_METADATA_FLAG,
  VHDX_PARENT_LOCATOR_TYPE,
  VHDX_REGION,
  VHDX_REGION_OFFSETS,
  VHDX_REGION_SIZE,
  VHDX_SECTOR_BITMAP_BLOCK_SIZE,
  VHDX_SIGNATURE,
} from './constants.js';
import { vhdError } from './errors.js';
import { bitmapEntryIndex, payloadEntryIndex, type VhdxGeometry, vhdxGeometry, VhdxImage } from './vhdx-image.js';
import { encodeVhdxHeader, encodeVhdxParentLocator } from './vhdx-structs.js';
import { checkRange, type CreateDiskOptions, type DiskWriter, parentPaths } from './writer-common.js';

/** The VHDX writer (fixed, dynamic, differencing): log, metadata, BAT and region tables. */
const VHDX_LOG_OFFSET = 1 * MiB;
const VHDX_LOG_LENGTH = 1 * MiB;
const VHDX_METADATA_OFFSET = 2 * MiB;
const VHDX_METADATA_LENGTH = 1 * MiB;
const VHDX_BAT_OFFSET = 3 * MiB;

export class VhdxWriter implements DiskWriter {
  private readonly sectorSize: number;
  private bitmapCache = new Map<number, Buffer>();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly geometry: VhdxGeometry,
    private readonly bat: Buffer,
    private nextFree: number,
    private readonly differencing: boolean,
    /** Set for new files: metadata, headers and region tables written by finish(). */
    private readonly layout: Buffer[] | undefined,
  ) {
    this.sectorSize = geometry.logicalSectorSize;
  }

  get virtualSize(): number {
    return this.geometry.virtualSize;
  }
  get blockSize(): number {
    return this.geometry.blockSize;
  }

  static async create(
    path: string,
    fh: FileHandle,
    options: CreateDiskOptions,
    sectorSize: number,
  ): Promise<VhdxWriter> {
    const parent = options.parent;
    if (parent && parent.format !== 'vhdx')
      throw vhdError('VHD_BAD_ARGUMENT', { what: 'a VHDX child needs a VHDX parent' });
    const size = parent ? parent.virtualSize : options.virtualSize;
    const blockSize = options.blockSize ?? (parent ? parent.blockSize : VHDX_DEFAULT_BLOCK_SIZE);
    const fixed = options.type === 'fixed' && !parent;
    const g = vhdxGeometry(size, blockSize, sectorSize, !!parent);
    const batLength = alignUp(g.batEntries * 8, MiB);
    const bat = Buffer.alloc(g.batEntries * 8);
    let next = VHDX_BAT_OFFSET + batLength;
    const setEntry = (index: number, state: number, offset: number) => writeBatEntry(bat, index, state, offset);
    if (parent) {
      // Sector-bitmap blocks are allocated up front (zeroed = every sector from the parent): readers
      // such as libvhdi consult them even for fully present blocks.
      for (let chunk = 0; chunk < g.bitmapBlocks; chunk++) {
        setEntry(bitmapEntryIndex(g, chunk), VHDX_BLOCK.fullyPresent, next);
        next += VHDX_SECTOR_BITMAP_BLOCK_SIZE;
      }
    }
    if (fixed) {
      for (let block = 0; block < g.dataBlocks; block++) {
        setEntry(payloadEntryIndex(g, block), VHDX_BLOCK.fullyPresent, next);
        next += blockSize;
      }
    }
    await fh.truncate(next);

    const dataWriteGuid = randomUUID();
    const headers = [1n, 2n].map((sequenceNumber) => {
      const h = encodeVhdxHeader({
        sequenceNumber,
        fileWriteGuid: randomUUID(),
        dataWriteGuid,
        logGuid: NIL_UUID,
        logVersion: 0,
        version: 1,
        logLength: VHDX_LOG_LENGTH,
        logOffset: BigInt(VHDX_LOG_OFFSET),
      });
      h.writeUInt32LE(crc32c(h), 4);
      return h;
    });
    const regions = Buffer.alloc(VHDX_REGION_SIZE);
    regions.write('regi', 0, 'latin1');
    regions.writeUInt32LE(2, 8);
    [
      [VHDX_REGION.bat, VHDX_BAT_OFFSET, batLength],
      [VHDX_REGION.metadata, VHDX_METADATA_OFFSET, VHDX_METADATA_LENGTH],
    ].forEach(([guid, offset, length], i) => {
      guidToBytes(guid as string, regions, 16 + i * 32);
      regions.writeBigUInt64LE(BigInt(offset as number), 16 + i * 32 + 16);
      regions.writeUInt32LE(length as number, 16 + i * 32 + 24);
      regions.writeUInt32LE(1, 16 + i * 32 + 28);
    });
    regions.writeUInt32LE(crc32c(regions), 4);

    const items: Array<[string, Buffer, number]> = [];
    const u32 = (v: number) => {
      const b = Buffer.alloc(4);
      b.writeUInt32LE(v);
      return b;
    };
    const params = Buffer.alloc(8);
    params.writeUInt32LE(blockSize, 0);
    params.writeUInt32LE(
      (fixed ? VHDX_FILE_PARAMS_LEAVE_ALLOCATED : 0) | (parent ? VHDX_FILE_PARAMS_HAS_PARENT : 0),
      4,
    );
    const vsize = Buffer.alloc(8);
    vsize.writeBigUInt64LE(BigInt(size));
    const page83 = Buffer.alloc(16);
    guidToBytes(randomUUID(), page83, 0);
    const required = VHDX_METADATA_FLAG.isRequired;
    const virtualDisk = VHDX_METADATA_FLAG.isVirtualDisk | required;
    items.push([VHDX_METADATA.fileParameters, params, required]);
    items.push([VHDX_METADATA.virtualDiskSize, vsize, virtualDisk]);
    items.push([VHDX_METADATA.page83Data, page83, virtualDisk]);
    items.push([VHDX_METADATA.logicalSectorSize, u32(sectorSize), virtualDisk]);
    items.push([VHDX_METADATA.physicalSectorSize, u32(4096), virtualDisk]);
    if (parent) {
      const paths = parentPaths(path, parent.path);
      const locator = encodeVhdxParentLocator(VHDX_PARENT_LOCATOR_TYPE, {
        parent_linkage: `{${parent.linkId}}`,
        relative_path: paths.relative,
        absolute_win32_path: paths.absolute,
      });
      items.push([VHDX_METADATA.parentLocator, locator, required]);
    }
    const metadata = Buffer.alloc(VHDX_METADATA_LENGTH);
    metadata.write('metadata', 0, 'latin1');
    metadata.writeUInt16LE(items.length, 10);
    let itemOffset = 64 * 1024;
    items.forEach(([guid, data, flags], i) => {
      const o = 32 + i * 32;
      guidToBytes(guid, metadata, o);
      metadata.writeUInt32LE(itemOffset, o + 16);
      metadata.writeUInt32LE(data.length, o + 20);
      metadata.writeUInt32LE(flags, o + 24);
      data.copy(metadata, itemOffset);
      itemOffset += alignUp(data.length, 8);
    });
    const ident = Buffer.alloc(64 * 1024);
    ident.write(VHDX_SIGNATURE, 0, 'latin1');
    encodeUtf16('labctl', 'le').copy(ident, 8);
    await writeAll(fh, ident, 0);
    const layout = [headers[0]!, headers[1]!, regions, metadata];
    return new VhdxWriter(path, fh, g, bat, next, !!parent, layout);
  }

  static reopen(image: VhdxImage): VhdxWriter {
    return new VhdxWriter(
      image.path,
      image.handle,
      image.geometry,
      Buffer.from(image.bat),
      alignUp(image.fileSize, MiB),
      image.type === 'differencing',
      undefined,
    );
  }

  private entry(index: number): { state: number; offset: number } {
    const lo = this.bat.readUInt32LE(index * 8);
    const hi = this.bat.readUInt32LE(index * 8 + 4);
    return { state: lo & 7, offset: hi * 2 ** 32 + (lo - (lo % MiB)) };
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data, this.sectorSize);
    const g = this.geometry;
    const bs = g.blockSize;
    let pos = offset;
    while (pos < offset + data.length) {
      const block = Math.floor(pos / bs);
      const blockStart = block * bs;
      const end = Math.min(offset + data.length, blockStart + bs);
      const piece = data.subarray(pos - offset, end - offset);
      const index = payloadEntryIndex(g, block);
      let { state, offset: fileOffset } = this.entry(index);
      const whole = pos === blockStart && end - blockStart === Math.min(bs, g.virtualSize - blockStart);
      if (state !== VHDX_BLOCK.fullyPresent && state !== VHDX_BLOCK.partiallyPresent) {
        fileOffset = this.nextFree;
        this.nextFree += bs;
        state = whole || !this.differencing ? VHDX_BLOCK.fullyPresent : VHDX_BLOCK.partiallyPresent;
        writeBatEntry(this.bat, index, state, fileOffset);
        if (!whole) await this.fh.truncate(this.nextFree);
      }
      await writeAll(this.fh, piece, fileOffset + (pos - blockStart));
      if (this.differencing)
        await this.markPresent(block, (pos - blockStart) / this.sectorSize, (end - pos) / this.sectorSize);
      pos = end;
    }
  }

  /** Sets the block's sector bits; a block whose every sector is present becomes FULLY_PRESENT. */
  private async markPresent(block: number, first: number, count: number): Promise<void> {
    const g = this.geometry;
    const bytes = g.blockSize / this.sectorSize / 8;
    const sb = this.entry(bitmapEntryIndex(g, Math.floor(block / g.chunkRatio)));
    const at = sb.offset + (block % g.chunkRatio) * bytes;
    let bitmap = this.bitmapCache.get(block);
    if (!bitmap) {
      bitmap = await readExact(this.fh, this.path, Number.MAX_SAFE_INTEGER, at, bytes, 'sector bitmap');
      if (this.bitmapCache.size > 64) this.bitmapCache = new Map();
      this.bitmapCache.set(block, bitmap);
    }
    if (first === 0 && count === bytes * 8) bitmap.fill(0xff);
    else for (let s = first; s < first + count; s++) bitmap[s >> 3]! |= 1 << (s & 7);
    await writeAll(this.fh, bitmap, at);
    const sectorsInBlock = Math.ceil(Math.min(g.blockSize, g.virtualSize - block * g.blockSize) / this.sectorSize);
    let all = true;
    for (let s = 0; s < sectorsInBlock && all; s++) all = (bitmap[s >> 3]! & (1 << (s & 7))) !== 0;
    if (all) {
      const index = payloadEntryIndex(g, block);
      writeBatEntry(this.bat, index, VHDX_BLOCK.fullyPresent, this.entry(index).offset);
    }
  }

  async finish(): Promise<void> {
    await writeAll(this.fh, this.bat, VHDX_BAT_OFFSET);
    if (this.layout) {
      const [header1, header2, regions, metadata] = this.layout as [Buffer, Buffer, Buffer, Buffer];
      await writeAll(this.fh, metadata, VHDX_METADATA_OFFSET);
      await writeAll(this.fh, regions, VHDX_REGION_OFFSETS[0]);
      await writeAll(this.fh, regions, VHDX_REGION_OFFSETS[1]);
      await writeAll(this.fh, header1, VHDX_HEADER_OFFSETS[0]);
      await writeAll(this.fh, header2, VHDX_HEADER_OFFSETS[1]);
    }
    await this.fh.truncate(Math.max(this.nextFree, VHDX_BAT_OFFSET + alignUp(this.bat.length, MiB)));
    await this.fh.datasync();
    await this.fh.close();
  }

  async abort(): Promise<void> {
    await this.fh.close();
  }
}

function writeBatEntry(bat: Buffer, index: number, state: number, offset: number): void {
  // File offset in MiB occupies bits 20..63; the offset is 1 MiB aligned so the low word is offset % 2^32 + state.
  bat.writeUInt32LE(((offset % 2 ** 32) + state) >>> 0, index * 8);
  bat.writeUInt32LE(Math.floor(offset / 2 ** 32), index * 8 + 4);
}
