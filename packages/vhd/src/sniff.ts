import { open } from 'node:fs/promises';
import { sizeOf } from './device.js';
import { VHD_FOOTER_COOKIE, VHDX_SIGNATURE } from './constants.js';

/**
 * Whether a file's content is a VHD or VHDX: the VHDX file type identifier at 0, or the VHD footer
 * cookie at the end (every VHD) or at 0 (the dynamic VHD's footer copy).
 */
export async function looksLikeDisk(path: string): Promise<boolean> {
  let fh: Awaited<ReturnType<typeof open>> | undefined;
  try {
    fh = await open(path, 'r');
    const { size } = await sizeOf(fh, path);
    if (size < 512) return false;
    const head = Buffer.alloc(8);
    await fh.read(head, 0, 8, 0);
    const magic = head.toString('latin1');
    if (magic === VHDX_SIGNATURE || magic === VHD_FOOTER_COOKIE) return true;
    const tail = Buffer.alloc(8);
    await fh.read(tail, 0, 8, size - 512);
    return tail.toString('latin1') === VHD_FOOTER_COOKIE;
  } catch {
    return false;
  } finally {
    await fh?.close();
  }
}
