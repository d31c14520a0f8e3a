import { type ChildProcess, spawn } from 'node:child_process';
import { constants as fsConstants, readFileSync, rmSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { EXIT_USAGE, LabctlError, LockedError, StateError } from './errors.js';
import { fileKind, readRegularFile } from './files.js';
import { nameSchema, PROXY_JUMP, quoteForMessage } from './names.js';

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
  /** Hyper-V paused it because the volume holding its files is full (Paused-Critical). */
  'paused-critical',
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

/**
 * The state file is documented and hand-editable, so every value in it is untrusted input: one line
 * of printable text (no control characters or escape sequences), bounded in length; names follow the
 * same rules as on the command line (names.ts).
 */
const line = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\u0000-\u001f\u007f-\u009f\u2028\u2029]*$/, 'one line of printable text');
/** A URI, host name or address: printable, no whitespace. */
const word = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\s\u0000-\u001f\u007f-\u009f]*$/, 'one word of printable text (no spaces)');
const timestamp = z
  .string()
  .max(64)
  .regex(/^[0-9TZ:.+-]*$/, 'an ISO 8601 time');
/** Free text from a hypervisor (an error message): any length up to 8 KiB, newlines allowed, no other controls. */
const text = (max: number) =>
  z
    .string()
    .max(max)
    .regex(/^[^\u0000-\u0008\u000b-\u001f\u007f-\u009f]*$/, 'printable text');

export const SshInfoSchema = z.looseObject({
  user: line(256).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  /** OpenSSH public-key lines without the host part: "ssh-ed25519 AAAA...". */
  // Lines that are not OpenSSH key lines are left out of known_hosts by the inventory (with a warning).
  hostKeys: z.array(line(16_384)).max(32).default([]),
  /** Private key file to log in with (a path, never the key itself). */
  keyFile: line(4096).optional(),
  /** Jump hosts to reach the VM through (`ssh -J` syntax; checked like the lab file's ssh.proxyJump). */
  proxyJump: line(2048).regex(PROXY_JUMP).optional(),
});
export type SshInfo = z.infer<typeof SshInfoSchema>;

export const VmRecordSchema = z.looseObject({
  name: nameSchema('vm'),
  group: nameSchema('group'),
  provider: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'a provider name (libvirt, hyperv)'),
  /** Where the VM lives: a libvirt URI, a Hyper-V host name, "local". */
  host: word(4096).default('local'),
  /** Empty: the hypervisor assigns one (Hyper-V dynamic MACs). */
  mac: z
    .string()
    .regex(/^(?:[0-9A-Fa-f]{2}(?:[:-]?[0-9A-Fa-f]{2}){5})?$/, 'a MAC address')
    .optional(),
  addresses: z.array(word(64)).max(64).default([]),
  ssh: SshInfoSchema.default({ hostKeys: [] }),
  state: VmStateSchema.default('unknown'),
  /** Extra Ansible host vars for this VM. */
  vars: z.record(z.string(), VarValueSchema).optional(),
  /** Provider-owned facts needed to manage the VM later (disk paths, ids). */
  resources: z.record(z.string(), z.unknown()).optional(),
  /** Last failure on this VM. */
  error: text(8192).optional(),
  /** Its code (PROVIDER_CALL_FAILED, LIBVIRT_CONNECT, ...), when labctl knows it. */
  errorCode: z
    .string()
    .regex(/^[A-Z0-9_]{1,64}$/, 'an error code')
    .optional(),
  /**
   * The address the VM was given before it booted (static in its seed, or a DHCP reservation):
   * discovery checks SSH there at once instead of waiting for a lease.
   */
  assignedAddress: word(64).optional(),
  /** How that address was given. */
  assign: z.enum(['static', 'reservation']).optional(),
  /** The cloud-init instance-id of the VM's seed (its host keys were pinned when it was made). */
  instanceId: word(128).optional(),
  /** When labctl last started the VM (discovery ignores DHCP leases older than this). Core's own field, never in `resources`. */
  startedAt: timestamp.optional(),
  createdAt: timestamp.optional(),
  updatedAt: timestamp.optional(),
});
export type VmRecord = z.infer<typeof VmRecordSchema>;

export const LabStateSchema = z.looseObject({
  version: z.number().int(),
  lab: nameSchema('lab'),
  vms: z.array(VmRecordSchema).max(1_000_000),
  updatedAt: timestamp.optional(),
});

/** The largest state file labctl reads: a million VMs of a few hundred bytes each fit in under this. */
export const STATE_MAX_BYTES = 512 * 1024 * 1024;
/** Nesting of any value in the state (vars, resources). */
export const STATE_MAX_DEPTH = 32;
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
      exitCode: EXIT_USAGE,
    });
  }
  if (jsonDepthExceeds(raw, STATE_MAX_DEPTH)) {
    throw new StateError(
      'STATE_CORRUPT',
      `${file} is nested more than ${STATE_MAX_DEPTH} levels deep; not a labctl state file`,
      {
        hint: 'labctl will not overwrite it. See docs/state.md for the shape; fix or move the file away.',
        exitCode: EXIT_USAGE,
      },
    );
  }
  const version = (raw as { version?: unknown } | null)?.version;
  if (typeof version === 'number' && version > STATE_VERSION) {
    throw new StateError(
      'STATE_NEWER',
      `${file} has state version ${version}; this labctl understands version ${STATE_VERSION}`,
      {
        hint: 'Upgrade labctl. The file is left untouched.',
        exitCode: EXIT_USAGE,
      },
    );
  }
  const parsed = LabStateSchema.safeParse(raw);
  if (!parsed.success || parsed.data.version !== STATE_VERSION) {
    const issue = parsed.success ? undefined : parsed.error.issues[0];
    const where = issue
      ? ` at ${issue.path.map((part) => quoteForMessage(String(part), 40)).join('.') || '(top)'}: ${issue.message}`
      : ': missing or wrong "version"';
    throw new StateError('STATE_CORRUPT', `${file} does not look like a labctl state file${where}`, {
      hint: 'labctl will not overwrite it. See docs/state.md for the shape; fix or move the file away.',
      exitCode: EXIT_USAGE,
    });
  }
  // Case-insensitively: Hyper-V and NTFS see Web-01 and web-01 as one VM and one disk.
  const names = new Set<string>();
  for (const vm of parsed.data.vms) {
    const key = vm.name.toLowerCase();
    if (names.has(key))
      throw new StateError('STATE_CORRUPT', `${file} lists VM "${vm.name}" twice (names compare without case)`, {
        exitCode: EXIT_USAGE,
      });
    names.add(key);
  }
  return parsed.data;
}

/** True when `value` nests deeper than `limit` (iterative: a 100,000-deep document cannot overflow the stack). */
export function jsonDepthExceeds(value: unknown, limit: number): boolean {
  const stack: Array<[unknown, number]> = [[value, 0]];
  while (stack.length > 0) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(item as Record<string, unknown>)) stack.push([child, depth + 1]);
  }
  return false;
}

/** True while a process with this PID exists on this host (EPERM: it exists, owned by another user). */
export function isProcessAlive(pid: number): boolean {
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
    // A FIFO or device in place of the state file is refused without reading (it would block forever).
    const text = await readRegularFile(this.file, 'state file', {
      maxBytes: STATE_MAX_BYTES,
      missingOk: true,
      code: 'STATE_UNREADABLE',
    });
    return text === undefined ? undefined : parseState(text, this.file);
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

  /**
   * The lab's lock: an advisory `flock` on `.labctl/lock`, held by a tiny child process (`flock(1)`
   * then `cat`) that lives exactly as long as this process: when labctl exits or is killed, the
   * child's stdin closes, it exits, and the kernel drops the lock. So there is no stale lock to take
   * over and no window where two processes both take it over; the file's content (who holds it) is
   * only for the message. Where flock(1) is missing (Windows, macOS), an O_EXCL lock file is the
   * fallback (see acquireExclusiveFile).
   */
  private async acquireLock(command: string): Promise<() => Promise<void>> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const lockStats = await stat(this.lockFile).catch(() => undefined);
    if (lockStats && !lockStats.isFile()) {
      throw new StateError(
        'STATE_LOCK_NOT_FILE',
        `${this.lockFile} is a ${fileKind(lockStats)}, not labctl's lock file`,
        {
          hint: 'Move it away; labctl makes the lock file itself.',
          exitCode: EXIT_USAGE,
        },
      );
    }
    const info: LockInfo = {
      pid: process.pid,
      host: hostname(),
      command: command.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' '),
      startedAt: new Date().toISOString(),
    };
    const holder = await flockHold(this.lockFile);
    if (holder === 'unavailable') return this.acquireExclusiveFile(info);
    if (holder === 'busy') throw this.lockedError(await this.readLock());
    // We hold it: say who we are (for the message another process shows), then hand back the release.
    await writeLockInfo(this.lockFile, info).catch(() => {});
    return async () => {
      await writeLockInfo(this.lockFile, undefined).catch(() => {});
      await releaseFlock(holder);
    };
  }

  private lockedError(holder: LockInfo | undefined): LockedError {
    const who = holder
      ? `labctl PID ${holder.pid} on ${holder.host} (${holder.command}, since ${holder.startedAt})`
      : 'another labctl process';
    return new LockedError('STATE_LOCKED', `lab ${this.labDir} is locked by ${who}`, {
      hint: holder
        ? `Wait for it to finish (PID ${holder.pid}). The lock goes away by itself when that process ends.`
        : 'Wait for it to finish.',
      ...(holder ? { details: { pid: holder.pid, host: holder.host, command: holder.command } } : {}),
    });
  }

  /**
   * Fallback without flock(1): create the lock file with O_EXCL; a lock file whose PID is dead on
   * this host is moved away (rename is atomic, so of several processes only one moves it) and the
   * O_EXCL create is tried again.
   */
  private async acquireExclusiveFile(info: LockInfo): Promise<() => Promise<void>> {
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const handle = await open(this.lockFile, 'wx', 0o600);
        await handle.writeFile(JSON.stringify(info));
        await handle.close();
        const release = () => {
          try {
            if (JSON.parse(readFileSync(this.lockFile, 'utf8')).pid === process.pid)
              rmSync(this.lockFile, { force: true });
          } catch {}
        };
        process.once('exit', release);
        return async () => {
          process.removeListener('exit', release);
          release();
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = await this.readLock();
      if (holder && (holder.host !== hostname() || isProcessAlive(holder.pid))) throw this.lockedError(holder);
      await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      const again = await this.readLock();
      if (JSON.stringify(again) === JSON.stringify(holder))
        await rename(this.lockFile, `${this.lockFile}.stale-${process.pid}`).then(
          () => rm(`${this.lockFile}.stale-${process.pid}`, { force: true }),
          () => {},
        );
    }
    throw new LabctlError('STATE_LOCK_FAILED', `could not take the lock ${this.lockFile}`);
  }

  async readLock(): Promise<LockInfo | undefined> {
    try {
      const text = await readRegularFile(this.lockFile, 'lock file', { maxBytes: 64 * 1024, missingOk: true });
      const parsed = JSON.parse(text ?? '') as Partial<LockInfo>;
      if (typeof parsed.pid !== 'number') return undefined;
      const word = (value: unknown) => (typeof value === 'string' ? quoteForMessage(value, 200).slice(1, -1) : '?');
      return {
        pid: parsed.pid,
        host: typeof parsed.host === 'string' ? word(parsed.host) : hostname(),
        command: word(parsed.command),
        startedAt: word(parsed.startedAt),
      };
    } catch {
      return undefined;
    }
  }

  /**
   * Run `fn` holding the lab's lock. The state is read (and validated) after the lock is taken, so a
   * corrupt or newer file stops the command before it changes anything.
   */
  async withLock<T>(defaultLab: string, command: string, fn: (session: StateSession) => Promise<T>): Promise<T> {
    const release = await this.acquireLock(command);
    try {
      const session = new StateSession(this, await this.load(defaultLab));
      return await fn(session);
    } finally {
      await release();
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

/**
 * Take an exclusive flock on `file` in a child process (`sh` opens it as fd 9, `flock -xn 9`, then
 * `exec cat` keeps fd 9 open until our end of its stdin closes). "busy" when another process holds
 * it, "unavailable" when there is no flock(1) here.
 */
async function flockHold(file: string): Promise<ChildProcess | 'busy' | 'unavailable'> {
  if (process.platform === 'win32') return 'unavailable';
  return new Promise((resolvePromise, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(
        'sh',
        [
          '-c',
          'exec 9>>"$1" || exit 71; command -v flock >/dev/null 2>&1 || exit 72; flock -xn 9 || exit 75; echo locked; exec cat >/dev/null',
          'labctl-lock',
          file,
        ],
        {
          stdio: ['pipe', 'pipe', 'ignore'],
        },
      );
    } catch {
      resolvePromise('unavailable');
      return;
    }
    let out = '';
    const onData = (chunk: Buffer) => {
      out += chunk.toString();
      if (out.includes('locked\n')) {
        child.stdout?.removeListener('data', onData);
        child.removeListener('exit', onExit);
        // The child must not keep labctl alive; it ends when labctl's end of the pipe closes.
        (child.stdout as unknown as { unref?: () => void })?.unref?.();
        (child.stdin as unknown as { unref?: () => void })?.unref?.();
        child.unref();
        resolvePromise(child);
      }
    };
    const onExit = (code: number | null) => {
      if (code === 75) resolvePromise('busy');
      else if (code === 72) resolvePromise('unavailable');
      else reject(new LabctlError('STATE_LOCK_FAILED', `could not take the lock ${file} (flock exited with ${code})`));
    };
    child.stdout?.on('data', onData);
    child.once('exit', onExit);
    child.once('error', () => resolvePromise('unavailable'));
  });
}

async function releaseFlock(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  // Keep labctl alive until the child has gone, so the lock is free when this returns.
  child.ref();
  await new Promise<void>((resolvePromise) => {
    child.once('exit', () => resolvePromise());
    child.stdin?.end();
  });
}

/** Who holds the lock, written into the lock file by the holder; cleared on release (the file stays). */
async function writeLockInfo(file: string, info: LockInfo | undefined): Promise<void> {
  const handle = await open(file, fsConstants.O_WRONLY | (fsConstants.O_NOFOLLOW ?? 0));
  try {
    await handle.truncate(0);
    if (info) await handle.write(JSON.stringify(info), 0);
  } finally {
    await handle.close();
  }
}
