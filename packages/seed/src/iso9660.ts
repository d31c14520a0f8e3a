/**
 * A small ISO 9660 image with Joliet names, written by labctl itself (no genisoimage/xorriso):
 * one root directory of regular files, which is all a cloud-init NoCloud seed needs. The primary
 * volume carries 8.3 names (META_DAT.;1), the Joliet volume the real ones (meta-data): Linux,
 * Windows and the BSDs read the Joliet names, so cloud-init, cloudbase-init and a busybox guest
 * all see `meta-data`, `user-data` and `network-config`. Layout (2048-byte sectors): 16 empty,
 * primary descriptor, Joliet descriptor, terminator, four path tables, two root directories, files.
 */
export interface IsoFile {
  name: string;
  data: Buffer | string;
}

const SECTOR = 2048;
/** Joliet names are at most 64 UCS-2 characters; labctl's are short and ASCII. */
const JOLIET_NAME = /^[A-Za-z0-9._-]{1,60}$/;
/** One sector of directory records per volume is plenty for a seed; more is refused. */
const MAX_FILES = 24;

export function isoImage(files: readonly IsoFile[], volumeId: string, date = new Date()): Buffer {
  if (!/^[A-Za-z0-9_]{1,16}$/.test(volumeId))
    throw new Error(`volume id ${JSON.stringify(volumeId)}: 1-16 of A-Z a-z 0-9 _`);
  if (files.length > MAX_FILES) throw new Error(`at most ${MAX_FILES} files on a seed image`);
  const seen = new Set<string>();
  for (const file of files) {
    if (!JOLIET_NAME.test(file.name))
      throw new Error(`file name ${JSON.stringify(file.name)}: letters, digits, ".", "_", "-"`);
    if (seen.has(file.name.toLowerCase())) throw new Error(`file name ${file.name} twice`);
    seen.add(file.name.toLowerCase());
  }
  const contents = files.map((file) => (typeof file.data === 'string' ? Buffer.from(file.data, 'utf8') : file.data));

  // Sector map.
  const PVD = 16;
  const SVD = 17;
  const TERMINATOR = 18;
  const [L_PRIMARY, M_PRIMARY, L_JOLIET, M_JOLIET] = [19, 20, 21, 22];
  const ROOT_PRIMARY = 23;
  const ROOT_JOLIET = 24;
  let next = 25;
  const extents = contents.map((data) => {
    const start = next;
    next += Math.max(1, Math.ceil(data.length / SECTOR));
    return start;
  });
  const total = next;
  const image = Buffer.alloc(total * SECTOR);
  const stamp = recordingDate(date);

  const primaryNames = shortNames(files.map((file) => file.name));
  const primaryEntries = files.map((_, i) => ({
    id: Buffer.from(`${primaryNames[i]};1`, 'ascii'),
    extent: extents[i]!,
    size: contents[i]!.length,
  }));
  const jolietEntries = files.map((file, i) => ({
    id: ucs2(`${file.name};1`),
    extent: extents[i]!,
    size: contents[i]!.length,
  }));
  const primaryRoot = directory(ROOT_PRIMARY, primaryEntries, stamp);
  const jolietRoot = directory(ROOT_JOLIET, jolietEntries, stamp);
  primaryRoot.copy(image, ROOT_PRIMARY * SECTOR);
  jolietRoot.copy(image, ROOT_JOLIET * SECTOR);
  contents.forEach((data, i) => {
    data.copy(image, extents[i]! * SECTOR);
  });

  // Path tables: the root alone (name length 1, name byte 0, parent 1).
  const pathTable = (bigEndian: boolean, rootSector: number) => {
    const entry = Buffer.alloc(10);
    entry[0] = 1;
    if (bigEndian) {
      entry.writeUInt32BE(rootSector, 2);
      entry.writeUInt16BE(1, 6);
    } else {
      entry.writeUInt32LE(rootSector, 2);
      entry.writeUInt16LE(1, 6);
    }
    return entry;
  };
  pathTable(false, ROOT_PRIMARY).copy(image, L_PRIMARY * SECTOR);
  pathTable(true, ROOT_PRIMARY).copy(image, M_PRIMARY * SECTOR);
  pathTable(false, ROOT_JOLIET).copy(image, L_JOLIET * SECTOR);
  pathTable(true, ROOT_JOLIET).copy(image, M_JOLIET * SECTOR);

  const descriptor = (type: 1 | 2, at: number, tables: [number, number], root: number, joliet: boolean) => {
    const d = image.subarray(at * SECTOR, (at + 1) * SECTOR);
    d[0] = type;
    d.write('CD001', 1, 'ascii');
    d[6] = 1;
    const text = (value: string, offset: number, length: number) => {
      const bytes = joliet ? ucs2(value) : Buffer.from(value, 'ascii');
      const field = d.subarray(offset, offset + length);
      if (joliet) for (let i = 0; i + 1 < length; i += 2) field.writeUInt16BE(0x20, i);
      else field.fill(0x20);
      bytes.copy(field, 0, 0, Math.min(bytes.length, length));
    };
    text('', 8, 32); // system identifier
    text(volumeId, 40, 32);
    bothEndian32(d, 80, total);
    // UCS-2 level 3: "%/E".
    if (joliet) d.write('%/E', 88, 'ascii');
    bothEndian16(d, 120, 1); // volume set size
    bothEndian16(d, 124, 1); // volume sequence number
    bothEndian16(d, 128, SECTOR);
    bothEndian32(d, 132, 10); // path table size
    d.writeUInt32LE(tables[0], 140);
    d.writeUInt32BE(tables[1], 148);
    directoryRecord(Buffer.from([0]), root, SECTOR, true, stamp).copy(d, 156);
    text('', 190, 128); // volume set
    text('', 318, 128); // publisher
    text('', 446, 128); // preparer
    text('LABCTL', 574, 128); // application
    text('', 702, 37);
    text('', 739, 37);
    text('', 776, 37);
    const when = volumeDate(date);
    when.copy(d, 813);
    when.copy(d, 830);
    Buffer.from('0000000000000000\0', 'ascii').copy(d, 847);
    Buffer.from('0000000000000000\0', 'ascii').copy(d, 864);
    d[881] = 1;
  };
  descriptor(1, PVD, [L_PRIMARY, M_PRIMARY], ROOT_PRIMARY, false);
  descriptor(2, SVD, [L_JOLIET, M_JOLIET], ROOT_JOLIET, true);
  const end = image.subarray(TERMINATOR * SECTOR);
  end[0] = 255;
  end.write('CD001', 1, 'ascii');
  end[6] = 1;
  return image;
}

interface Entry {
  id: Buffer;
  extent: number;
  size: number;
}

/** The root directory: ".", "..", then the files sorted by identifier (ECMA-119 9.3). */
function directory(self: number, entries: Entry[], stamp: Buffer): Buffer {
  const sorted = [...entries].sort((a, b) => Buffer.compare(a.id, b.id));
  const records = [
    directoryRecord(Buffer.from([0]), self, SECTOR, true, stamp),
    directoryRecord(Buffer.from([1]), self, SECTOR, true, stamp),
    ...sorted.map((entry) => directoryRecord(entry.id, entry.extent, entry.size, false, stamp)),
  ];
  const all = Buffer.concat(records);
  if (all.length > SECTOR) throw new Error('too many files for one directory sector');
  return all;
}

function directoryRecord(id: Buffer, extent: number, size: number, isDirectory: boolean, stamp: Buffer): Buffer {
  const length = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(length);
  r[0] = length;
  bothEndian32(r, 2, extent);
  bothEndian32(r, 10, size);
  stamp.copy(r, 18);
  r[25] = isDirectory ? 2 : 0;
  bothEndian16(r, 28, 1);
  r[32] = id.length;
  id.copy(r, 33);
  return r;
}

/** 8.3 names of d-characters, made unique with a counter where two would clash. */
function shortNames(names: string[]): string[] {
  const used = new Set<string>();
  return names.map((name) => {
    const dot = name.lastIndexOf('.');
    const base = (dot > 0 ? name.slice(0, dot) : name).toUpperCase().replace(/[^A-Z0-9_]/g, '_');
    const ext = (dot > 0 ? name.slice(dot + 1) : '')
      .toUpperCase()
      .replace(/[^A-Z0-9_]/g, '_')
      .slice(0, 3);
    let candidate = `${base.slice(0, 8)}.${ext}`;
    for (let n = 1; used.has(candidate); n++) candidate = `${base.slice(0, 8 - String(n).length - 1)}_${n}.${ext}`;
    used.add(candidate);
    return candidate;
  });
}

function ucs2(text: string): Buffer {
  const out = Buffer.alloc(text.length * 2);
  for (let i = 0; i < text.length; i++) out.writeUInt16BE(text.charCodeAt(i), i * 2);
  return out;
}

function bothEndian16(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt16LE(value, offset);
  buffer.writeUInt16BE(value, offset + 2);
}

function bothEndian32(buffer: Buffer, offset: number, value: number): void {
  buffer.writeUInt32LE(value, offset);
  buffer.writeUInt32BE(value, offset + 4);
}

/** Directory record time: years since 1900, month, day, hour, minute, second, UTC offset 0. */
function recordingDate(date: Date): Buffer {
  return Buffer.from([
    date.getUTCFullYear() - 1900,
    date.getUTCMonth() + 1,
    date.getUTCDate(),
    date.getUTCHours(),
    date.getUTCMinutes(),
    date.getUTCSeconds(),
    0,
  ]);
}

/** Volume descriptor time: "YYYYMMDDHHMMSScc" and a UTC offset byte. */
function volumeDate(date: Date): Buffer {
  const text = date
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.(\d\d)\d*Z$/, '$1');
  return Buffer.concat([Buffer.from(text, 'ascii'), Buffer.from([0])]);
}
