import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

/** The built binary (`turbo run build` first), as a user runs it: exit statuses and --json. */
const bin = resolve(import.meta.dirname, '../../../bin/run.js');

async function labctl(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)('node', [bin, ...args], {
      env: { ...process.env, ...env },
      maxBuffer: 4 << 20,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

describe('labctl template', () => {
  it('steps --json lists the CentOS 7 catalog', async () => {
    const { code, stdout } = await labctl(['template', 'steps', '--json']);
    expect(code).toBe(0);
    const result = JSON.parse(stdout);
    expect(result.profile).toBe('centos7');
    expect(result.steps.map((s: { id: string }) => s.id)).toEqual(
      expect.arrayContaining(['ifcfg-eth0', 'firewall-ssh', 'hyperv-services', 'seal']),
    );
  });

  it('script prints a bash script that parses (bash -n) and leaves skipped steps out', async () => {
    const { code, stdout } = await labctl(['template', 'script', '--skip', 'yum-update']);
    expect(code).toBe(0);
    expect(stdout.startsWith('#!/usr/bin/env bash\n')).toBe(true);
    expect(stdout).not.toContain('yum -y update');
    await promisify(execFile)('bash', ['-n', '-c', stdout]);
  });

  it('refuses an unknown step or profile with exit 2 before connecting anywhere', async () => {
    const step = await labctl(['template', 'prep', '--target', 'root@127.0.0.1:1', '--step', 'nope', '--json']);
    expect(step.code).toBe(2);
    expect(JSON.parse(step.stdout).error.code).toBe('TEMPLATE_UNKNOWN_STEP');
    const profile = await labctl(['template', 'steps', '--profile', 'solaris']);
    expect(profile.code).toBe(2);
    expect(profile.stderr).toContain('no template profile "solaris"');
  });

  it('prep says plainly when nothing listens (exit 1)', async () => {
    const { code, stdout } = await labctl(['template', 'prep', '--target', 'root@127.0.0.1:1', '--json']);
    expect(code).toBe(1);
    expect(JSON.parse(stdout).error).toMatchObject({ code: 'SSH_CONNECT_FAILED' });
  });
});
