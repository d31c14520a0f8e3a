import { resolve } from 'node:path';
import { openChain } from './chain.js';
import { vhdError } from './errors.js';
import { assertNewOutput } from './flatten.js';
import { createDisk } from './writer.js';

export interface DiffResult {
  parent: string;
  child: string;
  format: 'vhd' | 'vhdx';
  virtualSize: number;
  parentId: string;
}

/**
 * Creates an empty differencing disk on `parent`, like New-VHD -Differencing: same format and size,
 * parent UUID (VHD) or DataWriteGuid (VHDX) recorded, the parent's name and its path relative to the
 * child (VHD: a W2ru locator, and a W2ku absolute one only with `absoluteParent`; VHDX: relative,
 * volume and absolute paths, which VHDX readers try in that order). The parent's own chain must be
 * readable first; the parent is only read.
 */
export async function createDifferencing(
  parent: string,
  child: string,
  options: { search?: readonly string[]; absoluteParent?: boolean } = {},
): Promise<DiffResult> {
  const chain = await openChain(parent, { search: options.search ?? [] });
  try {
    await assertNewOutput(child, chain);
    const top = chain.top;
    // openChain opens VHD/VHDX files only: a raw file is never the top of a chain.
    if (top.format === 'raw')
      throw vhdError('VHD_BAD_ARGUMENT', { what: `${parent}: a raw image cannot be a parent here` });
    const wanted = child.toLowerCase().endsWith('.vhdx') || child.toLowerCase().endsWith('.avhdx') ? 'vhdx' : 'vhd';
    if (/\.a?vhdx?$/i.test(child) && wanted !== top.format) {
      throw vhdError('VHD_BAD_ARGUMENT', {
        what: `${child}: a ${top.format.toUpperCase()} parent needs a .${top.format} child`,
      });
    }
    const writer = await createDisk(resolve(child), {
      format: top.format,
      virtualSize: top.virtualSize,
      parent: top,
      ...(options.absoluteParent ? { absoluteParent: true } : {}),
    });
    await writer.finish();
    return { parent, child, format: top.format, virtualSize: top.virtualSize, parentId: top.linkId };
  } finally {
    await chain.close();
  }
}
