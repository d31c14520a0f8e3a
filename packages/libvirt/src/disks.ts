import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { extname } from 'node:path';
import { LabctlError, UsageError } from '@labctl/core/errors';
import { fileKind } from '@labctl/core/files';
import { run } from './exec.js';

/**
 * Per-VM disks. A linked clone is a qcow2 overlay whose backing file is the golden image, read in
 * place and never written (qemu opens backing files read-only); a full clone is an independent qcow2
 * copy. The golden image's format comes from its extension and is always passed explicitly
 * (`-F vpc`): qemu never guesses a format, so a raw image cannot be mistaken for something else.
 */
export type ImageFormat = 'vpc' | 'vhdx' | 'qcow2' | 'raw';

const FORMAT_BY_EXTENSION: Record<string, ImageFormat> = {
  '.vhd': 'vpc',
  '.vhdx': 'vhdx',
  '.qcow2': 'qcow2',
  '.img': 'raw',
  '.raw': 'raw',
};

export function imageFormatFor(path: string): ImageFormat | undefined {
  return FORMAT_BY_EXTENSION[extname(path).toLowerCase()];
}

export interface GoldenInfo {
  path: string;
  format: ImageFormat;
  virtualSize: number;
  /** True when someone (owner, group or others) may write the file. */
  writable: boolean;
}

export class GoldenImageError extends LabctlError {}

/** Reads the golden image's header with qemu-img (`-U`: VMs may be running from it right now). */
export async function inspectGolden(path: string): Promise<GoldenInfo> {
  const format = imageFormatFor(path);
  if (!format) {
    throw new GoldenImageError('GOLDEN_FORMAT', `cannot tell the format of golden image ${path} from its name`, {
      hint: 'Name it .vhd, .vhdx, .qcow2, .raw or .img.',
    });
  }
  let mode: number;
  try {
    const stats = await stat(path);
    if (!stats.isFile()) {
      throw new UsageError(
        'GOLDEN_NOT_FILE',
        `golden image ${JSON.stringify(path)} is a ${fileKind(stats)}, not a regular file; labctl does not read it`,
        {
          hint: 'Give the path of a disk image file (.vhd, .vhdx, .qcow2, .raw, .img).',
        },
      );
    }
    mode = stats.mode;
    await access(path, constants.R_OK);
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new GoldenImageError('GOLDEN_MISSING', `golden image ${path} does not exist or is not readable`, {
      hint: 'Pass --golden PATH (or defaults.golden in labctl.yaml). The demo image comes from scripts/guest/build-guest.sh.',
      cause: err,
    });
  }
  let info: { 'virtual-size'?: number; format?: string };
  try {
    const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', '-f', format, path], {
      timeoutMs: 30_000,
    });
    info = JSON.parse(stdout);
  } catch (err) {
    const reason = ((err as { details?: { stderr?: string } }).details?.stderr ?? (err as Error).message).split(
      '\n',
    )[0];
    throw new GoldenImageError('GOLDEN_CORRUPT', `golden image ${path} is not a readable ${format} image: ${reason}`, {
      hint: 'Check the file (qemu-img check, labctl vhd info) or rebuild it; nothing was created.',
      cause: err,
    });
  }
  const virtualSize = info['virtual-size'] ?? 0;
  if (virtualSize <= 0) {
    throw new GoldenImageError('GOLDEN_CORRUPT', `golden image ${path} reports a virtual size of 0`, {
      hint: 'Rebuild the golden image.',
    });
  }
  return { path, format, virtualSize, writable: (mode & 0o222) !== 0 };
}

/** qcow2 overlay on the golden image. `-u` with the size: the backing file is not even opened. */
export async function createOverlay(golden: GoldenInfo, target: string, signal?: AbortSignal): Promise<void> {
  await run(
    'qemu-img',
    ['create', '-q', '-f', 'qcow2', '-u', '-b', golden.path, '-F', golden.format, target, String(golden.virtualSize)],
    { timeoutMs: 60_000, signal },
  );
}

/** An independent qcow2 copy of the golden image (`--clone full`). */
export async function createFullCopy(golden: GoldenInfo, target: string, signal?: AbortSignal): Promise<void> {
  await run('qemu-img', ['convert', '-U', '-q', '-f', golden.format, '-O', 'qcow2', golden.path, target], {
    timeoutMs: 30 * 60_000,
    signal,
  });
}
