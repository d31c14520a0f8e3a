import { execFile, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

/** What the end-to-end tests share: the built binary, run inside the test's network namespace. */
export const repo = resolve(import.meta.dirname, '../..');
export const bin = join(repo, 'packages/cli/bin/run.js');

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
  ms: number;
}

export function sha256(file: string): string {
  return createHash('sha256').update(readFileSync(file)).digest('hex');
}

/** `ip netns exec NETNS ...command`, never rejecting: the exit status is part of what tests check. */
export function runInNetns(netns: string, command: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<Run> {
  const started = Date.now();
  return new Promise((done) => {
    execFile('ip', ['netns', 'exec', netns, ...command], { env, timeout: timeoutMs, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
      const code = error ? ((error as { code?: number }).code ?? 1) : 0;
      done({ code: typeof code === 'number' ? code : 1, stdout, stderr, ms: Date.now() - started });
    });
  });
}

export function virshAt(uri: string, ...args: string[]): string {
  return execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8' });
}

/** Every domain of that libvirtd, sorted. */
export function domainsAt(uri: string): string[] {
  return virshAt(uri, 'list', '--all', '--name')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
    .sort();
}

/** Teardown: whatever a failed test left behind, stopped and undefined; errors ignored. */
export function removeAllDomains(uri: string): void {
  try {
    for (const name of domainsAt(uri)) {
      for (const action of [['destroy'], ['undefine', '--snapshots-metadata']]) {
        try {
          virshAt(uri, ...action, name);
        } catch {}
      }
    }
  } catch {}
}
