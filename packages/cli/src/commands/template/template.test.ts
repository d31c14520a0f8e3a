import { execFile } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { requireTestbed } from '@labctl/core/testing/testbed';
import {
  runTestbedScript,
  SSH_TESTBED_SUDO_PASSWORD,
  type SshTestHosts,
  startSshHosts,
} from '@labctl/remote/ssh-testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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

const gate = requireTestbed('labctl template prep against a real sshd (fake CentOS root)', {
  root: true,
  commands: ['sshd', 'unshare', 'nsenter', 'sudo'],
});

describe.skipIf(gate.skip)(
  'labctl template prep, the binary, on a fake CentOS 7 root over real SSH (yum/firewall-cmd/systemctl are STAND-INS)',
  () => {
    const dir = `/run/labctl-cli-template-test-${process.pid}`; // not /tmp: the target gets its own /tmp
    const port = 22331;
    let hosts: SshTestHosts | undefined;
    let common: string[] = [];
    beforeAll(async () => {
      await mkdir(dir, { recursive: true });
      hosts = await startSshHosts(dir, 1, port - 1);
      await runTestbedScript(resolve(import.meta.dirname, '../../../../../scripts/testbed/template-targets.sh'), [
        'up',
        dir,
        '1',
        'centos7',
      ]);
      // Safety: prep is destructive; the target must show its fake root over SSH, or nothing runs.
      const seen = await promisify(execFile)('ssh', [
        ...[
          '-i',
          hosts.identityFile,
          '-o',
          `UserKnownHostsFile=${hosts.knownHostsFile}`,
          '-o',
          'BatchMode=yes',
          '-p',
          String(port),
        ],
        ...['labctl-np@127.0.0.1', 'cat /etc/labctl-template-target'],
      ]);
      if (seen.stdout.trim() !== join(dir, 'root1'))
        throw new Error('the target does not show its fake root: refusing to run prep on the real machine');
      common = [
        'template',
        'prep',
        '--target',
        `labctl-pw@127.0.0.1:${port}`,
        '--sudo',
        '--known-hosts',
        hosts.knownHostsFile,
        '-i',
        hosts.identityFile,
      ];
    });
    afterAll(async () => {
      await hosts?.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('prep with the sudo password from LABCTL_SUDO_PASSWORD changes the target, a second run changes nothing, the password never shows', async () => {
      const env = { LABCTL_SUDO_PASSWORD: SSH_TESTBED_SUDO_PASSWORD };
      const first = await labctl([...common, '--json'], env);
      expect(first.code).toBe(0);
      const result = JSON.parse(first.stdout);
      expect(result.recap).toMatchObject({ changed: 18, failed: 0 });
      expect(await readFile(join(dir, 'root1/etc/sysconfig/network-scripts/ifcfg-eth0'), 'utf8')).toContain(
        'NM_CONTROLLED=no',
      );
      const second = await labctl(common, env);
      expect(second.code).toBe(0);
      expect(second.stdout).toMatch(/ok=18 changed=0 skipped=1 failed=0/);
      expect(first.stdout + second.stdout + second.stderr).not.toContain(SSH_TESTBED_SUDO_PASSWORD);
    }, 120_000);

    it('a failing step exits 1 and names the failed command and its stderr', async () => {
      const profile = join(dir, 'broken.yaml');
      await writeFile(
        profile,
        'profile: broken\nextends: [centos7]\nsteps:\n  - id: broken-copy\n    description: Copy a missing file\n    check: exit 1\n    apply: cp /no/such/file /etc/x\n',
      );
      const { code, stderr } = await labctl([...common, '--profile', profile, '--step', 'broken-copy'], {
        LABCTL_SUDO_PASSWORD: SSH_TESTBED_SUDO_PASSWORD,
      });
      expect(code).toBe(1);
      expect(stderr).toContain('step broken-copy failed');
      expect(stderr).toContain("cp: cannot stat '/no/such/file'");
    }, 60_000);
  },
);
