import { spawn } from 'node:child_process';
import { mkdtemp, readFile, stat, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LockedError, StateError } from './errors.js';
import { StateStore } from './state.js';

/** Until `flock -n` on the file fails: another process holds it. */
async function waitUntilLocked(file: string): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const code = await new Promise<number | null>((resolve) =>
      spawn('flock', ['-n', file, 'true']).on('exit', resolve),
    );
    if (code !== 0) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  throw new Error(`nothing took the lock on ${file}`);
}

async function labDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'labctl-state-'));
}

describe('StateStore', () => {
  it('writes state.json with mode 0600 under .labctl/ and reads back the same VMs', async () => {
    const dir = await labDir();
    const store = new StateStore(dir);
    await store.withLock('demo', 'test', async (session) => {
      session.upsertVm({ name: 'web-01', group: 'web', provider: 'libvirt', addresses: ['10.0.0.5'] });
      await session.save();
    });
    const info = await stat(join(dir, '.labctl', 'state.json'));
    expect(info.mode & 0o777).toBe(0o600);
    const state = await store.read();
    expect(state?.lab).toBe('demo');
    expect(state?.vms.map((vm) => [vm.name, vm.addresses, vm.ssh.hostKeys])).toEqual([['web-01', ['10.0.0.5'], []]]);
    // The lock is free after the command: another run takes it at once.
    await expect(new StateStore(dir).withLock('demo', 'again', async () => 'ran')).resolves.toBe('ran');
  });

  it('refuses a second writer and names the PID holding the lock', async () => {
    const dir = await labDir();
    await mkdir(join(dir, '.labctl'));
    const lockFile = join(dir, '.labctl', 'lock');
    // A live process holding the lock the way labctl does (flock on the lock file), its PID written into it.
    const holder = spawn('flock', ['-x', lockFile, 'sleep', '30']);
    try {
      await waitUntilLocked(lockFile);
      await writeFile(
        lockFile,
        JSON.stringify({
          pid: holder.pid,
          host: (await import('node:os')).hostname(),
          command: 'create',
          startedAt: 'now',
        }),
      );
      const attempt = new StateStore(dir).withLock('demo', 'destroy', async () => 'ran');
      await expect(attempt).rejects.toBeInstanceOf(LockedError);
      await expect(new StateStore(dir).withLock('demo', 'destroy', async () => 'ran')).rejects.toThrow(
        new RegExp(`PID ${holder.pid}`),
      );
    } finally {
      holder.kill();
    }
  });

  it('takes over a lock left by a process that died (SIGKILL)', async () => {
    const dir = await labDir();
    await mkdir(join(dir, '.labctl'));
    const dead = spawn('true');
    await new Promise((resolve) => dead.on('exit', resolve));
    await writeFile(
      join(dir, '.labctl', 'lock'),
      JSON.stringify({ pid: dead.pid, host: (await import('node:os')).hostname() }),
    );
    await expect(new StateStore(dir).withLock('demo', 'create', async () => 'ran')).resolves.toBe('ran');
  });

  it('refuses a corrupt state file and leaves it byte-identical', async () => {
    const dir = await labDir();
    await mkdir(join(dir, '.labctl'));
    const file = join(dir, '.labctl', 'state.json');
    await writeFile(file, '{"version":1,"lab":"x","vms":[{"name":');
    const store = new StateStore(dir);
    await expect(store.withLock('x', 'create', async (s) => s.save())).rejects.toMatchObject({ code: 'STATE_CORRUPT' });
    expect(await readFile(file, 'utf8')).toBe('{"version":1,"lab":"x","vms":[{"name":');
  });

  it('refuses a state file written by a newer labctl without touching it', async () => {
    const dir = await labDir();
    await mkdir(join(dir, '.labctl'));
    const file = join(dir, '.labctl', 'state.json');
    const body = JSON.stringify({ version: 2, lab: 'x', vms: [], futureField: true });
    await writeFile(file, body);
    const error = await new StateStore(dir).read().catch((e) => e);
    expect(error).toBeInstanceOf(StateError);
    expect(error.code).toBe('STATE_NEWER');
    expect(await readFile(file, 'utf8')).toBe(body);
  });

  it('refuses a state file listing the same VM twice', async () => {
    const dir = await labDir();
    await mkdir(join(dir, '.labctl'));
    const vm = { name: 'a', group: 'g', provider: 'libvirt' };
    await writeFile(join(dir, '.labctl', 'state.json'), JSON.stringify({ version: 1, lab: 'x', vms: [vm, vm] }));
    await expect(new StateStore(dir).read()).rejects.toThrow(/twice/);
  });

  it('keeps fields it does not know (written by a newer minor or another tool)', async () => {
    const dir = await labDir();
    await mkdir(join(dir, '.labctl'));
    const vm = { name: 'a', group: 'g', provider: 'libvirt', custom: { owner: 'ops' } };
    await writeFile(
      join(dir, '.labctl', 'state.json'),
      JSON.stringify({ version: 1, lab: 'x', vms: [vm], note: 'keep me' }),
    );
    const store = new StateStore(dir);
    await store.withLock('x', 'test', async (session) => {
      session.upsertVm({ name: 'a', addresses: ['10.1.1.1'] });
      await session.save();
    });
    const saved = JSON.parse(await readFile(store.file, 'utf8'));
    expect(saved.note).toBe('keep me');
    expect(saved.vms[0].custom).toEqual({ owner: 'ops' });
    expect(saved.vms[0].addresses).toEqual(['10.1.1.1']);
  });

  it('serialises concurrent writers in one process: the second waits for nothing and fails fast', async () => {
    const dir = await labDir();
    const store = new StateStore(dir);
    let release!: () => void;
    const first = store.withLock('x', 'first', () => new Promise<void>((resolve) => (release = resolve)));
    await new Promise((r) => setTimeout(r, 20));
    await expect(new StateStore(dir).withLock('x', 'second', async () => undefined)).rejects.toBeInstanceOf(
      LockedError,
    );
    release();
    await first;
  });
});
