import { type Token, utf16, uuidFromBytes, uuidToBytes, vhdChecksum } from './binary.js';
import {
  VHD_DYNAMIC_HEADER_SIZE,
  VHD_EPOCH_OFFSET,
  VHD_FOOTER_SIZE,
  VHD_PARENT_LOCATOR_COUNT,
  VHD_PARENT_LOCATOR_SIZE,
  VHD_PARENT_NAME_BYTES,
} from './constants.js';

/** The VHD hard disk footer (512 bytes, big-endian; at the end of every VHD, copied at 0 in dynamic ones). */
export interface VhdFooter {
  cookie: string;
  features: number;
  version: number;
  dataOffset: bigint;
  timestamp: number;
  creatorApp: string;
  creatorVersion: number;
  creatorHostOs: number;
  originalSize: bigint;
  currentSize: bigint;
  cylinders: number;
  heads: number;
  sectorsPerTrack: number;
  diskType: number;
  checksum: number;
  uuid: string;
  savedState: number;
  /** blktap's `hidden` byte (XenServer marks snapshot bases and coalesce leftovers with 1); 0 elsewhere. */
  hidden: number;
}

export const VhdFooterToken: Token<VhdFooter> = {
  len: VHD_FOOTER_SIZE,
  get: (b, o) => ({
    cookie: b.toString('latin1', o, o + 8),
    features: b.readUInt32BE(o + 8),
    version: b.readUInt32BE(o + 12),
    dataOffset: b.readBigUInt64BE(o + 16),
    timestamp: b.readUInt32BE(o + 24),
    creatorApp: b.toString('latin1', o + 28, o + 32),
    creatorVersion: b.readUInt32BE(o + 32),
    creatorHostOs: b.readUInt32BE(o + 36),
    originalSize: b.readBigUInt64BE(o + 40),
    currentSize: b.readBigUInt64BE(o + 48),
    cylinders: b.readUInt16BE(o + 56),
    heads: b.readUInt8(o + 58),
    sectorsPerTrack: b.readUInt8(o + 59),
    diskType: b.readUInt32BE(o + 60),
    checksum: b.readUInt32BE(o + 64),
    uuid: uuidFromBytes(b, o + 68),
    savedState: b.readUInt8(o + 84),
    hidden: b.readUInt8(o + 85),
  }),
};
export const VHD_FOOTER_CHECKSUM_AT = 64;

export function encodeVhdFooter(f: VhdFooter): Buffer {
  const b = Buffer.alloc(VHD_FOOTER_SIZE);
  b.write(f.cookie, 0, 8, 'latin1');
  b.writeUInt32BE(f.features, 8);
  b.writeUInt32BE(f.version, 12);
  b.writeBigUInt64BE(f.dataOffset, 16);
  b.writeUInt32BE(f.timestamp, 24);
  b.write(f.creatorApp, 28, 4, 'latin1');
  b.writeUInt32BE(f.creatorVersion, 32);
  b.writeUInt32BE(f.creatorHostOs, 36);
  b.writeBigUInt64BE(f.originalSize, 40);
  b.writeBigUInt64BE(f.currentSize, 48);
  b.writeUInt16BE(f.cylinders, 56);
  b.writeUInt8(f.heads, 58);
  b.writeUInt8(f.sectorsPerTrack, 59);
  b.writeUInt32BE(f.diskType, 60);
  uuidToBytes(f.uuid, b, 68);
  b.writeUInt8(f.savedState, 84);
  b.writeUInt8(f.hidden, 85);
  b.writeUInt32BE(vhdChecksum(b, VHD_FOOTER_CHECKSUM_AT), VHD_FOOTER_CHECKSUM_AT);
  return b;
}

/** One parent locator entry of the dynamic header (24 bytes). */
export interface VhdParentLocatorEntry {
  platformCode: string;
  platformDataSpace: number;
  platformDataLength: number;
  platformDataOffset: bigint;
}

export const VhdParentLocatorToken: Token<VhdParentLocatorEntry> = {
  len: VHD_PARENT_LOCATOR_SIZE,
  get: (b, o) => ({
    platformCode: b.toString('latin1', o, o + 4),
    platformDataSpace: b.readUInt32BE(o + 4),
    platformDataLength: b.readUInt32BE(o + 8),
    platformDataOffset: b.readBigUInt64BE(o + 16),
  }),
};

/** The dynamic disk header (1024 bytes, big-endian) of dynamic and differencing VHDs. */
export interface VhdDynamicHeader {
  cookie: string;
  dataOffset: bigint;
  tableOffset: bigint;
  headerVersion: number;
  maxTableEntries: number;
  blockSize: number;
  checksum: number;
  parentUuid: string;
  parentTimestamp: number;
  parentUnicodeName: string;
  parentLocators: VhdParentLocatorEntry[];
}

export const VhdDynamicHeaderToken: Token<VhdDynamicHeader> = {
  len: VHD_DYNAMIC_HEADER_SIZE,
  get: (b, o) => ({
    cookie: b.toString('latin1', o, o + 8),
    dataOffset: b.readBigUInt64BE(o + 8),
    tableOffset: b.readBigUInt64BE(o + 16),
    headerVersion: b.readUInt32BE(o + 24),
    maxTableEntries: b.readUInt32BE(o + 28),
    blockSize: b.readUInt32BE(o + 32),
    checksum: b.readUInt32BE(o + 36),
    parentUuid: uuidFromBytes(b, o + 40),
    parentTimestamp: b.readUInt32BE(o + 56),
    parentUnicodeName: utf16(b, o + 64, VHD_PARENT_NAME_BYTES, 'be'),
    parentLocators: Array.from({ length: VHD_PARENT_LOCATOR_COUNT }, (_, i) =>
      VhdParentLocatorToken.get(b, o + 576 + i * VHD_PARENT_LOCATOR_SIZE),
    ),
  }),
};
export const VHD_HEADER_CHECKSUM_AT = 36;

export function encodeVhdDynamicHeader(h: VhdDynamicHeader): Buffer {
  const b = Buffer.alloc(VHD_DYNAMIC_HEADER_SIZE);
  b.write(h.cookie, 0, 8, 'latin1');
  b.writeBigUInt64BE(h.dataOffset, 8);
  b.writeBigUInt64BE(h.tableOffset, 16);
  b.writeUInt32BE(h.headerVersion, 24);
  b.writeUInt32BE(h.maxTableEntries, 28);
  b.writeUInt32BE(h.blockSize, 32);
  uuidToBytes(h.parentUuid, b, 40);
  b.writeUInt32BE(h.parentTimestamp, 56);
  const name = Buffer.from(h.parentUnicodeName, 'utf16le').swap16();
  name.copy(b, 64, 0, Math.min(name.length, VHD_PARENT_NAME_BYTES));
  h.parentLocators.forEach((l, i) => {
    const o = 576 + i * VHD_PARENT_LOCATOR_SIZE;
    b.write(l.platformCode, o, 4, 'latin1');
    b.writeUInt32BE(l.platformDataSpace, o + 4);
    b.writeUInt32BE(l.platformDataLength, o + 8);
    b.writeBigUInt64BE(l.platformDataOffset, o + 16);
  });
  b.writeUInt32BE(vhdChecksum(b, VHD_HEADER_CHECKSUM_AT), VHD_HEADER_CHECKSUM_AT);
  return b;
}

export function vhdTimestampToDate(seconds: number): Date {
  return new Date((seconds + VHD_EPOCH_OFFSET) * 1000);
}

export function vhdTimestampNow(): number {
  return Math.max(0, Math.floor(Date.now() / 1000) - VHD_EPOCH_OFFSET);
}

/** CHS geometry for a disk size, by the algorithm in the VHD specification (appendix). */
export function vhdGeometry(size: number): { cylinders: number; heads: number; sectorsPerTrack: number } {
  let totalSectors = Math.floor(size / 512);
  if (totalSectors > 65535 * 16 * 255) totalSectors = 65535 * 16 * 255;
  let sectorsPerTrack: number;
  let heads: number;
  let cylinderTimesHeads: number;
  if (totalSectors >= 65535 * 16 * 63) {
    sectorsPerTrack = 255;
    heads = 16;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
  } else {
    sectorsPerTrack = 17;
    cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    heads = Math.max(4, Math.floor((cylinderTimesHeads + 1023) / 1024));
    if (cylinderTimesHeads >= heads * 1024 || heads > 16) {
      sectorsPerTrack = 31;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
    if (cylinderTimesHeads >= heads * 1024) {
      sectorsPerTrack = 63;
      heads = 16;
      cylinderTimesHeads = Math.floor(totalSectors / sectorsPerTrack);
    }
  }
  return { cylinders: Math.floor(cylinderTimesHeads / heads), heads, sectorsPerTrack };
}
