import { type FileHandle, open } from 'node:fs/promises';
import { crc32cWithHole, guidFromBytes, hex32, NIL_UUID, readExact, safeNumber } from './binary.js';
import {
  MAX_BAT_BYTES,
  MiB,
  VHDX_ALIGNMENT,
  VHDX_BLOCK,
  VHDX_FILE_PARAMS_HAS_PARENT,
  VHDX_FILE_PARAMS_LEAVE_ALLOCATED,
  VHDX_HEADER_OFFSETS,
  VHDX_HEADER_SIGNATURE,
  VHDX_HEADER_SIZE,
  VHDX_MAX_SIZE,
  VHDX_METADATA,
  VHDX_METADATA_MAX_ENTRIES,
  VHDX_METADATA_SIGNATURE,
  VHDX_METADATA_TABLE_SIZE,
  VHDX_PARENT_LOCATOR_TYPE,
  VHDX_REGION,
  VHDX_REGION_MAX_ENTRIES,
  VHDX_REGION_OFFSETS,
  VHDX_REGION_SIGNATURE,
  VHDX_REGION_SIZE,
  VHDX_SECTOR_BITMAP_BLOCK_SIZE,
  VHDX_SECTORS_PER_BITMAP_BLOCK,
  VHDX_SIGNATURE,
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
  decodeVhdxParentLocator,
  VHDX_CHECKSUM_AT,
  type VhdxHeader,
  VhdxHeaderToken,
  type VhdxMetadataEntry,
  VhdxMetadataEntryToken,
  VhdxMetadataTableHeaderToken,
  type VhdxRegionEntry,
  VhdxRegionEntryToken,
  VhdxRegionTableHeaderToken,
} from './vhdx-structs.js';

export interface VhdxGeometry {
  blockSize: number;
  logicalSectorSize: number;
  virtualSize: number;
  /** Payload blocks per sector-bitmap block. */
  chunkRatio: number;
  dataBlocks: number;
  bitmapBlocks: number;
  batEntries: number;
}

/** BAT sizing from the specification (2.5.1): payload entries interleaved with one sector-bitmap entry per chunk. */
export function vhdxGeometry(
  virtualSize: number,
  blockSize: number,
  logicalSectorSize: number,
  hasParent: boolean,
): VhdxGeometry {
  const chunkRatio = (VHDX_SECTORS_PER_BITMAP_BLOCK * logicalSectorSize) / blockSize;
  const dataBlocks = Math.ceil(virtualSize / blockSize);
  const bitmapBlocks = Math.ceil(dataBlocks / chunkRatio);
  const batEntries = hasParent
    ? bitmapBlocks * (chunkRatio + 1)
    : dataBlocks + Math.floor((dataBlocks - 1) / chunkRatio);
  return {
    blockSize,
    logicalSectorSize,
    virtualSize,
    chunkRatio,
    dataBlocks,
    bitmapBlocks,
    batEntries: Math.max(batEntries, 0),
  };
}

export function payloadEntryIndex(g: VhdxGeometry, block: number): number {
  return block + Math.floor(block / g.chunkRatio);
}

export function bitmapEntryIndex(g: VhdxGeometry, chunk: number): number {
  return chunk * (g.chunkRatio + 1) + g.chunkRatio;
}

interface MetadataItems {
  blockSize: number;
  flags: number;
  virtualSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  page83: string;
  parentLocator: Record<string, string> | undefined;
}

/**
 * A VHDX opened read-only. Reads the current header (valid CRC-32C, highest sequence number), the
 * region table, the metadata and the BAT; refuses a file whose log is not empty (not replayed here).
 */
export class VhdxImage implements DiskImage {
  readonly format = 'vhdx' as const;
  readonly type: DiskType;
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly linkId: string;
  readonly timestamp = undefined;
  readonly parent: ParentLink | undefined;
  private readonly bitmaps = new BitmapCache();

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    readonly fileSize: number,
    readonly header: VhdxHeader,
    readonly headerSlot: number,
    readonly checksums: Record<string, 'good' | 'bad'>,
    readonly regions: { bat: VhdxRegionEntry; metadata: VhdxRegionEntry },
    readonly meta: MetadataItems,
    readonly geometry: VhdxGeometry,
    /** Raw BAT, 8 bytes an entry (state in bits 0-2, file offset in MiB in bits 20-63). */
    readonly bat: Buffer,
    readonly findings: Finding[],
  ) {
    const hasParent = (meta.flags & VHDX_FILE_PARAMS_HAS_PARENT) !== 0;
    this.type = hasParent ? 'differencing' : meta.flags & VHDX_FILE_PARAMS_LEAVE_ALLOCATED ? 'fixed' : 'dynamic';
    this.virtualSize = meta.virtualSize;
    this.blockSize = meta.blockSize;
    this.linkId = header.dataWriteGuid;
    this.parent = hasParent ? parentLinkOf(meta.parentLocator ?? {}) : undefined;
  }

  static async open(path: string, options: { strict?: boolean; writable?: boolean } = {}): Promise<VhdxImage> {
    const fh = await open(path, options.writable ? 'r+' : 'r');
    try {
      return await VhdxImage.parse(path, fh, new ProblemSink(options.strict ?? true));
    } catch (err) {
      await fh.close();
      throw err;
    }
  }

  private static async parse(path: string, fh: FileHandle, problems: ProblemSink): Promise<VhdxImage> {
    const { size } = await sizeOf(fh, path);
    const ident = await readExact(fh, path, size, 0, 8, 'file identifier');
    if (ident.toString('latin1') !== VHDX_SIGNATURE) throw vhdError('VHD_NOT_A_DISK', { path });
    const checksums: Record<string, 'good' | 'bad'> = {};

    // Headers: the valid one with the highest sequence number is current.
    const headers: Array<{ slot: number; header: VhdxHeader }> = [];
    const headerProblems: string[] = [];
    for (const [slot, offset] of VHDX_HEADER_OFFSETS.entries()) {
      const name = `header ${slot + 1}`;
      if (offset + VHDX_HEADER_SIZE > size) {
        headerProblems.push(`${name} missing (file ends at ${size})`);
        checksums[name] = 'bad';
        continue;
      }
      const buf = await readExact(fh, path, size, offset, VHDX_HEADER_SIZE, name);
      const header = VhdxHeaderToken.get(buf, 0);
      const computed = crc32cWithHole(buf, VHDX_CHECKSUM_AT);
      const good = header.signature === VHDX_HEADER_SIGNATURE && computed === header.checksum;
      checksums[name] = good ? 'good' : 'bad';
      if (good) headers.push({ slot, header });
      else headerProblems.push(`${name} checksum: stored ${hex32(header.checksum)}, computed ${hex32(computed)}`);
    }
    if (headers.length === 0) {
      throw vhdError('VHD_BAD_CHECKSUM', {
        path,
        what: 'both VHDX headers are invalid;',
        stored: headerProblems.join('; '),
        computed: '-',
      });
    }
    for (const p of headerProblems) problems.warning('VHDX_HEADER_INVALID', `${path}: ${p} (the other header is used)`);
    const current = headers.reduce((a, b) => (b.header.sequenceNumber > a.header.sequenceNumber ? b : a));
    const header = current.header;
    if (header.version !== 1) throw vhdError('VHD_UNSUPPORTED', { path, what: `VHDX version ${header.version}` });
    if (header.logGuid !== NIL_UUID) throw vhdError('VHDX_DIRTY_LOG', { path, logGuid: header.logGuid });

    // Region table: the first valid copy.
    let regionEntries: VhdxRegionEntry[] | undefined;
    for (const [slot, offset] of VHDX_REGION_OFFSETS.entries()) {
      const name = `region table ${slot + 1}`;
      if (offset + VHDX_REGION_SIZE > size) {
        checksums[name] = 'bad';
        continue;
      }
      const buf = await readExact(fh, path, size, offset, VHDX_REGION_SIZE, name);
      const table = VhdxRegionTableHeaderToken.get(buf, 0);
      const computed = crc32cWithHole(buf, VHDX_CHECKSUM_AT);
      const good =
        table.signature === VHDX_REGION_SIGNATURE &&
        computed === table.checksum &&
        table.entryCount <= VHDX_REGION_MAX_ENTRIES;
      checksums[name] = good ? 'good' : 'bad';
      if (!good) {
        const message = `${path}: ${name} checksum: stored ${hex32(table.checksum)}, computed ${hex32(computed)}`;
        problems.warning('VHDX_REGION_TABLE_INVALID', message);
        continue;
      }
      regionEntries ??= Array.from({ length: table.entryCount }, (_, i) => VhdxRegionEntryToken.get(buf, 16 + i * 32));
    }
    if (!regionEntries) {
      throw vhdError('VHD_BAD_CHECKSUM', {
        path,
        what: 'both VHDX region tables are invalid;',
        stored: '-',
        computed: '-',
      });
    }
    const bat = regionEntries.find((e) => e.guid === VHDX_REGION.bat);
    const metadata = regionEntries.find((e) => e.guid === VHDX_REGION.metadata);
    const unknown = regionEntries.find(
      (e) => e.required && e.guid !== VHDX_REGION.bat && e.guid !== VHDX_REGION.metadata,
    );
    if (unknown) throw vhdError('VHD_UNSUPPORTED', { path, what: `required region ${unknown.guid}` });
    if (!bat || !metadata)
      throw vhdError('VHD_BAD_STRUCTURE', { path, what: 'the region table has no BAT or no metadata region' });

    const meta = await readMetadata(path, fh, size, metadata);
    if (meta.virtualSize > VHDX_MAX_SIZE) {
      throw vhdError('VHD_TOO_LARGE', {
        path,
        what: 'the virtual disk size',
        claimed: meta.virtualSize,
        limit: VHDX_MAX_SIZE,
      });
    }
    const bs = meta.blockSize;
    if (bs < MiB || bs > 256 * MiB || (bs & (bs - 1)) !== 0) {
      throw vhdError('VHD_BAD_STRUCTURE', {
        path,
        what: `block size ${bs} is not a power of two between 1 MiB and 256 MiB`,
      });
    }
    if (meta.logicalSectorSize !== 512 && meta.logicalSectorSize !== 4096) {
      throw vhdError('VHD_BAD_STRUCTURE', {
        path,
        what: `logical sector size ${meta.logicalSectorSize} (must be 512 or 4096)`,
      });
    }
    if (meta.virtualSize % meta.logicalSectorSize !== 0) {
      problems.error(
        vhdError('VHD_BAD_STRUCTURE', {
          path,
          what: `virtual size ${meta.virtualSize} is not a multiple of the sector size`,
        }),
      );
    }
    const hasParent = (meta.flags & VHDX_FILE_PARAMS_HAS_PARENT) !== 0;
    if (hasParent && !meta.parentLocator) {
      throw vhdError('VHD_BAD_STRUCTURE', { path, what: 'a differencing disk without a parent locator' });
    }
    const geometry = vhdxGeometry(meta.virtualSize, bs, meta.logicalSectorSize, hasParent);
    const batOffset = safeNumber(bat.fileOffset, path, 'BAT offset');
    const batBytes = geometry.batEntries * 8;
    if (batBytes > MAX_BAT_BYTES) {
      throw vhdError('VHD_TOO_LARGE', {
        path,
        what: 'the block allocation table',
        claimed: `${geometry.batEntries} entries`,
        limit: `${MAX_BAT_BYTES / 8} entries`,
      });
    }
    if (bat.length < batBytes) {
      throw vhdError('VHD_BAD_STRUCTURE', {
        path,
        what: `the BAT region holds ${bat.length / 8} entries, the disk needs ${geometry.batEntries}`,
      });
    }
    if (batOffset + batBytes > size) {
      throw vhdError('VHD_BAT_TRUNCATED', {
        path,
        entries: geometry.batEntries,
        offset: batOffset,
        end: batOffset + batBytes,
        size,
      });
    }
    const batBuf = await readExact(fh, path, size, batOffset, batBytes, 'block allocation table');

    // Every present block inside the file, aligned, states valid, nothing overlapping.
    // Typed arrays and labels made on demand: a 1M-entry BAT costs 20 MB here, not a million strings.
    const starts = new Float64Array(geometry.batEntries);
    const lengths = new Float64Array(geometry.batEntries);
    const entryOf = new Uint32Array(geometry.batEntries);
    let count = 0;
    const labelOf = (i: number) =>
      (i + 1) % (geometry.chunkRatio + 1) === 0
        ? `sector bitmap block ${Math.floor(i / (geometry.chunkRatio + 1))}`
        : `payload block ${i - Math.floor(i / (geometry.chunkRatio + 1))}`;
    const metaOffset = safeNumber(metadata.fileOffset, path, 'metadata offset');
    const fixedRanges: FileRange[] = [
      { start: 0, end: VHDX_REGION_OFFSETS[1] + VHDX_REGION_SIZE, label: 'headers and region tables' },
      { start: metaOffset, end: metaOffset + metadata.length, label: 'metadata region' },
      { start: batOffset, end: batOffset + bat.length, label: 'BAT region' },
    ];
    const logOffset = safeNumber(header.logOffset, path, 'log offset');
    if (header.logLength > 0) fixedRanges.push({ start: logOffset, end: logOffset + header.logLength, label: 'log' });
    for (let i = 0; i < geometry.batEntries; i++) {
      const lo = batBuf.readUInt32LE(i * 8);
      const hi = batBuf.readUInt32LE(i * 8 + 4);
      const state = lo & 7;
      const isBitmap = (i + 1) % (geometry.chunkRatio + 1) === 0;
      const offset = (hi * 2 ** 32 + (lo - (lo % MiB))) as number;
      const present = isBitmap
        ? state === VHDX_BLOCK.fullyPresent
        : state === VHDX_BLOCK.fullyPresent || state === VHDX_BLOCK.partiallyPresent;
      const validStates: number[] = isBitmap
        ? [VHDX_BLOCK.notPresent, VHDX_BLOCK.fullyPresent]
        : hasParent
          ? [0, 1, 2, 3, 6, 7]
          : [0, 1, 2, 3, 6];
      if (!validStates.includes(state)) {
        problems.error(vhdError('VHD_BAD_STRUCTURE', { path, what: `${labelOf(i)} has invalid state ${state}` }));
        batBuf.writeUInt32LE(0, i * 8);
        batBuf.writeUInt32LE(0, i * 8 + 4);
        continue;
      }
      if (!present) continue;
      const length = isBitmap ? VHDX_SECTOR_BITMAP_BLOCK_SIZE : bs;
      if (offset % VHDX_ALIGNMENT !== 0 || offset + length > size) {
        const label = labelOf(i);
        problems.error(
          vhdError('VHD_BLOCK_PAST_EOF', {
            path,
            what: label.replace(/ \d+$/, ''),
            index: Number(label.split(' ').pop()),
            offset,
            size,
          }),
        );
        batBuf.writeUInt32LE(0, i * 8);
        batBuf.writeUInt32LE(0, i * 8 + 4);
        continue;
      }
      starts[count] = offset;
      lengths[count] = length;
      entryOf[count] = i;
      count++;
    }
    const overlap = findOverlap(fixedRanges, {
      starts: starts.subarray(0, count),
      lengths: lengths.subarray(0, count),
      label: (k) => labelOf(entryOf[k]!),
    });
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
    if (hasParent) {
      for (let block = 0; block < geometry.dataBlocks; block++) {
        const state = batBuf.readUInt32LE(payloadEntryIndex(geometry, block) * 8) & 7;
        const sbState =
          batBuf.readUInt32LE(bitmapEntryIndex(geometry, Math.floor(block / geometry.chunkRatio)) * 8) & 7;
        if (state === VHDX_BLOCK.partiallyPresent && sbState !== VHDX_BLOCK.fullyPresent) {
          problems.error(
            vhdError('VHD_BAD_STRUCTURE', {
              path,
              what: `payload block ${block} is partially present but its sector bitmap block is missing`,
            }),
          );
          break;
        }
      }
    }
    return new VhdxImage(
      path,
      fh,
      size,
      header,
      current.slot,
      checksums,
      { bat, metadata },
      meta,
      geometry,
      batBuf,
      problems.findings,
    );
  }

  private entry(index: number): { state: number; offset: number } {
    const lo = this.bat.readUInt32LE(index * 8);
    const hi = this.bat.readUInt32LE(index * 8 + 4);
    return { state: lo & 7, offset: hi * 2 ** 32 + (lo - (lo % MiB)) };
  }

  payloadEntry(block: number): { state: number; offset: number } {
    return this.entry(payloadEntryIndex(this.geometry, block));
  }

  bitmapEntry(chunk: number): { state: number; offset: number } {
    return this.entry(bitmapEntryIndex(this.geometry, chunk));
  }

  async map(offset: number, length: number): Promise<Extent[]> {
    const extents: Extent[] = [];
    const end = Math.min(offset + length, this.virtualSize);
    const bs = this.blockSize;
    const differencing = this.type === 'differencing';
    let pos = offset;
    while (pos < end) {
      const block = Math.floor(pos / bs);
      const blockStart = block * bs;
      const runEnd = Math.min(end, blockStart + bs);
      const { state, offset: fileOffset } = this.payloadEntry(block);
      if (state === VHDX_BLOCK.fullyPresent) {
        pushExtent(extents, {
          offset: pos,
          length: runEnd - pos,
          kind: 'data',
          fileOffset: fileOffset + (pos - blockStart),
        });
      } else if (state === VHDX_BLOCK.partiallyPresent) {
        const sectorSize = this.meta.logicalSectorSize;
        const bitmap = await this.blockBitmap(block);
        const first = Math.floor((pos - blockStart) / sectorSize);
        const last = Math.ceil((runEnd - blockStart) / sectorSize);
        for (const run of bitmapRuns(bitmap, first, last - first, false)) {
          const s = Math.max(pos, blockStart + run.sector * sectorSize);
          const e = Math.min(runEnd, blockStart + (run.sector + run.count) * sectorSize);
          pushExtent(extents, {
            offset: s,
            length: e - s,
            kind: run.present ? 'data' : 'parent',
            fileOffset: run.present ? fileOffset + (s - blockStart) : 0,
          });
        }
      } else if (state === VHDX_BLOCK.notPresent) {
        pushExtent(extents, {
          offset: pos,
          length: runEnd - pos,
          kind: differencing ? 'parent' : 'unallocated',
          fileOffset: 0,
        });
      } else {
        // ZERO, UNMAPPED, UNDEFINED: the specification lets readers return zeros.
        pushExtent(extents, { offset: pos, length: runEnd - pos, kind: 'zero', fileOffset: 0 });
      }
      pos = runEnd;
    }
    return extents;
  }

  /** The slice of the chunk's sector-bitmap block that describes `block`. */
  private async blockBitmap(block: number): Promise<Buffer> {
    const cached = this.bitmaps.get(block);
    if (cached) return cached;
    const g = this.geometry;
    const sb = this.bitmapEntry(Math.floor(block / g.chunkRatio));
    const bytes = g.blockSize / g.logicalSectorSize / 8;
    const at = sb.offset + (block % g.chunkRatio) * bytes;
    const bitmap = await readExact(this.fh, this.path, this.fileSize, at, bytes, `sector bitmap of block ${block}`);
    this.bitmaps.set(block, bitmap);
    return bitmap;
  }

  invalidateBitmap(block: number): void {
    this.bitmaps.invalidate(block);
  }

  async readStored(fileOffset: number, into: Buffer): Promise<void> {
    await readExact(this.fh, this.path, this.fileSize, fileOffset, into.length, 'block data', into);
  }

  get handle(): FileHandle {
    return this.fh;
  }

  info(): DiskInfo {
    let allocatedBlocks = 0;
    for (let block = 0; block < this.geometry.dataBlocks; block++) {
      const state = this.payloadEntry(block).state;
      if (state === VHDX_BLOCK.fullyPresent || state === VHDX_BLOCK.partiallyPresent) allocatedBlocks++;
    }
    return {
      path: this.path,
      format: 'vhdx',
      type: this.type,
      virtualSize: this.virtualSize,
      blockSize: this.blockSize,
      logicalSectorSize: this.meta.logicalSectorSize,
      physicalSectorSize: this.meta.physicalSectorSize,
      fileSize: this.fileSize,
      allocatedSize: Math.min(this.virtualSize, allocatedBlocks * this.blockSize),
      allocatedBlocks,
      totalBlocks: this.geometry.dataBlocks,
      uuid: this.meta.page83,
      linkId: this.linkId,
      checksums: this.checksums,
      ...(this.parent
        ? {
            parent: {
              name: this.parent.name,
              id: this.parent.id,
              idField: this.parent.idField,
              locators: this.parent.locators,
            },
          }
        : {}),
      warnings: this.findings.filter((f) => f.severity === 'warning').map((f) => f.message),
    };
  }

  async close(): Promise<void> {
    await this.fh.close();
  }
}

async function readMetadata(
  path: string,
  fh: FileHandle,
  size: number,
  region: VhdxRegionEntry,
): Promise<MetadataItems> {
  const offset = safeNumber(region.fileOffset, path, 'metadata offset');
  if (region.length < VHDX_METADATA_TABLE_SIZE || region.length > 16 * MiB) {
    throw vhdError('VHD_BAD_STRUCTURE', { path, what: `metadata region length ${region.length} is out of range` });
  }
  const buf = await readExact(fh, path, size, offset, region.length, 'metadata region');
  const table = VhdxMetadataTableHeaderToken.get(buf, 0);
  if (table.signature !== VHDX_METADATA_SIGNATURE || table.entryCount > VHDX_METADATA_MAX_ENTRIES) {
    throw vhdError('VHD_BAD_STRUCTURE', { path, what: 'the metadata table has no "metadata" signature' });
  }
  const entries: VhdxMetadataEntry[] = Array.from({ length: table.entryCount }, (_, i) =>
    VhdxMetadataEntryToken.get(buf, 32 + i * 32),
  );
  const item = (id: string, minLength: number): Buffer | undefined => {
    const entry = entries.find((e) => e.itemId === id);
    if (!entry) return undefined;
    if (
      entry.offset < VHDX_METADATA_TABLE_SIZE ||
      entry.length < minLength ||
      entry.offset + entry.length > buf.length
    ) {
      throw vhdError('VHD_BAD_STRUCTURE', { path, what: `metadata item ${id} lies outside the metadata region` });
    }
    return buf.subarray(entry.offset, entry.offset + entry.length);
  };
  const known = new Set<string>(Object.values(VHDX_METADATA));
  const unknownRequired = entries.find((e) => e.flags & 4 && !known.has(e.itemId));
  if (unknownRequired)
    throw vhdError('VHD_UNSUPPORTED', { path, what: `required metadata item ${unknownRequired.itemId}` });
  const required = (id: string, name: string, minLength: number): Buffer => {
    const b = item(id, minLength);
    if (!b) throw vhdError('VHD_BAD_STRUCTURE', { path, what: `the metadata has no ${name} item` });
    return b;
  };
  const params = required(VHDX_METADATA.fileParameters, 'file parameters', 8);
  const virtualSize = required(VHDX_METADATA.virtualDiskSize, 'virtual disk size', 8).readBigUInt64LE(0);
  const locatorBuf = item(VHDX_METADATA.parentLocator, 20);
  let parentLocator: Record<string, string> | undefined;
  if (locatorBuf) {
    const decoded = decodeVhdxParentLocator(locatorBuf);
    if (!decoded || decoded.type !== VHDX_PARENT_LOCATOR_TYPE) {
      throw vhdError('VHD_BAD_STRUCTURE', { path, what: 'the parent locator is damaged or of an unknown type' });
    }
    parentLocator = decoded.entries;
  }
  const page83 = item(VHDX_METADATA.page83Data, 16);
  return {
    blockSize: params.readUInt32LE(0),
    flags: params.readUInt32LE(4),
    virtualSize: safeNumber(virtualSize, path, 'virtual disk size'),
    logicalSectorSize: required(VHDX_METADATA.logicalSectorSize, 'logical sector size', 4).readUInt32LE(0),
    physicalSectorSize: item(VHDX_METADATA.physicalSectorSize, 4)?.readUInt32LE(0) ?? 512,
    page83: page83 ? guidFromBytes(page83, 0) : NIL_UUID,
    parentLocator,
  };
}

function parentLinkOf(locator: Record<string, string>): ParentLink {
  const linkage = (locator.parent_linkage ?? '').replace(/[{}]/g, '').toLowerCase();
  const locators: ParentLink['locators'] = [];
  if (locator.absolute_win32_path)
    locators.push({ key: 'absolute_win32_path', path: locator.absolute_win32_path, kind: 'absolute' });
  if (locator.relative_path) locators.push({ key: 'relative_path', path: locator.relative_path, kind: 'relative' });
  if (locator.volume_path) locators.push({ key: 'volume_path', path: locator.volume_path, kind: 'volume' });
  const first = locators[0]?.path ?? '';
  return { id: linkage, idField: 'DataWriteGuid', name: first.split(/[\\/]/).pop() ?? '', locators };
}
