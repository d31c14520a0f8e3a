import type { FileHandle } from 'node:fs/promises';
import { vhdError } from './errors.js';

/** Big- and little-endian field access, CRC-32C, GUIDs and UTF-16 strings shared by both formats. */

/** A fixed-layout on-disk structure: its size and a decoder at a buffer offset (music-metadata's token idea). */
export interface Token<T> {
  len: number;
  get(buf: Buffer, off: number): T;
}

const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/** CRC-32C (Castagnoli), as VHDX uses for headers, region tables and log entries. */
export function crc32c(buf: Uint8Array): number {
  let crc = 0xffffffff;
  for (let i = 0; i < buf.length; i++) crc = CRC32C_TABLE[(crc ^ buf[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** CRC-32C of `buf` with the 4-byte checksum field at `at` taken as zero. */
export function crc32cWithHole(buf: Buffer, at: number): number {
  const copy = Buffer.from(buf);
  copy.writeUInt32LE(0, at);
  return crc32c(copy);
}

/** The VHD checksum: one's complement of the byte sum, the 4-byte checksum field skipped. */
export function vhdChecksum(buf: Buffer, at: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < at || i >= at + 4) sum += buf[i]!;
  return ~sum >>> 0;
}

export function hex32(value: number): string {
  return `0x${value.toString(16).padStart(8, '0')}`;
}

/** A GUID stored as in VHD (big-endian bytes, RFC 4122 order). */
export function uuidFromBytes(buf: Buffer, off: number): string {
  const h = buf.subarray(off, off + 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export function uuidToBytes(uuid: string, buf: Buffer, off: number): void {
  Buffer.from(uuid.replaceAll('-', ''), 'hex').copy(buf, off);
}

/** A GUID stored as in VHDX (Windows GUID: first three fields little-endian). */
export function guidFromBytes(buf: Buffer, off: number): string {
  const b = buf.subarray(off, off + 16);
  const le = (s: number, n: number) =>
    Buffer.from(b.subarray(s, s + n))
      .reverse()
      .toString('hex');
  const rest = b.subarray(8, 16).toString('hex');
  return `${le(0, 4)}-${le(4, 2)}-${le(6, 2)}-${rest.slice(0, 4)}-${rest.slice(4)}`;
}

export function guidToBytes(guid: string, buf: Buffer, off: number): void {
  const h = guid.replaceAll('-', '').replace(/[{}]/g, '');
  const be = Buffer.from(h, 'hex');
  Buffer.from(be.subarray(0, 4)).reverse().copy(buf, off);
  Buffer.from(be.subarray(4, 6))
    .reverse()
    .copy(buf, off + 4);
  Buffer.from(be.subarray(6, 8))
    .reverse()
    .copy(buf, off + 6);
  be.subarray(8, 16).copy(buf, off + 8);
}

export const NIL_UUID = '00000000-0000-0000-0000-000000000000';

/** UTF-16 text up to the first NUL. */
export function utf16(buf: Buffer, off: number, len: number, endian: 'le' | 'be'): string {
  const slice = Buffer.from(buf.subarray(off, off + len));
  if (endian === 'be') slice.swap16();
  const text = slice.toString('utf16le');
  const nul = text.indexOf('\0');
  return nul === -1 ? text : text.slice(0, nul);
}

export function encodeUtf16(text: string, endian: 'le' | 'be'): Buffer {
  const buf = Buffer.from(text, 'utf16le');
  if (endian === 'be') buf.swap16();
  return buf;
}

/** A 64-bit on-disk value as a JS number, refused when it cannot be exact. */
export function safeNumber(value: bigint, path: string, what: string): number {
  if (value > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw vhdError('VHD_TOO_LARGE', { path, what, claimed: value, limit: Number.MAX_SAFE_INTEGER });
  }
  return Number(value);
}

/** Reads exactly `length` bytes at `position`; a short read is a truncated file, named by `what`. */
export async function readExact(
  fh: FileHandle,
  path: string,
  size: number,
  position: number,
  length: number,
  what: string,
  into?: Buffer,
): Promise<Buffer> {
  if (position + length > size) throw vhdError('VHD_TRUNCATED', { path, what, end: position + length, size });
  const buf = into ?? Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const { bytesRead } = await fh.read(buf, done, length - done, position + done);
    if (bytesRead === 0) throw vhdError('VHD_TRUNCATED', { path, what, end: position + length, size: position + done });
    done += bytesRead;
  }
  return buf;
}

/** Writes all of `buf` at `position`. */
export async function writeAll(fh: FileHandle, buf: Uint8Array, position: number): Promise<void> {
  let done = 0;
  while (done < buf.length) {
    const { bytesWritten } = await fh.write(buf, done, buf.length - done, position + done);
    done += bytesWritten;
  }
}

export function isZero(buf: Uint8Array): boolean {
  // Compare against a shared zero page in slices: memcmp speed without allocating.
  for (let off = 0; off < buf.length; off += ZERO_PAGE.length) {
    const n = Math.min(ZERO_PAGE.length, buf.length - off);
    if (Buffer.compare(buf.subarray(off, off + n), ZERO_PAGE.subarray(0, n)) !== 0) return false;
  }
  return true;
}
const ZERO_PAGE = Buffer.alloc(1024 * 1024);

export function alignUp(value: number, to: number): number {
  return Math.ceil(value / to) * to;
}
