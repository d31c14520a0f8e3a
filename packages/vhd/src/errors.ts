import { LabctlError, UsageError } from '@labctl/core/errors';

/**
 * Every failure of the VHD toolkit a user can see: one code, one message template and one hint,
 * all in this catalogue. `VhdFormatError` means the file itself is damaged or not what it claims
 * (exit 1); `VhdChainError` a parent that cannot be found or does not match; usage problems
 * (an output that exists, an output inside the chain) are `UsageError`s, raised before anything is written.
 */
const catalogue = {
  VHD_NOT_A_DISK: {
    message: (d: D) => `${d.path}: not a VHD or VHDX file (no "conectix" footer, no "vhdxfile" signature)`,
    hint: 'Check the path; `file` or `qemu-img info` tell what the file is.',
  },
  VHD_FILE_NOT_FOUND: {
    message: (d: D) => `${d.path}: no such file`,
    hint: 'Check the path.',
  },
  VHD_CANNOT_OPEN: {
    message: (d: D) => `${d.path}: cannot open: ${d.reason}`,
    hint: 'Check that it is a regular file you can read.',
  },
  VHD_TRUNCATED: {
    message: (d: D) => `${d.path}: truncated: ${d.what} needs bytes up to ${d.end}, but the file has ${d.size}`,
    hint: 'The file was cut short (copy interrupted, disk full). Copy it again from the source.',
  },
  VHD_BAD_CHECKSUM: {
    message: (d: D) => `${d.path}: ${d.what} checksum mismatch: stored ${d.stored}, computed ${d.computed}`,
    hint: 'The structure was damaged. `labctl vhd check` lists every problem; restore the file from a copy.',
  },
  VHD_BAD_STRUCTURE: {
    message: (d: D) => `${d.path}: ${d.what}`,
    hint: 'The file is damaged or was written by a broken tool. `labctl vhd check` lists every problem.',
  },
  VHD_UNSUPPORTED: {
    message: (d: D) => `${d.path}: ${d.what} is not supported`,
    hint: 'Convert the disk with Hyper-V (Convert-VHD) or qemu-img first.',
  },
  VHD_TOO_LARGE: {
    message: (d: D) => `${d.path}: ${d.what} claims ${d.claimed}, more than the format allows (${d.limit})`,
    hint: 'The header is damaged or hostile; labctl refuses to trust it.',
  },
  VHD_BAT_TRUNCATED: {
    message: (d: D) =>
      `${d.path}: block allocation table truncated: ${d.entries} entries at offset ${d.offset} need bytes up to ${d.end}, the file has ${d.size}`,
    hint: 'The file was cut short or its header is damaged. Copy it again from the source.',
  },
  VHD_BLOCK_PAST_EOF: {
    message: (d: D) =>
      `${d.path}: ${d.what} ${d.index} points at offset ${d.offset}, past the end of the file (${d.size} bytes)`,
    hint: 'The block allocation table is damaged or the file was truncated.',
  },
  VHD_BLOCK_OVERLAP: {
    message: (d: D) =>
      `${d.path}: ${d.first} (offset ${d.firstOffset}) overlaps ${d.second} (offset ${d.secondOffset})`,
    hint: 'Two table entries share file space: writing either would corrupt the other. Restore the file from a copy.',
  },
  VHDX_DIRTY_LOG: {
    message: (d: D) =>
      `${d.path}: the VHDX log is not empty (log ${d.logGuid}): the disk was not closed cleanly and the log must be replayed before it can be read`,
    hint: 'Attach the disk once on Hyper-V (Mount-VHD -ReadOnly, then Dismount-VHD) or open it read-write with qemu-img check -r all on a copy; labctl does not replay logs.',
  },
  VHD_PARENT_SMALLER: {
    message: (d: D) =>
      `${d.path}: its parent ${d.parent} is smaller (${d.parentSize} bytes) than the child (${d.childSize} bytes): the sizes were edited, or the child was grown after it was made`,
    hint: 'If the child was grown on purpose (vhd-util resize, Resize-VHD), pass --allow-grown-child: the part past the parent reads as zeros. Otherwise the chain is damaged.',
  },
  VHD_PARENT_NOT_FOUND: {
    message: (d: D) => `${d.path}: parent ${d.parent} not found (looked in: ${d.tried})`,
    hint: 'Copy the parent next to the child, or name the directory that holds it with --search DIR.',
  },
  VHD_PARENT_MISMATCH: {
    message: (d: D) =>
      `${d.path}: parent link broken: expected ${d.field} ${d.expected}, but ${d.candidate} has ${d.found}`,
    hint: 'The file found is not the parent this disk was made from (a different copy, or it was modified after the child was made).',
  },
  VHD_CHAIN_CYCLE: {
    message: (d: D) => `${d.path}: the parent chain loops back to ${d.repeated}: ${d.chain}`,
    hint: 'A disk cannot be its own ancestor; the parent locators or UUIDs are damaged.',
  },
  VHD_CHAIN_TOO_DEEP: {
    message: (d: D) => `${d.path}: the parent chain is deeper than ${d.limit} levels`,
    hint: 'This is almost certainly a damaged chain.',
  },
  VHD_OUTPUT_EXISTS: {
    message: (d: D) => `${d.path} already exists; labctl never overwrites a disk`,
    hint: 'Choose a new output name, or remove the old file yourself.',
  },
  VHD_OUTPUT_IN_CHAIN: {
    message: (d: D) => `${d.path} is part of the chain being read (${d.member}); the chain is never written`,
    hint: 'Write the output to a new file name.',
  },
  VHD_BAD_ARGUMENT: {
    message: (d: D) => `${d.what}`,
    hint: 'See the command help (--help).',
  },
  VHD_ABORTED: {
    message: (d: D) => `${d.path}: interrupted; the partial output was removed`,
    hint: 'Run the command again.',
  },
} as const;

type D = Record<string, string | number | bigint>;
export type VhdErrorCode = keyof typeof catalogue;

const usageCodes = new Set<VhdErrorCode>([
  'VHD_OUTPUT_EXISTS',
  'VHD_OUTPUT_IN_CHAIN',
  'VHD_BAD_ARGUMENT',
  'VHD_FILE_NOT_FOUND',
  'VHD_CANNOT_OPEN',
]);

/** The file is damaged, truncated, hostile or unsupported. */
export class VhdFormatError extends LabctlError {}
/** A parent is missing, mismatched, or the chain loops. */
export class VhdChainError extends LabctlError {}

/** Builds the catalogue's error for `code`, with the facts in `details` (also exposed to --json). */
export function vhdError(code: VhdErrorCode, details: D): LabctlError {
  const entry = catalogue[code];
  const message = entry.message(details);
  const plain = Object.fromEntries(
    Object.entries(details).map(([k, v]) => [k, typeof v === 'bigint' ? v.toString() : v]),
  );
  // An interrupt is 130, as for every labctl command (docs/json.md), not a failure of the disk.
  const options = { hint: entry.hint, details: plain, ...(code === 'VHD_ABORTED' ? { exitCode: 130 } : {}) };
  if (usageCodes.has(code)) return new UsageError(code, message, options);
  if (code.startsWith('VHD_PARENT') || code.startsWith('VHD_CHAIN')) return new VhdChainError(code, message, options);
  return new VhdFormatError(code, message, options);
}

/** An fs error on opening an input, as a typed error (a missing file is bad input; exit 2). */
export function openError(path: string, err: unknown): unknown {
  const code = (err as NodeJS.ErrnoException)?.code;
  if (code === 'ENOENT') return vhdError('VHD_FILE_NOT_FOUND', { path });
  if (code === 'EISDIR') return vhdError('VHD_CANNOT_OPEN', { path, reason: 'it is a directory' });
  if (code === 'EACCES' || code === 'EPERM') return vhdError('VHD_CANNOT_OPEN', { path, reason: 'permission denied' });
  return err;
}
