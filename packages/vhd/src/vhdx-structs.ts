import { guidFromBytes, guidToBytes, type Token, utf16 } from './binary.js';
import { VHDX_HEADER_SIZE } from './constants.js';

/** VHDX header (4 KiB, little-endian; two copies at 64 KiB and 128 KiB, the higher valid sequence number wins). */
export interface VhdxHeader {
  signature: string;
  checksum: number;
  sequenceNumber: bigint;
  fileWriteGuid: string;
  dataWriteGuid: string;
  logGuid: string;
  logVersion: number;
  version: number;
  logLength: number;
  logOffset: bigint;
}

export const VhdxHeaderToken: Token<VhdxHeader> = {
  len: VHDX_HEADER_SIZE,
  get: (b, o) => ({
    signature: b.toString('latin1', o, o + 4),
    checksum: b.readUInt32LE(o + 4),
    sequenceNumber: b.readBigUInt64LE(o + 8),
    fileWriteGuid: guidFromBytes(b, o + 16),
    dataWriteGuid: guidFromBytes(b, o + 32),
    logGuid: guidFromBytes(b, o + 48),
    logVersion: b.readUInt16LE(o + 64),
    version: b.readUInt16LE(o + 66),
    logLength: b.readUInt32LE(o + 68),
    logOffset: b.readBigUInt64LE(o + 72),
  }),
};
export const VHDX_CHECKSUM_AT = 4;

export function encodeVhdxHeader(h: Omit<VhdxHeader, 'checksum' | 'signature'>): Buffer {
  const b = Buffer.alloc(VHDX_HEADER_SIZE);
  b.write('head', 0, 'latin1');
  b.writeBigUInt64LE(h.sequenceNumber, 8);
  guidToBytes(h.fileWriteGuid, b, 16);
  guidToBytes(h.dataWriteGuid, b, 32);
  guidToBytes(h.logGuid, b, 48);
  b.writeUInt16LE(h.logVersion, 64);
  b.writeUInt16LE(h.version, 66);
  b.writeUInt32LE(h.logLength, 68);
  b.writeBigUInt64LE(h.logOffset, 72);
  return b;
}

/** Region table header (16 bytes) followed by `entryCount` 32-byte entries. */
export interface VhdxRegionTableHeader {
  signature: string;
  checksum: number;
  entryCount: number;
}
export const VhdxRegionTableHeaderToken: Token<VhdxRegionTableHeader> = {
  len: 16,
  get: (b, o) => ({
    signature: b.toString('latin1', o, o + 4),
    checksum: b.readUInt32LE(o + 4),
    entryCount: b.readUInt32LE(o + 8),
  }),
};

export interface VhdxRegionEntry {
  guid: string;
  fileOffset: bigint;
  length: number;
  required: boolean;
}
export const VhdxRegionEntryToken: Token<VhdxRegionEntry> = {
  len: 32,
  get: (b, o) => ({
    guid: guidFromBytes(b, o),
    fileOffset: b.readBigUInt64LE(o + 16),
    length: b.readUInt32LE(o + 24),
    required: (b.readUInt32LE(o + 28) & 1) === 1,
  }),
};

/** Metadata table header (32 bytes) followed by `entryCount` 32-byte entries. */
export interface VhdxMetadataTableHeader {
  signature: string;
  entryCount: number;
}
export const VhdxMetadataTableHeaderToken: Token<VhdxMetadataTableHeader> = {
  len: 32,
  get: (b, o) => ({ signature: b.toString('latin1', o, o + 8), entryCount: b.readUInt16LE(o + 10) }),
};

export interface VhdxMetadataEntry {
  itemId: string;
  offset: number;
  length: number;
  flags: number;
}
export const VhdxMetadataEntryToken: Token<VhdxMetadataEntry> = {
  len: 32,
  get: (b, o) => ({
    itemId: guidFromBytes(b, o),
    offset: b.readUInt32LE(o + 16),
    length: b.readUInt32LE(o + 20),
    flags: b.readUInt32LE(o + 24),
  }),
};

/** Parent locator item: a type GUID and key/value pairs of UTF-16LE strings. */
export function decodeVhdxParentLocator(b: Buffer): { type: string; entries: Record<string, string> } | undefined {
  if (b.length < 20) return undefined;
  const type = guidFromBytes(b, 0);
  const count = b.readUInt16LE(18);
  if (20 + count * 12 > b.length) return undefined;
  const entries: Record<string, string> = {};
  for (let i = 0; i < count; i++) {
    const o = 20 + i * 12;
    const keyOffset = b.readUInt32LE(o);
    const valueOffset = b.readUInt32LE(o + 4);
    const keyLength = b.readUInt16LE(o + 8);
    const valueLength = b.readUInt16LE(o + 10);
    if (keyOffset + keyLength > b.length || valueOffset + valueLength > b.length) return undefined;
    entries[utf16(b, keyOffset, keyLength, 'le')] = utf16(b, valueOffset, valueLength, 'le');
  }
  return { type, entries };
}

export function encodeVhdxParentLocator(type: string, entries: Record<string, string>): Buffer {
  const pairs = Object.entries(entries);
  const table = Buffer.alloc(20 + pairs.length * 12);
  guidToBytes(type, table, 0);
  table.writeUInt16LE(pairs.length, 18);
  const blobs: Buffer[] = [];
  let at = table.length;
  pairs.forEach(([key, value], i) => {
    const k = Buffer.from(key, 'utf16le');
    const v = Buffer.from(value, 'utf16le');
    table.writeUInt32LE(at, 20 + i * 12);
    table.writeUInt32LE(at + k.length, 20 + i * 12 + 4);
    table.writeUInt16LE(k.length, 20 + i * 12 + 8);
    table.writeUInt16LE(v.length, 20 + i * 12 + 10);
    blobs.push(k, v);
    at += k.length + v.length;
  });
  return Buffer.concat([table, ...blobs]);
}
