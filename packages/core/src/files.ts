import { constants as fs, type Stats } from 'node:fs';
import { lstat, mkdir, open, readdir, realpath, rename, rm, stat, statfs, unlink } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { LabctlError, UsageError } from './errors.js';
import { pathInside, quoteForMessage } from './names.js';

/**
 * Files labctl reads and writes on the user's behalf. Reading never blocks on a FIFO or reads a
 * device; writing keeps what the file was (mode, owner, the target of a symlink), never replaces a
 * special file, and lands atomically (temporary file in the same directory, fsync, rename).
 */

/** What a non-regular file is, in words a user knows. */
export function fileKind(stats: Stats): string {
  if (stats.isFile()) return 'regular file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isFIFO()) return 'FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'character device';
  if (stats.isBlockDevice()) return 'block device';
  if (stats.isSocket()) return 'socket';
  if (stats.isSymbolicLink()) return 'symbolic link';
  return 'special file';
}

// O_NONBLOCK: opening a FIFO for reading returns at once instead of waiting for a writer. Windows has none of these.
const READ_FLAGS = fs.O_RDONLY | (fs.O_NONBLOCK ?? 0) | (fs.O_NOCTTY ?? 0);

export interface ReadOptions {
  maxBytes: number;
  /** A missing file is undefined instead of an error. */
  missingOk?: boolean;
  hint?: string | undefined;
  /** The error code of every refusal (default FILE_UNREADABLE, FILE_NOT_REGULAR, FILE_TOO_BIG). */
  code?: string;
}

/**
 * The text of a regular file of at most `maxBytes`; a FIFO, device, socket or directory is refused
 * (exit 2) without reading a byte. The type is checked on the opened handle, so it cannot change
 * between the check and the read.
 */
export async function readRegularFile(
  path: string,
  what: string,
  options: ReadOptions & { missingOk: true },
): Promise<string | undefined>;
export async function readRegularFile(path: string, what: string, options: ReadOptions): Promise<string | undefined>;
export async function readRegularFile(path: string, what: string, options: ReadOptions): Promise<string | undefined> {
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, READ_FLAGS);
  } catch (err) {
    const errno = (err as NodeJS.ErrnoException).code;
    if (errno === 'ENOENT' && options.missingOk) return undefined;
    throw new UsageError(
      options.code ?? 'FILE_UNREADABLE',
      `cannot read ${what} ${quoteForMessage(path, 200)}: ${(err as Error).message}`,
      {
        ...(options.hint ? { hint: options.hint } : {}),
      },
    );
  }
  try {
    const stats = await handle.stat();
    if (!stats.isFile()) {
      throw new UsageError(
        options.code ?? 'FILE_NOT_REGULAR',
        `${what} ${quoteForMessage(path, 200)} is a ${fileKind(stats)}, not a regular file; labctl does not read it`,
        {
          hint: `Give the path of a regular file as the ${what}.`,
        },
      );
    }
    if (stats.size > options.maxBytes) {
      throw new UsageError(
        options.code ?? 'FILE_TOO_BIG',
        `${what} ${quoteForMessage(path, 200)} has ${stats.size} bytes; labctl reads at most ${options.maxBytes}`,
        {
          hint: `Is this really the ${what}?`,
        },
      );
    }
    const buffer = Buffer.alloc(Math.min(stats.size, options.maxBytes) + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > options.maxBytes) {
        throw new UsageError(
          options.code ?? 'FILE_TOO_BIG',
          `${what} ${quoteForMessage(path, 200)} grew past ${options.maxBytes} bytes while being read`,
        );
      }
    }
    return buffer.subarray(0, length).toString('utf8');
  } finally {
    await handle.close();
  }
}

/** Refuse (exit 2) a path that exists and is not a regular file: a FIFO or device given as a disk, a directory given as a file. */
export async function checkRegularIfExists(path: string, what: string): Promise<Stats | undefined> {
  let stats: Stats;
  try {
    stats = await stat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new UsageError(
      'FILE_UNREADABLE',
      `cannot look at ${what} ${quoteForMessage(path, 200)}: ${(err as Error).message}`,
    );
  }
  if (!stats.isFile()) {
    throw new UsageError(
      'FILE_NOT_REGULAR',
      `${what} ${quoteForMessage(path, 200)} is a ${fileKind(stats)}, not a regular file`,
      {
        hint: `Give the path of a regular file as the ${what}.`,
      },
    );
  }
  return stats;
}

/** Paths that mean "write to standard output" for an `-o` flag. */
export function isStdoutPath(path: string): boolean {
  return path === '-' || path === '/dev/stdout' || path === '/dev/fd/1' || path === '/proc/self/fd/1';
}

// Pseudo file systems: writing there changes the kernel, not a file (and /proc files can spin forever).
const PSEUDO_FS = new Map<number, string>([
  [0x9fa0, 'procfs'],
  [0x62656572, 'sysfs'],
  [0x1cd1, 'devpts'],
  [0x27e0eb, 'cgroup'],
  [0x63677270, 'cgroup2'],
  [0x64626720, 'debugfs'],
  [0x74726163, 'tracefs'],
  [0x73636673, 'securityfs'],
  [0x42494e4d, 'binfmt_misc'],
  [0x6e736673, 'nsfs'],
  [0xcafe4a11, 'bpf'],
]);

/** Refuse a directory on /proc, /sys and the like (exit 2). */
export async function checkNotPseudoFs(dir: string, what: string): Promise<void> {
  let type: number;
  try {
    type = Number((await statfs(dir)).type);
  } catch {
    return;
  }
  const name = PSEUDO_FS.get(type);
  if (name) {
    throw new UsageError(
      'OUTPUT_PSEUDO_FS',
      `${what} ${quoteForMessage(dir, 200)} is on ${name}, a kernel interface, not a file system labctl writes to`,
      {
        hint: 'Choose a directory on a disk.',
      },
    );
  }
}

export interface OutputTarget {
  /** The file that will be replaced: the given path, or the final target of a symlink. */
  path: string;
  /** What the file is now, when it exists: its mode and owner are kept. */
  existing?: { mode: number; uid: number; gid: number };
  /** The given path was a symlink; the write goes through it to `path`. */
  viaLink: boolean;
}

/**
 * Where a write to `path` lands, checked before anything is written: a symlink is followed to its
 * target (and written through, so the link stays a link); a directory, FIFO, device or socket is
 * refused (exit 2); a dangling link is refused.
 */
export async function outputTarget(path: string, what: string): Promise<OutputTarget> {
  const given = resolve(path);
  let link: Stats | undefined;
  try {
    link = await lstat(given);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw new UsageError(
        'OUTPUT_UNUSABLE',
        `cannot write ${what} ${quoteForMessage(given, 200)}: ${(err as Error).message}`,
      );
  }
  let target = given;
  let viaLink = false;
  if (link?.isSymbolicLink()) {
    viaLink = true;
    try {
      target = await realpath(given);
    } catch {
      throw new UsageError(
        'OUTPUT_DANGLING_LINK',
        `${what} ${quoteForMessage(given, 200)} is a symbolic link to a file that does not exist; not writing through it`,
        {
          hint: 'Remove the link or point it at an existing file.',
        },
      );
    }
  }
  const dir = dirname(target);
  let dirStats: Stats;
  try {
    dirStats = await stat(dir);
  } catch {
    throw new UsageError(
      'OUTPUT_NO_DIR',
      `cannot write ${what} ${quoteForMessage(given, 200)}: directory ${quoteForMessage(dir, 200)} does not exist`,
      {
        hint: 'Create the directory first.',
      },
    );
  }
  if (!dirStats.isDirectory())
    throw new UsageError(
      'OUTPUT_NO_DIR',
      `cannot write ${what} ${quoteForMessage(given, 200)}: ${quoteForMessage(dir, 200)} is not a directory`,
    );
  await checkNotPseudoFs(dir, `directory of ${what}`);
  let stats: Stats | undefined;
  try {
    stats = await stat(target);
  } catch {}
  if (stats && !stats.isFile()) {
    throw new UsageError(
      'OUTPUT_NOT_REGULAR',
      `${what} ${quoteForMessage(given, 200)} is a ${fileKind(stats)}; labctl replaces only regular files`,
      {
        hint: stats.isDirectory()
          ? 'Give a file name inside the directory.'
          : 'Use -o - to write to standard output, or give a regular file.',
      },
    );
  }
  return {
    path: target,
    viaLink,
    ...(stats ? { existing: { mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid } } : {}),
  };
}

/**
 * Atomic replace that keeps what the file was: its mode (a 0600 inventory holding a become password
 * stays 0600) and owner, and a symlink stays a symlink (its target is replaced). `mode` applies only
 * to a new file.
 */
export async function writeFileKeeping(path: string, content: string, mode: number, what = 'file'): Promise<string> {
  const target = await outputTarget(path, what);
  const dir = dirname(target.path);
  const tmp = join(dir, `.${basename(target.path)}.labctl-${process.pid}.tmp`);
  try {
    const handle = await open(tmp, fs.O_WRONLY | fs.O_CREAT | fs.O_EXCL | (fs.O_NOFOLLOW ?? 0), 0o600);
    try {
      await handle.writeFile(content, 'utf8');
      if (target.existing && process.getuid?.() === 0) await handle.chown(target.existing.uid, target.existing.gid);
      await handle.chmod(target.existing?.mode ?? mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target.path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw new LabctlError(
      'FILE_WRITE',
      `cannot write ${what} ${quoteForMessage(target.path, 200)}: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const dirHandle = await open(dir, fs.O_RDONLY);
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
  return target.path;
}

/** The marker file of a directory labctl emitted into; it lists the files labctl wrote there. */
export const EMIT_MARKER = '.labctl-emitted';

export interface EmitFile {
  /** Relative to the directory, "/" separated, no "..". */
  file: string;
  content: string;
}

/**
 * Write generated files into `dir`: a new directory, an empty one, or one labctl emitted into before
 * (its marker lists what labctl wrote). Never through a symlink, never over a file labctl did not
 * write, never on /proc or /sys; two files that would share one name on a case-insensitive file
 * system (Windows, where the scripts run) are refused. Everything is checked before the first write.
 */
export async function emitFiles(dir: string, files: readonly EmitFile[], what = 'output directory'): Promise<string[]> {
  const root = resolve(dir);
  const seen = new Map<string, string>();
  for (const { file } of files) {
    if (file.split('/').some((part) => part === '' || part === '.' || part === '..'))
      throw new LabctlError('EMIT_BAD_NAME', `internal: emitted file name ${quoteForMessage(file)}`);
    const key = file.toLowerCase();
    const other = seen.get(key);
    if (other !== undefined) {
      throw new UsageError(
        'EMIT_NAME_CLASH',
        `${quoteForMessage(other)} and ${quoteForMessage(file)} would be one file on Windows`,
        {
          hint: 'Host names that differ only in case or in characters that are not letters or digits map to the same file; rename one host.',
        },
      );
    }
    seen.set(key, file);
  }
  let previous = new Set<string>();
  let rootStats: Stats | undefined;
  try {
    rootStats = await lstat(root);
  } catch {}
  if (rootStats) {
    if (rootStats.isSymbolicLink())
      throw new UsageError(
        'EMIT_DIR_LINK',
        `${what} ${quoteForMessage(root, 200)} is a symbolic link; labctl writes only into a real directory`,
        { hint: 'Give the directory itself, or a new one.' },
      );
    if (!rootStats.isDirectory())
      throw new UsageError(
        'EMIT_DIR_NOT_DIR',
        `${what} ${quoteForMessage(root, 200)} is a ${fileKind(rootStats)}, not a directory`,
        { hint: 'Give a new or empty directory.' },
      );
    await checkNotPseudoFs(root, what);
    const entries = await readdir(root);
    if (entries.length > 0) {
      const marker = await readRegularFile(join(root, EMIT_MARKER), 'emit marker', {
        maxBytes: 1024 * 1024,
        missingOk: true,
      }).catch(() => undefined);
      if (marker === undefined) {
        throw new UsageError(
          'EMIT_DIR_NOT_OURS',
          `${what} ${quoteForMessage(root, 200)} is not empty and labctl did not write it`,
          {
            hint: 'Give a new or empty directory; labctl never writes over files it did not make.',
          },
        );
      }
      previous = new Set(marker.split('\n').filter((line) => line && !line.startsWith('#')));
    }
  } else {
    const parent = dirname(root);
    await checkNotPseudoFs(parent, what);
    try {
      if (!(await stat(parent)).isDirectory()) throw new Error('not a directory');
    } catch {
      throw new UsageError(
        'EMIT_NO_PARENT',
        `cannot make ${what} ${quoteForMessage(root, 200)}: ${quoteForMessage(parent, 200)} is not an existing directory`,
        { hint: 'Create the parent directory first.' },
      );
    }
  }
  // Every target: inside root, not a link, and either absent or written by labctl before.
  for (const { file } of files) {
    const path = pathInside(root, file, 'emitted file');
    let stats: Stats | undefined;
    try {
      stats = await lstat(path);
    } catch {}
    if (stats && (!stats.isFile() || !previous.has(file))) {
      throw new UsageError(
        'EMIT_FILE_NOT_OURS',
        `${quoteForMessage(path, 200)} exists and labctl did not write it (${fileKind(stats)}); not replacing it`,
        {
          hint: 'Give a new or empty directory.',
        },
      );
    }
  }
  await mkdir(root, { recursive: true, mode: 0o755 });
  const written: string[] = [];
  const markerPath = join(root, EMIT_MARKER);
  const all = [...new Set([...previous, ...files.map((f) => f.file)])];
  // The marker first: a run killed midway leaves a directory the next run may write into again.
  await writeEmitMarker(markerPath, all);
  for (const { file, content } of files) {
    const path = pathInside(root, file, 'emitted file');
    const parent = dirname(path);
    if (parent !== root) {
      await mkdir(parent, { recursive: true, mode: 0o755 });
      if ((await lstat(parent)).isSymbolicLink())
        throw new UsageError(
          'EMIT_DIR_LINK',
          `${quoteForMessage(parent, 200)} is a symbolic link; not writing through it`,
        );
    }
    await unlink(path).catch(() => {});
    const handle = await open(path, fs.O_WRONLY | fs.O_CREAT | fs.O_EXCL | (fs.O_NOFOLLOW ?? 0), 0o644);
    try {
      await handle.writeFile(content, 'utf8');
    } finally {
      await handle.close();
    }
    written.push(path);
  }
  return written;
}

async function writeEmitMarker(path: string, files: readonly string[]): Promise<void> {
  await unlink(path).catch(() => {});
  const handle = await open(path, fs.O_WRONLY | fs.O_CREAT | fs.O_EXCL | (fs.O_NOFOLLOW ?? 0), 0o644);
  try {
    await handle.writeFile(
      `# files written by labctl into this directory; it may replace these (and only these)\n${files.join('\n')}\n`,
      'utf8',
    );
  } finally {
    await handle.close();
  }
}
