import type { LabctlError } from '@labctl/core/errors';

/** What both readers (VHD and VHDX) expose: identity, geometry, parent link and a block map. */
/** `raw`: only ever a parent, of a blktap child (see raw-image.ts). */
export type DiskFormat = 'vhd' | 'vhdx' | 'raw';
export type DiskType = 'fixed' | 'dynamic' | 'differencing';

/**
 * A run of the virtual disk as one layer sees it. `data`: stored in this file at `fileOffset`;
 * `zero`: explicitly zero here (VHDX ZERO/UNMAPPED state); `unallocated`: a hole of a disk
 * without parent (reads as zeros); `parent`: not stored here, read from the parent.
 */
export interface Extent {
  offset: number;
  length: number;
  kind: 'data' | 'zero' | 'unallocated' | 'parent';
  fileOffset: number;
}

/** Where a differencing disk says its parent is, in the order Hyper-V tries them. */
export interface ParentLink {
  /** VHD: the parent's footer UUID. VHDX: the parent's DataWriteGuid (parent_linkage). */
  id: string;
  idField: 'UUID' | 'DataWriteGuid';
  /**
   * VHD: the parent is a raw file (blktap's marker: a zero parent UUID, `vhd-util snapshot -m`);
   * nothing identifies it but its path.
   */
  raw?: boolean;
  /** VHD only: the parent's footer timestamp (seconds since 2000-01-01 UTC) at the time the child was made. */
  timestamp?: number;
  /** VHD: the Parent Unicode Name; VHDX: the basename of the first path locator. */
  name: string;
  /** Absolute path first, then relative, as stored (Windows paths keep their backslashes). */
  locators: Array<{ key: string; path: string; kind: 'absolute' | 'relative' | 'volume' }>;
}

/** A structural problem found while reading a file; `error` findings make the file unreadable. */
export interface Finding {
  severity: 'error' | 'warning';
  code: string;
  message: string;
}

/** Collects problems: strict readers throw on the first error, `check` keeps going and lists them. */
export class ProblemSink {
  readonly findings: Finding[] = [];
  constructor(private readonly strict: boolean) {}

  error(err: LabctlError): void {
    if (this.strict) throw err;
    this.findings.push({ severity: 'error', code: err.code, message: err.message });
  }

  warning(code: string, message: string): void {
    this.findings.push({ severity: 'warning', code, message });
  }
}

export interface DiskInfo {
  path: string;
  format: DiskFormat;
  type: DiskType;
  virtualSize: number;
  blockSize: number;
  logicalSectorSize: number;
  physicalSectorSize: number;
  fileSize: number;
  /** Bytes of virtual disk stored in this file (allocated blocks x block size; the whole disk when fixed). */
  allocatedSize: number;
  allocatedBlocks: number;
  totalBlocks: number;
  /** VHD: footer UUID. VHDX: Page 83 disk identifier. */
  uuid: string;
  /** What children link to: the VHD UUID, the VHDX DataWriteGuid. */
  linkId: string;
  /** VHD: footer timestamp (ISO). */
  timestamp?: string;
  creator?: string;
  checksums: Record<string, 'good' | 'bad'>;
  parent?: {
    name: string;
    id: string;
    idField: ParentLink['idField'];
    /** The parent is a raw file (blktap: a zero parent UUID). */
    raw?: boolean;
    timestamp?: string;
    /** The locators labctl follows, in the order it tries them. */
    locators: ParentLink['locators'];
  };
  /** VHD: every parent locator as stored (code and decoded path, MacX included), in stored order. */
  locators?: Array<{ key: string; path: string }>;
  /** VHD: blktap's hidden byte (1 on XenServer snapshot bases). */
  hidden?: number;
  warnings: string[];
}

export interface DiskImage {
  readonly path: string;
  readonly format: DiskFormat;
  readonly type: DiskType;
  readonly virtualSize: number;
  readonly blockSize: number;
  readonly fileSize: number;
  readonly linkId: string;
  /** VHD only: footer timestamp, compared with a child's parent timestamp. */
  readonly timestamp: number | undefined;
  /**
   * VHD only: the creator application. It says what the child's parent timestamp is: blktap ("tap ")
   * records the parent file's modification time, Hyper-V ("win ") and labctl the parent's footer
   * timestamp.
   */
  readonly creatorApp?: string;
  readonly parent: ParentLink | undefined;
  readonly findings: Finding[];
  /** The runs covering [offset, offset + length), in order. */
  map(offset: number, length: number): Promise<Extent[]>;
  /** Reads stored bytes (a `data` extent's file range). */
  readStored(fileOffset: number, into: Buffer): Promise<void>;
  info(): DiskInfo;
  close(): Promise<void>;
}

/** Half-open byte range in the file, for the overlap check. */
export interface FileRange {
  start: number;
  end: number;
  label: string;
}

/**
 * Reports the first overlapping pair of ranges (sorted by start). `ranges` holds the fixed structures;
 * `blocks` the allocated blocks, described compactly (start offsets + one length + a label function)
 * so a 1M-entry table costs two typed arrays, not a million objects.
 */
export function findOverlap(
  ranges: FileRange[],
  blocks: { starts: Float64Array; lengths: Float64Array; label: (i: number) => string },
): [FileRange, FileRange] | undefined {
  const n = blocks.starts.length;
  const order = new Uint32Array(n + ranges.length);
  for (let i = 0; i < order.length; i++) order[i] = i;
  const start = (i: number) => (i < n ? blocks.starts[i]! : ranges[i - n]!.start);
  const end = (i: number) => (i < n ? blocks.starts[i]! + blocks.lengths[i]! : ranges[i - n]!.end);
  const label = (i: number) => (i < n ? blocks.label(i) : ranges[i - n]!.label);
  order.sort((a, b) => start(a) - start(b));
  for (let k = 1; k < order.length; k++) {
    const prev = order[k - 1]!;
    const cur = order[k]!;
    if (start(cur) < end(prev)) {
      return [
        { start: start(prev), end: end(prev), label: label(prev) },
        { start: start(cur), end: end(cur), label: label(cur) },
      ];
    }
  }
  return undefined;
}

/** Groups per-sector presence bits into runs (VHD bitmaps are MSB-first, VHDX LSB-first). */
export function bitmapRuns(
  bitmap: Buffer,
  firstSector: number,
  sectorCount: number,
  msbFirst: boolean,
): Array<{ sector: number; count: number; present: boolean }> {
  const runs: Array<{ sector: number; count: number; present: boolean }> = [];
  for (let s = firstSector; s < firstSector + sectorCount; s++) {
    const byte = bitmap[s >> 3] ?? 0;
    const present = (byte & (msbFirst ? 0x80 >> (s & 7) : 1 << (s & 7))) !== 0;
    const last = runs[runs.length - 1];
    if (last && last.present === present) last.count++;
    else runs.push({ sector: s, count: 1, present });
  }
  return runs;
}

/** Merges adjacent extents of the same kind (and contiguous file offsets for data). */
export function pushExtent(list: Extent[], extent: Extent): void {
  if (extent.length <= 0) return;
  const last = list[list.length - 1];
  if (
    last &&
    last.kind === extent.kind &&
    last.offset + last.length === extent.offset &&
    (extent.kind !== 'data' || last.fileOffset + last.length === extent.fileOffset)
  ) {
    last.length += extent.length;
    return;
  }
  list.push({ ...extent });
}

/** Small LRU of sector bitmaps, keyed by block. */
export class BitmapCache {
  private readonly entries = new Map<number, Buffer>();
  constructor(private readonly limit = 64) {}
  get(key: number): Buffer | undefined {
    const hit = this.entries.get(key);
    if (hit) {
      this.entries.delete(key);
      this.entries.set(key, hit);
    }
    return hit;
  }
  set(key: number, value: Buffer): void {
    this.entries.set(key, value);
    if (this.entries.size > this.limit) this.entries.delete(this.entries.keys().next().value as number);
  }
  invalidate(key: number): void {
    this.entries.delete(key);
  }
}
