import { randomUUID } from 'node:crypto';
import { type FileHandle, stat } from 'node:fs/promises';
import { alignUp, encodeUtf16, NIL_UUID, readExact, writeAll } from './binary.js';
import {
  SECTOR,
  VHD_BLOCK_UNUSED,
  VHD_CREATOR_APP,
  VHD_CREATOR_HOST_OS,
  VHD_DEFAULT_BLOCK_SIZE,
  VHD_DISK_TYPE,
  VHD_DYNAMIC_COOKIE,
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_EPOCH_OFFSET,
  VHD_FEATURES_RESERVED,
  VHD_FOOTER_COOKIE,
  VHD_FOOTER_SIZE,
  VHD_LOCATOR_ABSOLUTE,
  VHD_LOCATOR_RELATIVE,
  VHD_NO_OFFSET,
  VHD_PARENT_LOCATOR_COUNT,
  VHD_VERSION,
} from './constants.js';
import { vhdError } from './errors.js';
import { vhdBitmapBytes, VhdImage } from './vhd-image.js';
import {
  encodeVhdDynamicHeader,
  encodeVhdFooter,
  type VhdFooter,
  vhdGeometry,
  vhdTimestampNow,
} from './vhd-structs.js';
import { checkRange, type CreateDiskOptions, type DiskWriter, parentPaths } from './writer-common.js';

/** The VHD writer (dynamic and differencing; a fixed VHD is the raw writer plus a footer): BAT, bitmaps, footer. */
export function newVhdFooter(size: number, type: keyof typeof VHD_DISK_TYPE, uuid = randomUUID()): VhdFooter {
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
    hidden: 0,
  };
}

export class VhdDynamicWriter implements DiskWriter {
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
    const blktap = options.layout === 'blktap';
    if (parent && parent.format !== 'vhd' && !(parent.format === 'raw' && blktap))
      throw vhdError('VHD_BAD_ARGUMENT', { what: 'a VHD child needs a VHD parent (or, blktap layout, a raw one)' });
    const size = parent ? parent.virtualSize : options.virtualSize;
    const blockSize = options.blockSize ?? (parent ? parent.blockSize : VHD_DEFAULT_BLOCK_SIZE);
    const entries = Math.ceil(size / blockSize);
    const headerOffset = VHD_FOOTER_SIZE;
    const batOffset = headerOffset + VHD_DYNAMIC_HEADER_SIZE;
    let next = batOffset + alignUp(entries * 4, SECTOR);
    const locators: Array<{ code: string; data: Buffer; offset: number }> = [];
    const footer = newVhdFooter(size, parent ? 'differencing' : 'dynamic');
    if (blktap) {
      footer.creatorApp = 'tap ';
      footer.creatorVersion = 0x00010003;
    }
    let parentFields = { uuid: NIL_UUID, timestamp: 0, name: '' };
    if (parent) {
      const paths = parentPaths(path, parent.path);
      const entries: Array<readonly [string, Buffer]> = [];
      if (blktap) {
        // As libvhd's vhd_write_parent_locators: MacX (a UTF-8 file:// URL), W2KU and W2RU, all three
        // the parent's path relative to the child, in POSIX form.
        const relative = paths.relative.replaceAll('\\', '/');
        entries.push(['MacX', Buffer.from(`file://${relative}`, 'utf8')]);
        entries.push([VHD_LOCATOR_ABSOLUTE, encodeUtf16(relative, 'le')]);
        entries.push([VHD_LOCATOR_RELATIVE, encodeUtf16(relative, 'le')]);
      } else {
        // The relative locator first: vhd-util and qemu follow the first locator that resolves, so a
        // chain copied elsewhere finds its copied parent. An absolute one only when asked for.
        entries.push([VHD_LOCATOR_RELATIVE, encodeUtf16(paths.relative, 'le')]);
        if (options.absoluteParent) entries.push([VHD_LOCATOR_ABSOLUTE, encodeUtf16(paths.absolute, 'le')]);
      }
      for (const [code, data] of entries) {
        locators.push({ code, data, offset: next });
        next += alignUp(data.length, SECTOR);
      }
      // blktap records the parent file's modification time, and a zero UUID for a raw parent.
      const timestamp = blktap
        ? Math.floor((await stat(parent.path)).mtimeMs / 1000) - VHD_EPOCH_OFFSET
        : (parent.timestamp ?? 0);
      parentFields = { uuid: parent.format === 'raw' ? NIL_UUID : parent.linkId, timestamp, name: paths.name };
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
              // blktap writes data_space in bytes, the specification (and Hyper-V) in sectors.
              platformDataSpace: alignUp(l.data.length, SECTOR) / (blktap ? 1 : SECTOR),
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
