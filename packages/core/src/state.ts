import { constants as fsConstants, readFileSync, rmSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { LabctlError, LockedError, StateError } from './errors.js';

/**
 * The lab's state: `.labctl/state.json` under the lab directory. Documented in docs/state.md; other
 * tools read it, so the shape only grows. Written atomically (temp file, fsync, rename, fsync of the
 * directory), mode 0600, and only while holding `.labctl/lock`. A corrupt file or one written by a
 * newer labctl is refused and never overwritten. No secrets are ever stored here.
 */
export const STATE_VERSION = 1;
export const STATE_DIR = '.labctl';
export const STATE_FILE = 'state.json';
export const LOCK_FILE = 'lock';

export const VmStateSchema = z.enum([
  'planned',
  'creating',
  'created',
  'starting',
  'running',
  'stopped',
  'failed',
  'destroying',
  'missing',
  'unknown',
]);
export type VmState = z.infer<typeof VmStateSchema>;

const ScalarSchema = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export type VarValue = string | number | boolean | null | VarValue[] | { [key: string]: VarValue };
export const VarValueSchema: z.ZodType<VarValue> = z.lazy(() =>
  z.union([ScalarSchema, z.array(VarValueSchema), z.record(z.string(), VarValueSchema)]),
);

export const SshInfoSchema = z.looseObject({
  user: z.string().optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** OpenSSH public-key lines without the host part: "ssh-ed25519 AAAA...". */
  hostKeys: z.array(z.string()).default([]),
  /** Private key file to log in with (a path, never the key itself). */
  keyFile: z.string().optional(),
});
export type SshInfo = z.infer<typeof SshInfoSchema>;

export const VmRecordSchema = z.looseObject({
  name: z.string().min(1),
  group: z.string().min(1),
  provider: z.string().min(1),
  /** Where the VM lives: a libvirt URI, a Hyper-V host name, "local". */
  host: z.string().default('local'),
  mac: z.string().optional(),
  addresses: z.array(z.string()).default([]),
  ssh: SshInfoSchema.default({ hostKeys: [] }),
  state: VmStateSchema.default('unknown'),
  /** Extra Ansible host vars for this VM. */
  vars: z.record(z.string(), VarValueSchema).optional(),
  /** Provider-owned facts needed to manage the VM later (disk paths, ids). */
  resources: z.record(z.string(), z.unknown()).optional(),
  /** Last failure on this VM, one line. */
  error: z.string().optional(),
  createdAt: z.string().optional(),
  updatedAt: z.string().optional(),
});
export type VmRecord = z.infer<typeof VmRecordSchema>;

export const LabStateSchema = z.looseObject({
  version: z.number().int(),
  lab: z.string().min(1),
  vms: z.array(VmRecordSchema),
  updatedAt: z.string().optional(),
});
export type LabState = z.infer<typeof LabStateSchema>;

export function emptyState(lab: string): LabState {
  return { version: STATE_VERSION, lab, vms: [] };
}

export function resolveLabDir(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  return resolve(flag ?? env.LABCTL_LAB_DIR ?? process.cwd());
}

export function parseState(text: string, file: string): LabState {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (cause) {
    throw new StateError('STATE_CORRUPT', `${file} is not valid JSON: ${(cause as Error).message}`, {
      hint: 'labctl will not overwrite it. Restore it from a backup, or move it away to start an empty state.',
      cause,
    });
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version > STATE_VERSION) {
    throw new StateError('STATE_NEWER', `${file} has state version ${version}; this labctl understands version ${STATE_VERSION}`, {
      hint: 'Upgrade labctl. The file is left untouched.',
    });
  }
  const parsed = LabStateSchema.safeParse(raw);
  if (!parsed.success || parsed.data.version !== STATE_VERSION) {
    const issue = parsed.success ? undefined : parsed.error.issues[0];
    const where = issue ? ` at ${issue.path.join('.') || '(top)'}: ${issue.message}` : ': missing or wrong "version"';
    throw new StateError('STATE_CORRUPT', `${file} does not look like a labctl state file${where}`, {
      hint: 'labctl will not overwrite it. See docs/state.md for the shape; fix or move the file away.',
    });
  }
  const names = new Set<string>();
  for (const vm of parsed.data.vms) {
    if (names.has(vm.name)) throw new StateError('STATE_CORRUPT', `${file} lists VM "${vm.name}" twice`);
    names.add(vm.name);
  }
  return parsed.data;
}

function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface LockInfo {
  pid: number;
  host: string;
  command: string;
  startedAt: string;
}

/** A change to the state while holding the lock. `save()` writes atomically; call it after every VM. */
export class StateSession {
  constructor(
    private readonly store: StateStore,
    public state: LabState,
  ) {}

  vm(name: string): VmRecord | undefined {
    return this.state.vms.find((vm) => vm.name === name);
  }

  /** Insert or merge a VM record (by name), stamped with updatedAt. */
  upsertVm(record: Partial<VmRecord> & { name: string }): VmRecord {
    const now = new Date().toISOString();
    const index = this.state.vms.findIndex((vm) => vm.name === record.name);
    if (index >= 0) {
      const merged = { ...this.state.vms[index], ...record, updatedAt: now } as VmRecord;
      this.state.vms[index] = merged;
      return merged;
    }
    const created = VmRecordSchema.parse({ createdAt: now, ...record, updatedAt: now });
    this.state.vms.push(created);
    return created;
  }

  removeVm(name: string): boolean {
    const before = this.state.vms.length;
    this.state.vms = this.state.vms.filter((vm) => vm.name !== name);
    return this.state.vms.length !== before;
  }

  async save(): Promise<void> {
    await this.store.write(this.state);
  }
}

export class StateStore {
  readonly dir: string;
  readonly file: string;
  readonly lockFile: string;

  constructor(readonly labDir: string) {
    this.dir = join(labDir, STATE_DIR);
    this.file = join(this.dir, STATE_FILE);
    this.lockFile = join(this.dir, LOCK_FILE);
  }

  /** The state, or undefined when the lab has none yet. Refuses corrupt and newer files. */
  async read(): Promise<LabState | undefined> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new StateError('STATE_UNREADABLE', `cannot read ${this.file}: ${(err as Error).message}`, { cause: err });
    }
    return parseState(text, this.file);
  }

  async load(defaultLab: string): Promise<LabState> {
    return (await this.read()) ?? emptyState(defaultLab);
  }

  /** Atomic write: temp file (0600) + fsync + rename + fsync(dir). Only call while holding the lock. */
  async write(state: LabState): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const body = `${JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2)}\n`;
    const tmp = `${this.file}.tmp-${process.pid}`;
    const handle = await open(tmp, 'w', 0o600);
    try {
      await handle.writeFile(body, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, this.file);
    const dirHandle = await open(this.dir, fsConstants.O_RDONLY);
    try {
      await dirHandle.sync();
    } finally {
      await dirHandle.close();
    }
  }

  private async acquireLock(command: string): Promise<void> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const info: LockInfo = { pid: process.pid, host: hostname(), command, startedAt: new Date().toISOString() };
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        const handle = await open(this.lockFile, 'wx', 0o600);
        await handle.writeFile(JSON.stringify(info));
        await handle.close();
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await this.readLock();
      if (holder && holder.host === hostname() && !isProcessAlive(holder.pid)) {
        // Left behind by a process that died (SIGKILL, crash): safe to take over.
        await rm(this.lockFile, { force: true });
        continue;
      }
      if (!holder) {
        // Being written right now, or garbage: give the writer a moment, then treat as stale.
        await new Promise((r) => setTimeout(r, 50));
        const again = await this.readLock();
        if (!again && attempt > 0) await rm(this.lockFile, { force: true });
        continue;
      }
      throw new LockedError(
        'STATE_LOCKED',
        `lab ${this.labDir} is locked by labctl PID ${holder.pid} on ${holder.host} (${holder.command}, since ${holder.startedAt})`,
        {
          hint: `Wait for it to finish. If PID ${holder.pid} is gone, remove ${this.lockFile}.`,
          details: { pid: holder.pid, host: holder.host, command: holder.command },
        },
      );
    }
    throw new LabctlError('STATE_LOCK_FAILED', `could not take the lock ${this.lockFile}`);
  }

  async readLock(): Promise<LockInfo | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.lockFile, 'utf8')) as Partial<LockInfo>;
      if (typeof parsed.pid !== 'number') return undefined;
      return { pid: parsed.pid, host: parsed.host ?? hostname(), command: parsed.command ?? '?', startedAt: parsed.startedAt ?? '?' };
    } catch {
      return undefined;
    }
  }

  private async releaseLock(): Promise<void> {
    const holder = await this.readLock();
    if (holder?.pid === process.pid) await rm(this.lockFile, { force: true });
  }

  /**
   * Run `fn` holding the lab's lock. The state is read (and validated) after the lock is taken, so a
   * corrupt or newer file stops the command before it changes anything.
   */
  async withLock<T>(defaultLab: string, command: string, fn: (session: StateSession) => Promise<T>): Promise<T> {
    await this.acquireLock(command);
    // On process.exit() the async release below never runs: drop our own lock synchronously.
    const release = () => {
      try {
        if (JSON.parse(readFileSync(this.lockFile, 'utf8')).pid === process.pid) rmSync(this.lockFile, { force: true });
      } catch {}
    };
    process.once('exit', release);
    try {
      const session = new StateSession(this, await this.load(defaultLab));
      return await fn(session);
    } finally {
      process.removeListener('exit', release);
      await this.releaseLock();
    }
  }

  async exists(): Promise<boolean> {
    try {
      await stat(this.file);
      return true;
    } catch {
      return false;
    }
  }
}
