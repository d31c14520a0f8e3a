import { constants } from 'node:fs';
import { access, lstat, mkdir, readFile, rm, statfs, writeFile } from 'node:fs/promises';
import { basename, dirname, join, posix, resolve } from 'node:path';
import { pathInside } from '@labctl/core/names';
import type { Check } from '@labctl/core/checks';
import {
  createFullCopy,
  createOverlay,
  GoldenImageError,
  type GoldenInfo,
  type ImageFormat,
  imageFormatFor,
  inspectGolden,
} from './disks.js';
import { run } from './exec.js';
import type { Virsh } from './virsh.js';
import { escapeXml } from './xml.js';

/**
 * Where a VM's own files live and how they are made: the one thing that differs between a libvirt on
 * this machine and one on another host.
 *
 * - `LocalStore` (local URIs, no `libvirt.pool`): files in diskDir, disks made with this machine's
 *   qemu-img, removed with rm. Fast (no daemon round trip) and needs nothing set up in libvirt.
 * - `PoolStore` (remote URIs, or `libvirt.pool` set): everything through libvirt's storage API, so
 *   it works wherever the daemon is: the golden image must be a volume of some storage pool on that
 *   host (looked up by its path as that host sees it), VM disks and console logs are volumes of one
 *   pool (`libvirt.pool`, default `default`), made with vol-create and removed with vol-delete.
 *
 * Both keep the same guarantees: the golden image is only ever a backing file or a copy source
 * (opened read-only), and only a VM's own `NAME.qcow2` / `NAME.console.log` are ever removed.
 */
export interface ProbeConsole {
  /** The console file's path as the libvirt host sees it. */
  path: string;
  read(): Promise<string>;
  remove(): Promise<void>;
}

export interface DiskStore {
  readonly kind: 'local' | 'pool';
  /** Directory of the VMs' disks and console logs, as the libvirt host sees it. */
  location(): Promise<string>;
  /** Pool exists and is active (nothing to check locally); with dryRun nothing is made. */
  preflight(options?: { dryRun?: boolean }): Promise<Check[]>;
  inspectGolden(path: string): Promise<GoldenInfo>;
  /** An error/warning when a kernel or initrd is not there (undefined when it is). */
  checkBootFile(path: string): Promise<Check | undefined>;
  diskPath(name: string): Promise<string>;
  consolePath(name: string): Promise<string>;
  /** Replaces any leftover disk of this VM (no domain uses it) and makes a new one; returns its path. */
  createDisk(name: string, golden: GoldenInfo, clone: 'linked' | 'full'): Promise<string>;
  /** Where the VM's seed image goes (`NAME.seed.iso`). */
  seedPath(name: string): Promise<string>;
  /** Writes the VM's seed image (mode 0600: it holds the VM's private host keys); returns its path. */
  writeSeed(name: string, image: Buffer): Promise<string>;
  /** Makes (empty) the file the VM's serial console is written to; returns its path. */
  prepareConsole(name: string): Promise<string>;
  /** Removes one of a VM's own files (only inside this store's directory or pool); a file that is already gone is fine. */
  remove(path: string): Promise<void>;
  /** True when `path` is a disk labctl could have made: a qcow2 image (the only format it makes). */
  isOwnDisk(path: string): Promise<boolean>;
  /** A console file for the accelerator probe VM. */
  probeConsole(name: string): Promise<ProbeConsole>;
  /** Free bytes where the VMs' disks live (snapshots grow them there). */
  freeBytes(): Promise<number>;
}

export class LocalStore implements DiskStore {
  readonly kind = 'local';
  constructor(private readonly dir: string) {}

  async location(): Promise<string> {
    return this.dir;
  }

  async preflight(options: { dryRun?: boolean } = {}): Promise<Check[]> {
    if (!options.dryRun) await mkdir(this.dir, { recursive: true, mode: 0o700 });
    return [];
  }

  async freeBytes(): Promise<number> {
    const stats = await statfs(this.dir);
    return stats.bavail * stats.bsize;
  }

  inspectGolden(path: string): Promise<GoldenInfo> {
    return inspectGolden(path);
  }

  async checkBootFile(path: string): Promise<Check | undefined> {
    try {
      await access(path, constants.R_OK);
      return undefined;
    } catch {
      return {
        id: 'boot.file',
        level: 'error',
        subject: path,
        message: `boot file ${path} does not exist`,
        hint: 'Check kernel:/initrd: in labctl.yaml.',
      };
    }
  }

  async diskPath(name: string): Promise<string> {
    return pathInside(this.dir, `${name}.qcow2`, 'VM disk');
  }

  async consolePath(name: string): Promise<string> {
    return pathInside(this.dir, `${name}.console.log`, 'console log');
  }

  async createDisk(name: string, golden: GoldenInfo, clone: 'linked' | 'full'): Promise<string> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const disk = await this.diskPath(name);
    await rm(disk, { force: true });
    if (clone === 'full') await createFullCopy(golden, disk);
    else await createOverlay(golden, disk);
    return disk;
  }

  async prepareConsole(name: string): Promise<string> {
    return this.consolePath(name);
  }

  async seedPath(name: string): Promise<string> {
    return pathInside(this.dir, `${name}.seed.iso`, 'seed image');
  }

  async writeSeed(name: string, image: Buffer): Promise<string> {
    const path = await this.seedPath(name);
    await this.remove(path);
    // O_EXCL: never written through a link or file planted in the lab's directory.
    await writeFile(path, image, { mode: 0o600, flag: 'wx' });
    return path;
  }

  async remove(path: string): Promise<void> {
    if (dirname(resolve(path)) !== resolve(this.dir))
      throw new StorageError(
        'NOT_IN_LAB',
        `refusing to delete ${JSON.stringify(path)}: it is not in the lab's disk directory ${this.dir}`,
      );
    // Never follow a link planted in the lab's directory: remove the link itself, or a regular file.
    const stats = await lstat(path).catch(() => undefined);
    if (stats && !stats.isFile() && !stats.isSymbolicLink())
      throw new StorageError('NOT_A_FILE', `refusing to delete ${JSON.stringify(path)}: it is not a regular file`);
    await rm(path, { force: true });
  }

  async isOwnDisk(path: string): Promise<boolean> {
    const stats = await lstat(path).catch(() => undefined);
    if (!stats?.isFile()) return false;
    try {
      const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', path], { timeoutMs: 30_000 });
      return (JSON.parse(stdout) as { format?: string }).format === 'qcow2';
    } catch {
      return false;
    }
  }

  async probeConsole(name: string): Promise<ProbeConsole> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = pathInside(this.dir, `${name}.console`, 'console file');
    await rm(path, { force: true });
    return { path, read: () => readFile(path, 'utf8').catch(() => ''), remove: () => rm(path, { force: true }) };
  }
}

export class StorageError extends GoldenImageError {}

const NOT_FOUND = /Storage volume not found|no storage vol with matching|failed to get vol/i;
const EXISTS = /already exists|File exists/i;

function text(err: unknown): string {
  return `${(err as Error)?.message ?? ''} ${JSON.stringify((err as { details?: unknown })?.details ?? '')}`;
}

/** The first `<tag>…</tag>` inside `<section>` of libvirt XML. */
function xmlField(xml: string, section: string, tag: string): string | undefined {
  const inner = new RegExp(`<${section}[\\s>]([\\s\\S]*?)</${section}>`).exec(xml)?.[1] ?? '';
  return new RegExp(`<${tag}>([^<]*)</${tag}>`).exec(inner)?.[1]?.trim();
}

/** Volume XML as `virsh vol-dumpxml` prints it: path, format, capacity, mode. Backing store left out. */
export function parseVolumeXml(xml: string): { path?: string; format?: string; capacity: number; mode?: number } {
  const own = xml.replace(/<backingStore>[\s\S]*<\/backingStore>/, '');
  const capacity = Number(/<capacity[^>]*>(\d+)<\/capacity>/.exec(own)?.[1] ?? 0);
  const format = /<target>[\s\S]*?<format type='([^']+)'/.exec(own)?.[1];
  const mode = xmlField(own, 'permissions', 'mode');
  const path = xmlField(own, 'target', 'path');
  return {
    ...(path ? { path } : {}),
    ...(format ? { format } : {}),
    capacity,
    ...(mode ? { mode: Number.parseInt(mode, 8) } : {}),
  };
}

export function parsePoolTarget(xml: string): string | undefined {
  return xmlField(xml, 'target', 'path');
}

/** Volume XML for a VM disk: qcow2 (compat 1.1), owner-only, on the golden image unless a full copy. */
export function volumeXml(name: string, capacity: number, backing?: { path: string; format: ImageFormat }): string {
  const e = escapeXml;
  return [
    '<volume>',
    `  <name>${e(name)}</name>`,
    `  <capacity unit='bytes'>${e(capacity)}</capacity>`,
    "  <target><format type='qcow2'/><compat>1.1</compat><permissions><mode>0600</mode></permissions></target>",
    ...(backing
      ? [`  <backingStore><path>${e(backing.path)}</path><format type='${e(backing.format)}'/></backingStore>`]
      : []),
    '</volume>',
    '',
  ].join('\n');
}

export class PoolStore implements DiskStore {
  readonly kind = 'pool';
  private target: string | undefined;

  /** `xmlDir`: a local directory for the volume XML handed to virsh (virsh reads it on this machine). */
  constructor(
    private readonly virsh: Virsh,
    readonly pool: string,
    private readonly xmlDir: string,
  ) {}

  async location(): Promise<string> {
    if (!this.target) {
      const target = parsePoolTarget(await this.virsh.text(['pool-dumpxml', this.pool], { timeoutMs: 30_000 }));
      if (!target)
        throw new StorageError(
          'POOL_NO_TARGET',
          `storage pool ${this.pool} at ${this.virsh.uri} has no target directory`,
          { hint: 'Use a dir (or fs/netfs) pool.' },
        );
      this.target = target;
    }
    return this.target;
  }

  async freeBytes(): Promise<number> {
    const info = await this.virsh.text(['pool-info', '--bytes', this.pool], { timeoutMs: 30_000 });
    const available = /^Available:\s+(\d+)/m.exec(info);
    if (!available)
      throw new StorageError('POOL_INFO', `virsh pool-info ${this.pool} did not say how much space is available`);
    return Number(available[1]);
  }

  async preflight(options: { dryRun?: boolean } = {}): Promise<Check[]> {
    let info: string;
    try {
      info = await this.virsh.text(['pool-info', this.pool], { timeoutMs: 30_000 });
    } catch {
      return [
        {
          id: 'libvirt.pool',
          level: 'error',
          subject: this.pool,
          message: `storage pool "${this.pool}" does not exist at ${this.virsh.uri}; VM disks are made there`,
          hint: `virsh -c '${this.virsh.uri}' pool-define-as ${this.pool} dir --target /var/lib/libvirt/images && virsh -c '${this.virsh.uri}' pool-build ${this.pool} && virsh -c '${this.virsh.uri}' pool-start ${this.pool}; or set libvirt.pool in labctl.yaml.`,
        },
      ];
    }
    if (!/^State:\s+running/m.test(info)) {
      return [
        {
          id: 'libvirt.pool',
          level: 'error',
          subject: this.pool,
          message: `storage pool "${this.pool}" is not active`,
          hint: `virsh -c '${this.virsh.uri}' pool-start ${this.pool}`,
        },
      ];
    }
    const dir = await this.location();
    if (!options.dryRun) await mkdir(this.xmlDir, { recursive: true, mode: 0o700 });
    return [
      {
        id: 'libvirt.pool',
        level: 'ok',
        subject: this.pool,
        message: `VM disks go to storage pool ${this.pool} (${dir})`,
      },
    ];
  }

  /** `vol-dumpxml PATH`; when the pool holding PATH has not seen the file yet, refresh it and look again. */
  private async volume(path: string): Promise<string | undefined> {
    try {
      return await this.virsh.text(['vol-dumpxml', path], { timeoutMs: 30_000 });
    } catch (err) {
      if (!NOT_FOUND.test(text(err))) throw err;
    }
    let refreshed = false;
    const pools = (await this.virsh.text(['pool-list', '--name'], { timeoutMs: 30_000 }))
      .split('\n')
      .map((line) => line.trim())
      .filter(Boolean);
    for (const pool of pools) {
      const target = parsePoolTarget(
        await this.virsh.text(['pool-dumpxml', pool], { timeoutMs: 30_000 }).catch(() => ''),
      );
      if (target && posix.dirname(path) === target.replace(/\/+$/, '')) {
        await this.virsh.run(['pool-refresh', pool], { timeoutMs: 60_000 }).catch(() => {});
        refreshed = true;
      }
    }
    if (!refreshed) return undefined;
    try {
      return await this.virsh.text(['vol-dumpxml', path], { timeoutMs: 30_000 });
    } catch (err) {
      if (NOT_FOUND.test(text(err))) return undefined;
      throw err;
    }
  }

  async inspectGolden(path: string): Promise<GoldenInfo> {
    const format = imageFormatFor(path);
    if (!format) {
      throw new StorageError('GOLDEN_FORMAT', `cannot tell the format of golden image ${path} from its name`, {
        hint: 'Name it .vhd, .vhdx, .qcow2, .raw or .img.',
      });
    }
    if (!path.startsWith('/')) {
      throw new StorageError(
        'GOLDEN_MISSING',
        `golden image ${path}: on a libvirt host reached through ${this.virsh.uri} it must be an absolute path as that host sees it`,
      );
    }
    const xml = await this.volume(path);
    if (!xml) {
      throw new StorageError(
        'GOLDEN_MISSING',
        `golden image ${path} is not a volume of any active storage pool at ${this.virsh.uri}`,
        {
          hint: `The golden image is named by its path on the libvirt host and must be in a storage pool there, e.g. virsh -c '${this.virsh.uri}' pool-define-as labctl-golden dir --target ${posix.dirname(path)} && virsh -c '${this.virsh.uri}' pool-start labctl-golden`,
        },
      );
    }
    const volume = parseVolumeXml(xml);
    // libvirt probes the format itself: a corrupt .vhd reads as raw.
    if (volume.format && volume.format !== format) {
      throw new StorageError(
        'GOLDEN_CORRUPT',
        `golden image ${path} is not a readable ${format} image (libvirt reads it as ${volume.format})`,
        {
          hint: 'Check the file on the host (qemu-img check) or rebuild it; nothing was created.',
        },
      );
    }
    if (volume.capacity <= 0)
      throw new StorageError('GOLDEN_CORRUPT', `golden image ${path} reports a virtual size of 0`, {
        hint: 'Rebuild the golden image.',
      });
    return {
      path,
      format,
      virtualSize: volume.capacity,
      writable: volume.mode === undefined ? true : (volume.mode & 0o222) !== 0,
    };
  }

  async checkBootFile(path: string): Promise<Check | undefined> {
    if (!path.startsWith('/')) {
      return {
        id: 'boot.file',
        level: 'error',
        subject: path,
        message: `boot file ${path}: give the absolute path as the libvirt host sees it`,
      };
    }
    if (await this.volume(path)) return undefined;
    return {
      id: 'boot.file',
      level: 'warning',
      subject: path,
      message: `boot file ${path} is in no storage pool at ${this.virsh.uri}, so labctl cannot check that it exists there`,
      hint: 'Put kernel and initrd in a storage pool directory on the host (e.g. beside the golden image) to have them checked before anything is created.',
    };
  }

  async diskPath(name: string): Promise<string> {
    return posixInside(await this.location(), `${name}.qcow2`);
  }

  async consolePath(name: string): Promise<string> {
    return posixInside(await this.location(), `${name}.console.log`);
  }

  /** vol-create, and when a leftover file of that name is in the way, delete it and create again. */
  private async createVolume(name: string, xml: string, from?: string): Promise<string> {
    await mkdir(this.xmlDir, { recursive: true, mode: 0o700 });
    const xmlFile = join(this.xmlDir, `${name}.volume.xml`);
    await writeFile(xmlFile, xml, { mode: 0o600 });
    const path = posix.join(await this.location(), name);
    const create = () =>
      from
        ? this.virsh.run(['vol-create-from', this.pool, xmlFile, from], { timeoutMs: 30 * 60_000 })
        : this.virsh.run(['vol-create', this.pool, xmlFile], { timeoutMs: 60_000 });
    try {
      await this.remove(path);
      try {
        await create();
      } catch (err) {
        if (!EXISTS.test(text(err))) throw err;
        // A file the pool has not seen yet (left by an interrupted run before the last refresh).
        await this.virsh.run(['pool-refresh', this.pool], { timeoutMs: 60_000 });
        await this.remove(path);
        await create();
      }
    } finally {
      await rm(xmlFile, { force: true });
    }
    return path;
  }

  async createDisk(name: string, golden: GoldenInfo, clone: 'linked' | 'full'): Promise<string> {
    const volume = `${name}.qcow2`;
    if (clone === 'full') return this.createVolume(volume, volumeXml(volume, golden.virtualSize), golden.path);
    return this.createVolume(
      volume,
      volumeXml(volume, golden.virtualSize, { path: golden.path, format: golden.format }),
    );
  }

  async seedPath(name: string): Promise<string> {
    return posixInside(await this.location(), `${name}.seed.iso`);
  }

  /** A raw volume of the image's size, filled with vol-upload over the same connection. */
  async writeSeed(name: string, image: Buffer): Promise<string> {
    const volume = `${name}.seed.iso`;
    const path = await this.createVolume(
      volume,
      `<volume><name>${escapeXml(volume)}</name><capacity unit='bytes'>${image.length}</capacity><target><format type='raw'/><permissions><mode>0600</mode></permissions></target></volume>\n`,
    );
    await mkdir(this.xmlDir, { recursive: true, mode: 0o700 });
    const local = join(this.xmlDir, volume);
    await writeFile(local, image, { mode: 0o600 });
    try {
      await this.virsh.run(['vol-upload', '--pool', this.pool, volume, local], { timeoutMs: 120_000 });
    } finally {
      await rm(local, { force: true });
    }
    return path;
  }

  /** The VM's seed image as the pool holds it (vol-download over the same connection). */
  async readSeed(name: string): Promise<Buffer> {
    const volume = `${name}.seed.iso`;
    await mkdir(this.xmlDir, { recursive: true, mode: 0o700 });
    const local = join(this.xmlDir, `${volume}.download`);
    try {
      await this.virsh.run(['vol-download', '--pool', this.pool, volume, local], { timeoutMs: 120_000 });
      return await readFile(local);
    } finally {
      await rm(local, { force: true });
    }
  }

  async prepareConsole(name: string): Promise<string> {
    const volume = `${name}.console.log`;
    return this.createVolume(
      volume,
      `<volume><name>${escapeXml(volume)}</name><capacity unit='bytes'>0</capacity><target><format type='raw'/></target></volume>\n`,
    );
  }

  async isOwnDisk(path: string): Promise<boolean> {
    const xml = await this.volume(path).catch(() => undefined);
    return xml !== undefined && /<format\s+type=['"]qcow2['"]/.test(xml);
  }

  /** vol-delete by path, only inside this store's pool directory. */
  async remove(path: string): Promise<void> {
    const dir = (await this.location()).replace(/\/+$/, '');
    if (posix.dirname(path) !== dir)
      throw new StorageError(
        'NOT_IN_POOL',
        `refusing to delete ${path}: it is not in storage pool ${this.pool} (${dir})`,
      );
    try {
      await this.virsh.run(['vol-delete', '--pool', this.pool, posix.basename(path)], { timeoutMs: 60_000 });
    } catch (err) {
      if (!NOT_FOUND.test(text(err))) throw err;
    }
  }

  async probeConsole(name: string): Promise<ProbeConsole> {
    const path = await this.prepareConsole(name);
    const local = join(this.xmlDir, basename(path));
    return {
      path,
      read: async () => {
        try {
          await this.virsh.run(['vol-download', '--pool', this.pool, posix.basename(path), local], {
            timeoutMs: 20_000,
          });
          return await readFile(local, 'utf8');
        } catch {
          return '';
        } finally {
          await rm(local, { force: true });
        }
      },
      remove: () => this.remove(path),
    };
  }
}

/** A file name inside a pool directory on the libvirt host (a POSIX path), refused if it would leave it. */
function posixInside(dir: string, file: string): string {
  const path = posix.join(dir, file);
  if (posix.dirname(path) !== dir.replace(/\/+$/, '') || file.includes('/'))
    throw new StorageError('PATH_OUTSIDE', `${JSON.stringify(file)} would be outside storage pool directory ${dir}`);
  return path;
}
