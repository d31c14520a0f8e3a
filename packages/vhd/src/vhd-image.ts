import { type FileHandle, open } from 'node:fs/promises';
import { alignUp, hex32, NIL_UUID, readExact, safeNumber, utf16, vhdChecksum } from './binary.js';
import {
  MAX_BAT_BYTES,
  SECTOR,
  VHD_BLOCK_UNUSED,
  VHD_DISK_TYPE,
  VHD_DYNAMIC_COOKIE,
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_FOOTER_COOKIE,
  VHD_FOOTER_SIZE,
  VHD_LOCATOR_ABSOLUTE,
  VHD_LOCATOR_RELATIVE,
  VHD_MAX_SIZE,
} from './constants.js';
import { sizeOf } from './device.js';
import { vhdError } from './errors.js';
import {
  BitmapCache,
  bitmapRuns,
  type DiskImage,
  type DiskInfo,
  type DiskType,
  type Extent,
  type FileRange,
  type Finding,
  findOverlap,
  type ParentLink,
  ProblemSink,
  pushExtent,
} from './image.js';
import {
  VHD_FOOTER_CHECKSUM_AT,
  VHD_HEADER_CHECKSUM_AT,
  type VhdDynamicHeader,
  VhdDynamicHeaderToken,
  type VhdFooter,
  VhdFooterToken,
  vhdTimestampToDate,
} from './vhd-structs.js';

/** Bytes of the per-block sector bitmap, padded to a whole sector. */
export function vhdBitmapBytes(blockSize: number): number {
  return alignUp(Math.ceil(blockSize / SECTOR / 8), SECTOR);
}

/**
 * A VHD opened read-only: fixed, dynamic or differencing. Every size and offset from the file is
 * checked before it is used; the BAT (4 bytes a block) is the only per-disk table kept in memory.
 */
export class VhdImage implements DiskImage {
  readonly format = 'vhd' as const;
  readonly type: DiskType;
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly bitmapBytes: number;
  readonly linkId: string;
  readonly timestamp: number;
  readonly parent: ParentLink | undefined;
  private readonly bitmaps = new BitmapCache();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly fileSize: number,
    readonly footer: VhdFooter,
    readonly footerChecksumGood: boolean,
    readonly header: VhdDynamicHeader | undefined,
    readonly headerChecksumGood: boolean,
    /** Block allocation table: sector offsets, VHD_BLOCK_UNUSED for holes. */
    readonly bat: Uint32Array,
    readonly findings: Finding[],
    locatorPaths: Array<{ key: string; path: string }>,
  ) {
    this.type =
      footer.diskType === VHD_DISK_TYPE.fixed
        ? 'fixed'
        : footer.diskType === VHD_DISK_TYPE.dynamic
          ? 'dynamic'
          : 'differencing';
    this.virtualSize = Number(footer.currentSize);
    this.blockSize = header?.blockSize ?? 2 * 1024 * 1024;
    this.bitmapBytes = header ? vhdBitmapBytes(header.blockSize) : 0;
    this.linkId = footer.uuid;
    this.timestamp = footer.timestamp;
    this.parent = this.type === 'differencing' && header ? parentLinkOf(header, locatorPaths) : undefined;
    this.locators = locatorPaths;
  }

  /** Every parent locator, in the order stored, with its code and decoded path. */
  readonly locators: ReadonlyArray<{ key: string; path: string }>;

  /** The footer's creator application ("win ", "tap ", "qemu"): what its parent timestamp means. */
  get creatorApp(): string {
    return this.footer.creatorApp;
  }

  /** Opens and validates `path`. `strict: false` (for `check`) collects problems instead of throwing at the first. */
  static async open(path: string, options: { strict?: boolean; writable?: boolean } = {}): Promise<VhdImage> {
    const fh = await open(path, options.writable ? 'r+' : 'r');
    try {
      return await VhdImage.parse(path, fh, new ProblemSink(options.strict ?? true));
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private static async parse(path: string, fh: FileHandle, problems: ProblemSink): Promise<VhdImage> {
    const { size, device } = await sizeOf(fh, path);
    if (size < VHD_FOOTER_SIZE) throw vhdError('VHD_NOT_A_DISK', { path });
    const tail = await readExact(fh, path, size, size - VHD_FOOTER_SIZE, VHD_FOOTER_SIZE, 'footer');
    let footerBuf = tail;
    if (tail.toString('latin1', 0, 8) !== VHD_FOOTER_COOKIE) {
      // No footer at the end: a truncated (or extended) dynamic disk still has its copy at offset 0.
      const head = await readExact(fh, path, size, 0, VHD_FOOTER_SIZE, 'footer copy');
      if (head.toString('latin1', 0, 8) !== VHD_FOOTER_COOKIE) throw vhdError('VHD_NOT_A_DISK', { path });
      // A volume of a XenServer LVM SR is rounded up to whole LVM extents: its VHD ends before the
      // device does, and blktap reads the copy at offset 0 too. Only a file has lost its end.
      if (!device)
        problems.error(
          vhdError('VHD_BAD_STRUCTURE', {
            path,
            what: 'no footer at the end of the file (only the copy at offset 0): the file was truncated or has trailing data',
          }),
        );
      footerBuf = head;
    }
    const footer = VhdFooterToken.get(footerBuf, 0);
    const computed = vhdChecksum(footerBuf, VHD_FOOTER_CHECKSUM_AT);
    const footerChecksumGood = computed === footer.checksum || earlyTapHidden(footer, footerBuf);
    if (!footerChecksumGood) {
      problems.error(
        vhdError('VHD_BAD_CHECKSUM', {
          path,
          what: 'footer',
          stored: hex32(footer.checksum),
          computed: hex32(computed),
        }),
      );
    }
    if (!Object.values(VHD_DISK_TYPE).includes(footer.diskType as 2)) {
      throw vhdError('VHD_UNSUPPORTED', { path, what: `disk type ${footer.diskType}` });
    }
    const currentSize = footer.currentSize;
    if (currentSize > BigInt(VHD_MAX_SIZE)) {
      throw vhdError('VHD_TOO_LARGE', { path, what: 'the footer', claimed: currentSize, limit: VHD_MAX_SIZE });
    }
    const virtualSize = Number(currentSize);
    if (virtualSize % SECTOR !== 0) {
      problems.error(
        vhdError('VHD_BAD_STRUCTURE', { path, what: `virtual size ${virtualSize} is not a multiple of 512` }),
      );
    }

    if (footer.diskType === VHD_DISK_TYPE.fixed) {
      if (virtualSize + VHD_FOOTER_SIZE > size) {
        throw vhdError('VHD_TRUNCATED', {
          path,
          what: 'the fixed disk data',
          end: virtualSize + VHD_FOOTER_SIZE,
          size,
        });
      }
      if (footerBuf !== tail) throw vhdError('VHD_NOT_A_DISK', { path });
      return new VhdImage(
        path,
        fh,
        size,
        footer,
        footerChecksumGood,
        undefined,
        true,
        new Uint32Array(0),
        problems.findings,
        [],
      );
    }

    // Dynamic or differencing: footer copy at 0 must agree with the footer at the end.
    if (footerBuf === tail) {
      const copy = await readExact(fh, path, size, 0, VHD_FOOTER_SIZE, 'footer copy');
      if (!copy.equals(tail)) {
        problems.warning(
          'VHD_FOOTER_COPY_DIFFERS',
          `${path}: the footer copy at offset 0 differs from the footer at the end`,
        );
      }
    }
    const headerOffset = safeNumber(footer.dataOffset, path, 'dynamic header offset');
    const headerBuf = await readExact(fh, path, size, headerOffset, VHD_DYNAMIC_HEADER_SIZE, 'dynamic header');
    const header = VhdDynamicHeaderToken.get(headerBuf, 0);
    if (header.cookie !== VHD_DYNAMIC_COOKIE) {
      throw vhdError('VHD_BAD_STRUCTURE', { path, what: `no dynamic header ("cxsparse") at offset ${headerOffset}` });
    }
    const headerComputed = vhdChecksum(headerBuf, VHD_HEADER_CHECKSUM_AT);
    const headerChecksumGood = headerComputed === header.checksum;
    if (!headerChecksumGood) {
      problems.error(
        vhdError('VHD_BAD_CHECKSUM', {
          path,
          what: 'dynamic header',
          stored: hex32(header.checksum),
          computed: hex32(headerComputed),
        }),
      );
    }
    const bs = header.blockSize;
    if (bs < SECTOR * 8 || bs > 256 * 1024 * 1024 || (bs & (bs - 1)) !== 0) {
      throw vhdError('VHD_BAD_STRUCTURE', {
        path,
        what: `block size ${bs} is not a power of two between 4 KiB and 256 MiB`,
      });
    }
    const neededEntries = Math.ceil(virtualSize / bs);
    if (header.maxTableEntries * 4 > MAX_BAT_BYTES) {
      throw vhdError('VHD_TOO_LARGE', {
        path,
        what: 'the block allocation table',
        claimed: `${header.maxTableEntries} entries`,
        limit: `${MAX_BAT_BYTES / 4} entries`,
      });
    }
    if (header.maxTableEntries < neededEntries) {
      throw vhdError('VHD_BAD_STRUCTURE', {
        path,
        what: `the block allocation table has ${header.maxTableEntries} entries, but a ${virtualSize}-byte disk needs ${neededEntries}`,
      });
    }
    const tableOffset = safeNumber(header.tableOffset, path, 'BAT offset');
    const batBytes = neededEntries * 4;
    if (tableOffset + batBytes > size) {
      throw vhdError('VHD_BAT_TRUNCATED', {
        path,
        entries: neededEntries,
        offset: tableOffset,
        end: tableOffset + batBytes,
        size,
      });
    }
    const batBuf = await readExact(fh, path, size, tableOffset, batBytes, 'block allocation table');
    const bat = new Uint32Array(neededEntries);
    for (let i = 0; i < neededEntries; i++) bat[i] = batBuf.readUInt32BE(i * 4);

    // Every allocated block (bitmap + data) must lie inside the file and overlap nothing else.
    const bitmapBytes = vhdBitmapBytes(bs);
    const dataEnd = footerBuf === tail ? size - VHD_FOOTER_SIZE : size;
    const allocated: number[] = [];
    for (let i = 0; i < neededEntries; i++) {
      const entry = bat[i]!;
      if (entry === VHD_BLOCK_UNUSED) continue;
      const start = entry * SECTOR;
      if (start + bitmapBytes + bs > dataEnd) {
        problems.error(vhdError('VHD_BLOCK_PAST_EOF', { path, what: 'block', index: i, offset: start, size }));
        bat[i] = VHD_BLOCK_UNUSED;
        continue;
      }
      allocated.push(i);
    }
    const fixed: FileRange[] = [
      { start: 0, end: VHD_FOOTER_SIZE, label: 'footer copy' },
      { start: headerOffset, end: headerOffset + VHD_DYNAMIC_HEADER_SIZE, label: 'dynamic header' },
      { start: tableOffset, end: tableOffset + batBytes, label: 'block allocation table' },
    ];
    const locatorPaths: Array<{ key: string; path: string }> = [];
    if (footer.diskType === VHD_DISK_TYPE.differencing) {
      for (const [n, locator] of header.parentLocators.entries()) {
        if (locator.platformCode === '\0\0\0\0' || locator.platformDataLength === 0) continue;
        const offset = safeNumber(locator.platformDataOffset, path, 'parent locator offset');
        if (locator.platformDataLength > 64 * 1024 || offset + locator.platformDataLength > size) {
          problems.error(vhdError('VHD_BLOCK_PAST_EOF', { path, what: 'parent locator', index: n, offset, size }));
          continue;
        }
        fixed.push({
          start: offset,
          end: offset + locator.platformDataLength,
          label: `parent locator ${locator.platformCode}`,
        });
        const data = await readExact(
          fh,
          path,
          size,
          offset,
          locator.platformDataLength,
          `parent locator ${locator.platformCode}`,
        );
        // Every locator is shown (as `vhd-util read` does); the W2ku/W2ru ones are followed.
        locatorPaths.push({ key: locator.platformCode, path: decodeLocator(locator.platformCode, data) });
      }
      // A zero parent UUID is blktap's mark of a raw parent (vhd-util snapshot -m), not damage: the
      // parent is found by its locators and read as a raw file (chain.ts refuses a VHD/VHDX there).
    }
    const starts = new Float64Array(allocated.length);
    const lengths = new Float64Array(allocated.length).fill(bitmapBytes + bs);
    allocated.forEach((block, k) => {
      starts[k] = bat[block]! * SECTOR;
    });
    const overlap = findOverlap(fixed, { starts, lengths, label: (k) => `block ${allocated[k]}` });
    if (overlap) {
      problems.error(
        vhdError('VHD_BLOCK_OVERLAP', {
          path,
          first: overlap[0].label,
          firstOffset: overlap[0].start,
          second: overlap[1].label,
          secondOffset: overlap[1].start,
        }),
      );
    }
    return new VhdImage(
      path,
      fh,
      size,
      footer,
      footerChecksumGood,
      header,
      headerChecksumGood,
      bat,
      problems.findings,
      locatorPaths,
    );
  }

  async map(offset: number, length: number): Promise<Extent[]> {
    const extents: Extent[] = [];
    const end = Math.min(offset + length, this.virtualSize);
    if (this.type === 'fixed') {
      pushExtent(extents, { offset, length: end - offset, kind: 'data', fileOffset: offset });
      return extents;
    }
    const bs = this.blockSize;
    let pos = offset;
    while (pos < end) {
      const block = Math.floor(pos / bs);
      const blockStart = block * bs;
      const runEnd = Math.min(end, blockStart + bs);
      const entry = this.bat[block]!;
      if (entry === VHD_BLOCK_UNUSED) {
        pushExtent(extents, {
          offset: pos,
          length: runEnd - pos,
          kind: this.type === 'differencing' ? 'parent' : 'unallocated',
          fileOffset: 0,
        });
      } else {
        const dataStart = entry * SECTOR + this.bitmapBytes;
        if (this.type === 'dynamic') {
          // Dynamic disks: an allocated block is read whole (the bitmap only matters for differencing).
          pushExtent(extents, {
            offset: pos,
            length: runEnd - pos,
            kind: 'data',
            fileOffset: dataStart + (pos - blockStart),
          });
        } else {
          const bitmap = await this.bitmap(block, entry);
          const first = Math.floor((pos - blockStart) / SECTOR);
          const last = Math.ceil((runEnd - blockStart) / SECTOR);
          for (const run of bitmapRuns(bitmap, first, last - first, true)) {
            const s = Math.max(pos, blockStart + run.sector * SECTOR);
            const e = Math.min(runEnd, blockStart + (run.sector + run.count) * SECTOR);
            pushExtent(extents, {
              offset: s,
              length: e - s,
              kind: run.present ? 'data' : 'parent',
              fileOffset: run.present ? dataStart + (s - blockStart) : 0,
            });
          }
        }
      }
      pos = runEnd;
    }
    return extents;
  }

  private async bitmap(block: number, entry: number): Promise<Buffer> {
    const cached = this.bitmaps.get(block);
    if (cached) return cached;
    const bitmap = await readExact(
      this.fh,
      this.path,
      this.fileSize,
      entry * SECTOR,
      this.bitmapBytes,
      `sector bitmap of block ${block}`,
    );
    this.bitmaps.set(block, bitmap);
    return bitmap;
  }

  async readStored(fileOffset: number, into: Buffer): Promise<void> {
    await readExact(this.fh, this.path, this.fileSize, fileOffset, into.length, 'block data', into);
  }

  get allocatedBlocks(): number {
    let n = 0;
    for (const entry of this.bat) if (entry !== VHD_BLOCK_UNUSED) n++;
    return n;
  }

  info(): DiskInfo {
    const fixed = this.type === 'fixed';
    const allocatedBlocks = fixed ? Math.ceil(this.virtualSize / this.blockSize) : this.allocatedBlocks;
    return {
      path: this.path,
      format: 'vhd',
      type: this.type,
      virtualSize: this.virtualSize,
      blockSize: this.blockSize,
      logicalSectorSize: SECTOR,
      physicalSectorSize: SECTOR,
      fileSize: this.fileSize,
      allocatedSize: fixed ? this.virtualSize : Math.min(this.virtualSize, allocatedBlocks * this.blockSize),
      allocatedBlocks,
      totalBlocks: fixed ? allocatedBlocks : this.bat.length,
      uuid: this.footer.uuid,
      linkId: this.linkId,
      timestamp: vhdTimestampToDate(this.footer.timestamp).toISOString(),
      creator: `${this.footer.creatorApp.replaceAll('\0', '').trim()} ${this.footer.creatorVersion >>> 16}.${this.footer.creatorVersion & 0xffff}`,
      checksums: {
        footer: this.footerChecksumGood ? 'good' : 'bad',
        ...(this.header ? { dynamicHeader: this.headerChecksumGood ? ('good' as const) : ('bad' as const) } : {}),
      },
      ...(this.parent
        ? {
            parent: {
              name: this.parent.name,
              id: this.parent.id,
              idField: this.parent.idField,
              ...(this.parent.raw ? { raw: true } : {}),
              timestamp: vhdTimestampToDate(this.parent.timestamp ?? 0).toISOString(),
              locators: this.parent.locators,
            },
            locators: [...this.locators],
          }
        : {}),
      hidden: this.footer.hidden,
      warnings: this.findings.filter((f) => f.severity === 'warning').map((f) => f.message),
    };
  }

  /** The open handle, for the writer that extends this file (only ever on labctl's own new files). */
  get handle(): FileHandle {
    return this.fh;
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

/**
 * Early td-util set blktap's hidden byte without updating the footer checksum; libvhd accepts such a
 * footer when the checksum is right with the byte cleared and the creator is `tap` 0.1 or 1.1, and
 * so does labctl.
 */
function earlyTapHidden(footer: VhdFooter, footerBuf: Buffer): boolean {
  if (
    !footer.hidden ||
    !footer.creatorApp.startsWith('tap') ||
    ![0x00000001, 0x00010001].includes(footer.creatorVersion)
  )
    return false;
  const copy = Buffer.from(footerBuf);
  copy.writeUInt8(0, 85);
  return vhdChecksum(copy, VHD_FOOTER_CHECKSUM_AT) === footer.checksum;
}

/**
 * A locator's path as text: W2ku/W2ru are UTF-16LE Windows paths; MacX (what blktap writes first) is a
 * UTF-8 `file://` URL (`file://./parent.vhd`), shown as the path; the old `Mac ` alias is binary.
 */
export function decodeLocator(code: string, data: Buffer): string {
  if (code === VHD_LOCATOR_ABSOLUTE || code === VHD_LOCATOR_RELATIVE) return utf16(data, 0, data.length, 'le');
  if (code === 'MacX') {
    const text = data.toString('utf8').replace(/\0+$/, '');
    const path = text.replace(/^file:\/\//, '');
    try {
      return decodeURIComponent(path);
    } catch {
      return path;
    }
  }
  return `(${data.length} bytes, not a path)`;
}

function parentLinkOf(header: VhdDynamicHeader, locators: Array<{ key: string; path: string }>): ParentLink {
  const ordered = [
    ...locators.filter((l) => l.key === VHD_LOCATOR_ABSOLUTE).map((l) => ({ ...l, kind: 'absolute' as const })),
    ...locators.filter((l) => l.key === VHD_LOCATOR_RELATIVE).map((l) => ({ ...l, kind: 'relative' as const })),
  ];
  return {
    id: header.parentUuid,
    idField: 'UUID',
    ...(header.parentUuid === NIL_UUID ? { raw: true } : {}),
    timestamp: header.parentTimestamp,
    name: header.parentUnicodeName,
    locators: ordered,
  };
}
