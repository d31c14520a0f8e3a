import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect, HANDSHAKES_PER_HOST, type SshConnectOptions, SshTimeoutError, withSsh } from './ssh.js';
import { SSH_TESTBED_SUDO_PASSWORD, type SshTestHosts, startSshHosts } from './ssh-testbed.js';

const run = promisify(execFile);
const BASE_PORT = 22300; // remote's ssh tests own 22301-22302
const gate = requireTestbed('remote SSH client tests (real sshd)', {
  root: true,
  commands: ['sshd', 'ssh-keygen', 'unshare', 'sudo'],
});

describe.skipIf(gate.skip)('ssh client against real OpenSSH sshd test hosts', () => {
  let dir = '';
  let hosts: SshTestHosts | undefined;
  let ports: number[] = [];
  let options: SshConnectOptions;
  const target = (i: number, user = 'labctl-np') => `${user}@127.0.0.1:${ports[i]}`;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'labctl-remote-ssh-'));
    hosts = await startSshHosts(dir, 2, BASE_PORT);
    ports = hosts.ports;
    options = {
      knownHostsFile: join(dir, 'known_hosts'),
      identityFiles: [join(dir, 'client/id_ed25519')],
      agent: false,
      sshConfigFile: false,
    };
  });
  afterAll(async () => {
    if (!dir) return;
    await hosts?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('reports exit codes, separate stdout/stderr, stdin, signals and a missing command', async () => {
    await withSsh(target(0), options, async (ssh) => {
      expect(await ssh.exec('exit 42')).toMatchObject({ code: 42, signal: null });
      expect(await ssh.exec('echo out; echo err >&2; exit 3')).toEqual({
        stdout: 'out\n',
        stderr: 'err\n',
        code: 3,
        signal: null,
      });
      expect(await ssh.exec('wc -c; cat', { stdin: 'hello\n' })).toMatchObject({ stdout: '6\n', code: 0 });
      expect(await ssh.exec('cat', {})).toMatchObject({ stdout: '', code: 0 }); // stdin closed: does not hang
      expect(await ssh.exec('kill -TERM $$')).toMatchObject({ code: null, signal: 'SIGTERM' });
      const missing = await ssh.exec('no-such-command-labctl');
      expect(missing.code).toBe(127);
      expect(missing.stderr).toContain('not found');
      expect(ssh.hostKey).toMatchObject({ type: 'ssh-ed25519', recorded: false });
      expect(ssh.hostKey.fingerprint).toMatch(/^SHA256:[A-Za-z0-9+/]{43}$/);
    });
  });

  it('kills a command at its timeout and the connection stays usable', async () => {
    await withSsh(target(0), options, async (ssh) => {
      const started = Date.now();
      const error = await ssh.exec('sleep 30', { timeoutMs: 300 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SshTimeoutError);
      expect((error as SshTimeoutError).code).toBe('SSH_EXEC_TIMEOUT');
      expect(Date.now() - started).toBeLessThan(3000);
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error('stopped by test')), 200);
      await expect(ssh.exec('sleep 30', { signal: controller.signal })).rejects.toThrow('stopped by test');
      expect(await ssh.exec('echo still-here')).toMatchObject({ stdout: 'still-here\n', code: 0 });
    });
  });

  it('sudo -S reads the password from stdin (not argv) for the password-sudo user', async () => {
    await withSsh(target(0, 'labctl-pw'), options, async (ssh) => {
      expect(await ssh.exec('sudo -n true')).toMatchObject({ code: 1 });
      expect(await ssh.exec("sudo -S -p '' id -u", { stdin: 'LabPw-123\n' })).toMatchObject({ stdout: '0\n', code: 0 });
    });
  });

  it('refuses a client key the host does not accept', async () => {
    await expect(
      connect(target(0), { ...options, identityFiles: [join(dir, 'client/wrong_ed25519')] }),
    ).rejects.toMatchObject({ code: 'SSH_AUTH_FAILED' });
  });

  it('refuses an unknown host under the strict policy; accept-new records it where told, then strict accepts it', async () => {
    const knownHostsFile = join(dir, 'new/known_hosts');
    await expect(connect(target(0), { ...options, knownHostsFile })).rejects.toMatchObject({
      code: 'SSH_HOST_KEY_UNKNOWN',
    });
    const first = await connect(target(0), { ...options, knownHostsFile, hostKeyPolicy: 'accept-new' });
    expect(first.hostKey.recorded).toBe(true);
    await first.close();
    const recorded = await readFile(knownHostsFile, 'utf8');
    expect(recorded).toMatch(new RegExp(`^\\[127\\.0\\.0\\.1\\]:${ports[0]} ssh-ed25519 AAAA\\S+\\n$`));
    const second = await connect(target(0), { ...options, knownHostsFile });
    expect(second.hostKey.recorded).toBe(false);
    await second.close();
  });

  it('refuses a changed host key, even under accept-new, and names the known_hosts line', async () => {
    // Host 2's keys recorded under host 1's name: host 1 now presents a "changed" key.
    const real = await readFile(join(dir, 'known_hosts'), 'utf8');
    const swapped = real
      .split('\n')
      .filter((line) => line.startsWith(`[127.0.0.1]:${ports[1]} `))
      .map((line) => line.replace(`:${ports[1]} `, `:${ports[0]} `))
      .join('\n');
    const knownHostsFile = join(dir, 'swapped_known_hosts');
    await writeFile(knownHostsFile, `${swapped}\n`);
    for (const hostKeyPolicy of ['strict', 'accept-new'] as const) {
      const error = await connect(target(0), { ...options, knownHostsFile, hostKeyPolicy }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'SSH_HOST_KEY_CHANGED' });
      expect((error as Error).message).toContain('CHANGED');
      expect((error as { hint: string }).hint).toContain(`${knownHostsFile}:1`);
    }
    expect(await readFile(knownHostsFile, 'utf8')).toBe(`${swapped}\n`);
  });

  it('accepts hashed known_hosts entries (ssh-keygen -H)', async () => {
    const knownHostsFile = join(dir, 'hashed_known_hosts');
    await writeFile(knownHostsFile, await readFile(join(dir, 'known_hosts')));
    await run('ssh-keygen', ['-q', '-H', '-f', knownHostsFile]);
    expect(await readFile(knownHostsFile, 'utf8')).not.toContain('127.0.0.1');
    await withSsh(target(1), { ...options, knownHostsFile }, async (ssh) => {
      expect((await ssh.exec('hostname')).stdout).toBe('h2\n');
    });
  });

  it('takes HostName, Port, User and IdentityFile from an ssh config file', async () => {
    const sshConfigFile = join(dir, 'ssh_config');
    await writeFile(
      sshConfigFile,
      `Host lab-h2\n  HostName 127.0.0.1\n  Port ${ports[1]}\n  User labctl-pw\n  IdentityFile ${join(dir, 'client/id_ed25519')}\nHost *\n  User nobody\n`,
    );
    await withSsh('lab-h2', { knownHostsFile: options.knownHostsFile, sshConfigFile, agent: false }, async (ssh) => {
      expect(ssh.target).toMatchObject({ host: '127.0.0.1', port: ports[1], user: 'labctl-pw' });
      expect((await ssh.exec('id -un; hostname')).stdout).toBe('labctl-pw\nh2\n');
    });
  });

  it(`opens 30 connections to one host at once without a drop (handshakes capped at ${HANDSHAKES_PER_HOST} per host)`, async () => {
    const started = Date.now();
    const results = await Promise.allSettled(
      Array.from({ length: 30 }, () => withSsh(target(0), options, (ssh) => ssh.exec('echo ok'))),
    );
    const failures = results
      .filter((r) => r.status === 'rejected')
      .map((r) => String((r as PromiseRejectedResult).reason));
    expect(failures).toEqual([]);
    expect(results.every((r) => r.status === 'fulfilled' && r.value.stdout === 'ok\n')).toBe(true);
    process.stderr.write(`ssh: 30 parallel connect+exec+close to one host: ${Date.now() - started} ms\n`);
  }, 60_000);

  it('runs 30 commands at once on one connection (channels capped below MaxSessions)', async () => {
    await withSsh(target(1), options, async (ssh) => {
      const results = await Promise.all(Array.from({ length: 30 }, (_, i) => ssh.exec(`echo ${i}`)));
      expect(results.map((r) => r.stdout)).toEqual(Array.from({ length: 30 }, (_, i) => `${i}\n`));
      const started = performance.now();
      for (let i = 0; i < 10; i++) await ssh.exec('true');
      process.stderr.write(
        `ssh: exec on an open connection (noDelay): ${((performance.now() - started) / 10).toFixed(1)} ms each\n`,
      );
    });
  });

  it('asks for a password only after the keys failed, and logs in with it (an sshd that allows passwords)', async () => {
    // A second sshd with host 1's keys and PasswordAuthentication on (ssh-hosts.sh turns it off).
    const port = BASE_PORT + 3;
    const config = (await readFile(join(dir, 'h1/sshd_config'), 'utf8'))
      .replace(/^Port .*/m, `Port ${port}`)
      .replace(/^PidFile .*/m, `PidFile ${join(dir, 'pw-sshd.pid')}`)
      .replace(/^PasswordAuthentication no/m, 'PasswordAuthentication yes');
    await writeFile(join(dir, 'pw_sshd_config'), config);
    const sshd = spawn('/usr/sbin/sshd', ['-D', '-f', join(dir, 'pw_sshd_config'), '-E', join(dir, 'pw-sshd.log')], {
      stdio: 'ignore',
    });
    try {
      const knownHostsFile = join(dir, 'pw_known_hosts');
      await writeFile(
        knownHostsFile,
        (await readFile(join(dir, 'known_hosts'), 'utf8')).replaceAll(`:${ports[0]} `, `:${port} `),
      );
      const asked: string[] = [];
      const password = () => {
        asked.push('password');
        return SSH_TESTBED_SUDO_PASSWORD;
      };
      const base = { knownHostsFile, agent: false as const, sshConfigFile: false as const, password };
      for (let i = 0; i < 50; i++) {
        const ok = await connect(`labctl-pw@127.0.0.1:${port}`, {
          ...base,
          identityFiles: [join(dir, 'client/id_ed25519')],
        }).then(
          (c) => c.close().then(() => true),
          () => false,
        );
        if (ok) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(asked).toEqual([]); // the key worked: no password asked
      await withSsh(
        `labctl-pw@127.0.0.1:${port}`,
        { ...base, identityFiles: [join(dir, 'client/wrong_ed25519')] },
        async (ssh) => {
          expect((await ssh.exec('id -un')).stdout).toBe('labctl-pw\n');
        },
      );
      expect(asked).toEqual(['password']);
      const wrong = connect(`labctl-pw@127.0.0.1:${port}`, { ...base, identityFiles: [], password: () => 'not-it' });
      await expect(wrong).rejects.toMatchObject({
        code: 'SSH_AUTH_FAILED',
        message: expect.stringContaining('tried: password'),
        // Windows OpenSSH reads an administrator's keys from one file only; the hint names it.
        hint: expect.stringContaining('C:\\ProgramData\\ssh\\administrators_authorized_keys'),
      });
    } finally {
      sshd.kill('SIGTERM');
    }
  }, 30_000);

  it('says plainly when nothing listens on the port', async () => {
    await expect(connect('labctl-np@127.0.0.1:22399', options)).rejects.toMatchObject({
      code: 'SSH_CONNECT_FAILED',
      hint: expect.stringContaining('Nothing listens'),
    });
  });
});
