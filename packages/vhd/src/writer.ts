import { randomUUID } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { basename, dirname, relative, resolve } from 'node:path';
import { alignUp, crc32c, encodeUtf16, guidToBytes, NIL_UUID, readExact, writeAll } from './binary.js';
import {
  MiB,
  SECTOR,
  VHD_BLOCK_UNUSED,
  VHD_CREATOR_APP,
  VHD_CREATOR_HOST_OS,
  VHD_DEFAULT_BLOCK_SIZE,
  VHD_DISK_TYPE,
  VHD_DYNAMIC_COOKIE,
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_FEATURES_RESERVED,
  VHD_FOOTER_COOKIE,
  VHD_FOOTER_SIZE,
  VHD_LOCATOR_ABSOLUTE,
  VHD_LOCATOR_RELATIVE,
  VHD_MAX_SIZE,
  VHD_NO_OFFSET,
  VHD_PARENT_LOCATOR_COUNT,
  VHD_VERSION,
  VHDX_BLOCK,
  VHDX_DEFAULT_BLOCK_SIZE,
  VHDX_FILE_PARAMS_HAS_PARENT,
  VHDX_FILE_PARAMS_LEAVE_ALLOCATED,
  VHDX_HEADER_OFFSETS,
  VHDX_MAX_SIZE,
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
import type { DiskImage } from './image.js';
import { vhdBitmapBytes, VhdImage } from './vhd-image.js';
import {
  encodeVhdDynamicHeader,
  encodeVhdFooter,
  type VhdFooter,
  vhdGeometry,
  vhdTimestampNow,
} from './vhd-structs.js';
import { bitmapEntryIndex, payloadEntryIndex, type VhdxGeometry, vhdxGeometry, VhdxImage } from './vhdx-image.js';
import { encodeVhdxHeader, encodeVhdxParentLocator } from './vhdx-structs.js';

/**
 * Writers for new disks: raw, VHD (fixed, dynamic, differencing) and VHDX (fixed, dynamic,
 * differencing). `write(offset, data)` takes sector-aligned ranges; a range that covers a whole
 * unallocated block goes out in one write; zero data is the caller's to skip (holes stay holes).
 * Metadata (BAT, footer, headers) is written by `finish()`. Writers are only ever used on new files
 * (or, in tests and benchmarks, on files a writer just made): never on a chain being read.
 */
export interface DiskWriter {
  readonly path: string;
  readonly virtualSize: number;
  /** Allocation unit: writes aligned to it and as large as it are the fast path. */
  readonly blockSize: number;
  write(offset: number, data: Buffer): Promise<void>;
  /** Writes the metadata, flushes to disk, closes. */
  finish(): Promise<void>;
  /** Closes without finishing (the caller removes the file). */
  abort(): Promise<void>;
}

export type OutputFormat = 'raw' | 'vhd' | 'vhdx';

export interface CreateDiskOptions {
  format: OutputFormat;
  type?: 'dynamic' | 'fixed';
  virtualSize: number;
  blockSize?: number;
  logicalSectorSize?: number;
  /** Makes a differencing disk on this (already opened) parent. */
  parent?: DiskImage;
}

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

function checkRange(w: DiskWriter, offset: number, data: Buffer, unit: number): void {
  if (offset % unit !== 0 || data.length % unit !== 0 || offset + data.length > w.virtualSize) {
    throw vhdError('VHD_BAD_ARGUMENT', {
      what: `write of ${data.length} bytes at ${offset} is not ${unit}-aligned or past the disk end`,
    });
  }
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

function newVhdFooter(size: number, type: keyof typeof VHD_DISK_TYPE, uuid = randomUUID()): VhdFooter {
  const g = vhdGeometry(size);
  return {
    cookie: VHD_FOOTER_COOKIE,
    features: VHD_FEATURES_RESERVED,
    version: VHD_VERSION,
    dataOffset: type === 'fixed' ? VHD_NO_OFFSET : BigInt(VHD_FOOTER_SIZE),
    timestamp: vhdTimestampNow(),
    creatorApp: VHD_CREATOR_APP,
    creatorVersion: 0x000a0000,
    creatorHostOs: VHD_CREATOR_HOST_OS,
    originalSize: BigInt(size),
    currentSize: BigInt(size),
    cylinders: g.cylinders,
    heads: g.heads,
    sectorsPerTrack: g.sectorsPerTrack,
    diskType: VHD_DISK_TYPE[type],
    checksum: 0,
    uuid,
    savedState: 0,
  };
}

/**
 * Where a child records its parent, in the Windows form readers expect: the absolute path with
 * backslashes (on Linux it has no drive letter) and the relative path (".\\base.vhdx"). libvhdi,
 * for one, takes the parent's file name after the last backslash of the absolute path.
 */
function parentPaths(childPath: string, parentPath: string): { absolute: string; relative: string; name: string } {
  const absolute = resolve(parentPath);
  const rel = relative(dirname(resolve(childPath)), absolute)
    .split('/')
    .join('\\');
  return {
    absolute: absolute.split('/').join('\\'),
    relative: rel.startsWith('..') ? rel : `.\\${rel}`,
    name: basename(absolute),
  };
}

class VhdDynamicWriter implements DiskWriter {
  private readonly bitmapBytes: number;
  private bitmapCache = new Map<number, Buffer>();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly virtualSize: number,
    readonly blockSize: number,
    private readonly footer: Buffer,
    private readonly headerOffset: number,
    private readonly header: Buffer | undefined,
    private readonly batOffset: number,
    private readonly bat: Uint32Array,
    private nextFree: number,
  ) {
    this.bitmapBytes = vhdBitmapBytes(blockSize);
  }

  static async create(path: string, fh: FileHandle, options: CreateDiskOptions): Promise<VhdDynamicWriter> {
    const parent = options.parent;
    if (parent && parent.format !== 'vhd')
      throw vhdError('VHD_BAD_ARGUMENT', { what: 'a VHD child needs a VHD parent' });
    const size = parent ? parent.virtualSize : options.virtualSize;
    const blockSize = options.blockSize ?? (parent ? parent.blockSize : VHD_DEFAULT_BLOCK_SIZE);
    const entries = Math.ceil(size / blockSize);
    const headerOffset = VHD_FOOTER_SIZE;
    const batOffset = headerOffset + VHD_DYNAMIC_HEADER_SIZE;
    let next = batOffset + alignUp(entries * 4, SECTOR);
    const locators: Array<{ code: string; data: Buffer; offset: number }> = [];
    const footer = newVhdFooter(size, parent ? 'differencing' : 'dynamic');
    let parentFields = { uuid: NIL_UUID, timestamp: 0, name: '' };
    if (parent) {
      const paths = parentPaths(path, parent.path);
      for (const [code, text] of [
        [VHD_LOCATOR_ABSOLUTE, paths.absolute],
        [VHD_LOCATOR_RELATIVE, paths.relative],
      ] as const) {
        const data = encodeUtf16(text, 'le');
        locators.push({ code, data, offset: next });
        next += alignUp(data.length, SECTOR);
      }
      parentFields = { uuid: parent.linkId, timestamp: parent.timestamp ?? 0, name: paths.name };
    }
    const header = encodeVhdDynamicHeader({
      cookie: VHD_DYNAMIC_COOKIE,
      dataOffset: VHD_NO_OFFSET,
      tableOffset: BigInt(batOffset),
      headerVersion: VHD_VERSION,
      maxTableEntries: entries,
      blockSize,
      checksum: 0,
      parentUuid: parentFields.uuid,
      parentTimestamp: parentFields.timestamp,
      parentUnicodeName: parentFields.name,
      parentLocators: Array.from({ length: VHD_PARENT_LOCATOR_COUNT }, (_, i) => {
        const l = locators[i];
        return l
          ? {
              platformCode: l.code,
              platformDataSpace: alignUp(l.data.length, SECTOR) / SECTOR,
              platformDataLength: l.data.length,
              platformDataOffset: BigInt(l.offset),
            }
          : { platformCode: '\0\0\0\0', platformDataSpace: 0, platformDataLength: 0, platformDataOffset: 0n };
      }),
    });
    for (const l of locators) await writeAll(fh, l.data, l.offset);
    const bat = new Uint32Array(entries).fill(VHD_BLOCK_UNUSED);
    // Blocks start 4 KiB-aligned after their bitmap sector would be ideal; sector alignment is what the format needs.
    return new VhdDynamicWriter(
      path,
      fh,
      size,
      blockSize,
      encodeVhdFooter(footer),
      headerOffset,
      header,
      batOffset,
      bat,
      next,
    );
  }

  static reopen(image: VhdImage): VhdDynamicWriter {
    if (image.type === 'fixed')
      throw vhdError('VHD_BAD_ARGUMENT', { what: `${image.path} is fixed; open it as raw data` });
    const footerBuf = encodeVhdFooter(image.footer);
    return new VhdDynamicWriter(
      image.path,
      image.handle,
      image.virtualSize,
      image.blockSize,
      footerBuf,
      Number(image.footer.dataOffset),
      undefined,
      Number(image.header!.tableOffset),
      Uint32Array.from(image.bat),
      image.fileSize - VHD_FOOTER_SIZE,
    );
  }

  async write(offset: number, data: Buffer): Promise<void> {
    checkRange(this, offset, data, SECTOR);
    const bs = this.blockSize;
    let pos = offset;
    while (pos < offset + data.length) {
      const block = Math.floor(pos / bs);
      const blockStart = block * bs;
      const end = Math.min(offset + data.length, blockStart + bs);
      const piece = data.subarray(pos - offset, end - offset);
      const whole = pos === blockStart && end - blockStart === Math.min(bs, this.virtualSize - blockStart);
      let entry = this.bat[block]!;
      if (entry === VHD_BLOCK_UNUSED) {
        entry = this.nextFree / SECTOR;
        this.bat[block] = entry;
        this.nextFree += this.bitmapBytes + bs;
        const bitmap = Buffer.alloc(this.bitmapBytes, whole ? 0xff : 0);
        if (whole) {
          await this.fh.writev([bitmap, piece], this.nextFree - this.bitmapBytes - bs);
          pos = end;
          continue;
        }
        // Partial: the rest of the block reads as zeros (dynamic) or from the parent (differencing, bits clear).
        await this.fh.truncate(this.nextFree);
        this.bitmapCache.set(block, bitmap);
      }
      const dataStart = entry * SECTOR + this.bitmapBytes;
      await writeAll(this.fh, piece, dataStart + (pos - blockStart));
      const bitmap = await this.bitmap(block, entry);
      for (let s = (pos - blockStart) / SECTOR; s < (end - blockStart) / SECTOR; s++)
        bitmap[s >> 3]! |= 0x80 >> (s & 7);
      await writeAll(this.fh, bitmap, entry * SECTOR);
      pos = end;
    }
  }

  private async bitmap(block: number, entry: number): Promise<Buffer> {
    let bitmap = this.bitmapCache.get(block);
    if (!bitmap) {
      bitmap = await readExact(
        this.fh,
        this.path,
        Number.MAX_SAFE_INTEGER,
        entry * SECTOR,
        this.bitmapBytes,
        'sector bitmap',
      );
      this.bitmapCache.set(block, bitmap);
      if (this.bitmapCache.size > 256) this.bitmapCache = new Map();
    }
    return bitmap;
  }

  async finish(): Promise<void> {
    const batBuf = Buffer.alloc(alignUp(this.bat.length * 4, SECTOR), 0xff);
    for (const [i, entry] of this.bat.entries()) batBuf.writeUInt32BE(entry, i * 4);
    await writeAll(this.fh, batBuf, this.batOffset);
    if (this.header) await writeAll(this.fh, this.header, this.headerOffset);
    await writeAll(this.fh, this.footer, 0);
    await writeAll(this.fh, this.footer, this.nextFree);
    await this.fh.truncate(this.nextFree + VHD_FOOTER_SIZE);
    await this.fh.datasync();
    await this.fh.close();
  }

  async abort(): Promise<void> {
    await this.fh.close();
  }
}

/** VHDX layout as qemu and Hyper-V write it: headers, log at 1 MiB, metadata at 2 MiB, BAT at 3 MiB, blocks after. */
const VHDX_LOG_OFFSET = 1 * MiB;
const VHDX_LOG_LENGTH = 1 * MiB;
const VHDX_METADATA_OFFSET = 2 * MiB;
const VHDX_METADATA_LENGTH = 1 * MiB;
const VHDX_BAT_OFFSET = 3 * MiB;

class VhdxWriter implements DiskWriter {
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
