import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fingerprintTree, type FileFact, leftoverTemporaries } from '@labctl/core/testing/hostile';
import { bin } from '../e2e/run.js';

/**
 * The binary side of the safety suite: the built `labctl`, as a careless user or an attacker would run
 * it, in a sandbox that holds the lab and, beside it, a "victim" directory whose files, modes and links
 * must come out of every run exactly as they went in.
 */
export interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The run did not end in time: labctl hung (on a FIFO, in a loop). */
  hung: boolean;
}

export function labctl(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number; input?: string } = {}): Promise<Result> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    child.stdin.end(options.input ?? '');
    let hung = false;
    const timer = setTimeout(() => {
      hung = true;
      child.kill('SIGKILL');
    }, options.timeoutMs ?? 30_000);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr, hung });
    });
  });
}

/** `items` through `fn`, `limit` at a time (the machine has 2 cores; each run is a node start). */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(limit, items.length) }, async () => {
      while (next < items.length) {
        const index = next++;
        results[index] = await fn(items[index]!, index);
      }
    }),
  );
  return results;
}

export interface Sandbox {
  root: string;
  /** A directory outside every lab, with files of several modes, a link, names that look like labctl's. */
  victim: string;
  before: Record<string, FileFact>;
  /** A new, empty lab directory inside the sandbox. */
  lab(name?: string): Promise<string>;
  /** The victim directory is as it was, and no temporary file is left anywhere in the sandbox. */
  untouched(): Promise<{ changed: string[]; temporaries: string[] }>;
}

let labs = 0;

export async function sandbox(): Promise<Sandbox> {
  const root = await mkdtemp(join(tmpdir(), 'labctl-hostile-'));
  const victim = join(root, 'victim');
  await mkdir(join(victim, 'web'), { recursive: true });
  for (const [name, mode, content] of [
    ['web-01.qcow2', 0o644, 'not a disk of any lab'],
    ['resources.xml', 0o600, '<mine/>'],
    ['secrets.ini', 0o600, '[all:vars]\nansible_become_password=hunter2\n'],
    ['web/web-01.qcow2', 0o640, 'deeper'],
    ['known_hosts', 0o644, 'host.example ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIMine\n'],
    ['run.sh', 0o755, '#!/bin/sh\n'],
  ] as const) {
    await writeFile(join(victim, name), content);
    await chmod(join(victim, name), mode);
  }
  await symlink('secrets.ini', join(victim, 'link-to-secrets'));
  const before = await fingerprintTree(victim);
  return {
    root,
    victim,
    before,
    async lab(name) {
      const dir = join(root, name ?? `lab${++labs}`);
      await mkdir(dir, { recursive: true });
      return dir;
    },
    async untouched() {
      const after = await fingerprintTree(victim);
      const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
      const changed = [...keys].filter((key) => JSON.stringify(before[key]) !== JSON.stringify(after[key]));
      return { changed, temporaries: await leftoverTemporaries(root) };
    },
  };
}

/** Output that reached the terminal must carry no raw control character but newline and tab. */
export function rawControls(text: string): string[] {
  return [...text.matchAll(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g)].map((m) => JSON.stringify(m[0]));
}
