import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closeJumpHosts, connect, withSsh } from './ssh.js';
import { type SshJumpBed, startJumpBed } from './ssh-testbed.js';
import { loadSshConfig } from './ssh-config.js';
import { hostFieldMatches } from './ssh-known-hosts.js';

/**
 * SSH through a jump host, for real: a bastion sshd in one network namespace and a target sshd in
 * another, reachable only through the bastion (scripts/testbed/ssh-jump.sh; from here the target's
 * subnet is an unreachable route). Host settings come from an ssh_config resolved by OpenSSH itself
 * (`ssh -G`), keys are checked at every hop.
 */
const BASE_PORT = 22300;
const run = promisify(execFile);
const gate = requireTestbed('SSH through a jump host (two sshd in network namespaces)', {
  root: true,
  commands: ['sshd', 'ssh', 'ssh-keygen', 'unshare', 'ip'],
});

describe.skipIf(gate.skip)('ProxyJump: a target reachable only through a bastion', () => {
  let bed: string;
  let env: Record<string, string>;
  let config: string;
  const key = () => join(bed, 'client', 'id_ed25519');

  let jumpBed: SshJumpBed;
  beforeAll(async () => {
    jumpBed = await startJumpBed('ssh-jump-', BASE_PORT);
    ({ dir: bed, env } = jumpBed);
    config = join(bed, 'ssh_config');
    await writeFile(
      config,
      [
        `Include ${join(bed, 'bastion.conf')}`,
        'Host target',
        `  HostName ${env.JUMP_TARGET_ADDR}`,
        `  Port ${env.JUMP_TARGET_PORT}`,
        '  ProxyJump bastion',
        'Match host 10.25*',
        '  User labctl-np',
        `  IdentityFile ${key()}`,
        `  UserKnownHostsFile ${join(bed, 'known_hosts')}`,
        '',
      ].join('\n'),
    );
    await writeFile(
      join(bed, 'bastion.conf'),
      `Host bastion b-*\n  HostName ${env.JUMP_BASTION_ADDR}\n  Port ${env.JUMP_BASTION_PORT}\n`,
    );
  }, 60_000);
  afterAll(async () => {
    await closeJumpHosts();
    await jumpBed?.stop();
  });

  const options = () => ({ sshConfigFile: config, agent: false as const, readyTimeoutMs: 10_000 });

  it('settings come from OpenSSH itself: Include, Match host, ProxyJump, as ssh -G prints them', async () => {
    const target = await loadSshConfig('target', config);
    expect(target).toMatchObject({
      resolvedBy: 'ssh -G',
      hostName: env.JUMP_TARGET_ADDR,
      port: Number(env.JUMP_TARGET_PORT),
      user: 'labctl-np',
      proxyJump: 'bastion',
      userKnownHostsFile: join(bed, 'known_hosts'),
    });
    expect(target.identityFiles).toContain(key());
    const bastion = await loadSshConfig('b-01', config);
    expect(bastion).toMatchObject({ hostName: env.JUMP_BASTION_ADDR, user: 'labctl-np' });
    expect(bastion.proxyJump).toBeUndefined();
    const { stdout } = await run('ssh', ['-F', config, '-G', 'target']);
    expect(stdout).toMatch(new RegExp(`^proxyjump bastion$`, 'm'));
  });

  it('connects through the bastion (the target sees the bastion as its client); direct, it is unreachable', async () => {
    const seen = await withSsh('target', options(), (ssh) => ssh.exec('hostname; echo "$SSH_CONNECTION"'));
    const [hostname, connection] = seen.stdout.trim().split('\n');
    expect(hostname).toBe('h2');
    expect(connection?.split(' ')[0]).toBe(env.JUMP_TARGET_GATEWAY);
    await expect(connect('target', { ...options(), proxyJump: false })).rejects.toThrow(
      /unreachable|No route|EHOSTUNREACH/i,
    );
  });

  it('a jump list given by labctl (ssh.proxyJump) works the same', async () => {
    const seen = await withSsh(
      `labctl-np@${env.JUMP_TARGET_ADDR}:${env.JUMP_TARGET_PORT}`,
      { ...options(), proxyJump: 'bastion' },
      (ssh) => ssh.exec('hostname'),
    );
    expect(seen.stdout.trim()).toBe('h2');
    // Two hops (the second one through the first, here the bastion again): a chain as ssh -J a,b.
    await closeJumpHosts();
    const chained = await withSsh(
      `labctl-np@${env.JUMP_TARGET_ADDR}:${env.JUMP_TARGET_PORT}`,
      { ...options(), proxyJump: 'bastion,b-2' },
      (ssh) => ssh.exec('hostname'),
    );
    expect(chained.stdout.trim()).toBe('h2');
  });

  it('keys are pinned at every hop: a changed bastion key stops the run before the target is tried', async () => {
    const knownHosts = join(bed, 'known_hosts');
    const original = await readFile(knownHosts, 'utf8');
    const wrong = (await readFile(join(bed, 'client', 'wrong_ed25519.pub'), 'utf8')).split(' ').slice(0, 2).join(' ');
    const bastionName = `[${env.JUMP_BASTION_ADDR}]:${env.JUMP_BASTION_PORT}`;
    // A process shares its jump connections: start from none, as a new labctl run does.
    await closeJumpHosts();
    await writeFile(
      knownHosts,
      `${original
        .split('\n')
        .filter((line) => !line.startsWith(bastionName))
        .join('\n')}\n${bastionName} ${wrong}\n`,
    );
    try {
      await expect(withSsh('target', options(), (ssh) => ssh.exec('true'))).rejects.toThrow(
        new RegExp(
          `host key of labctl-np@${env.JUMP_BASTION_ADDR!.replaceAll('.', '\\.')}:${env.JUMP_BASTION_PORT} has CHANGED`,
        ),
      );
    } finally {
      await writeFile(knownHosts, original);
    }
  });

  it('HashKnownHosts yes: a key recorded under accept-new is written hashed, and matches next time', async () => {
    const hashedConfig = join(bed, 'hashed_config');
    const fresh = join(bed, 'fresh_known_hosts');
    await writeFile(fresh, '');
    await writeFile(
      hashedConfig,
      `HashKnownHosts yes\nGlobalKnownHostsFile ${join(bed, 'known_hosts')}\nHost bastion\n  HostName ${env.JUMP_BASTION_ADDR}\n  Port ${env.JUMP_BASTION_PORT}\n  User labctl-np\n  IdentityFile ${key()}\n  UserKnownHostsFile ${join(bed, 'known_hosts')}\n`,
    );
    const target = `labctl-np@${env.JUMP_TARGET_ADDR}:${env.JUMP_TARGET_PORT}`;
    const first = {
      sshConfigFile: hashedConfig,
      agent: false as const,
      identityFiles: [key()],
      knownHostsFile: fresh,
      proxyJump: 'bastion',
      globalKnownHosts: false,
    };
    await withSsh(target, { ...first, hostKeyPolicy: 'accept-new' }, (ssh) => ssh.exec('true'));
    const recorded = (await readFile(fresh, 'utf8')).trim().split('\n');
    expect(recorded).toHaveLength(1);
    expect(recorded[0]).toMatch(/^\|1\|[A-Za-z0-9+/=]+\|[A-Za-z0-9+/=]+ ssh-ed25519 /);
    expect(hostFieldMatches(recorded[0]!.split(' ')[0]!, `[${env.JUMP_TARGET_ADDR}]:${env.JUMP_TARGET_PORT}`)).toBe(
      true,
    );
    const again = await withSsh(target, { ...first, hostKeyPolicy: 'strict' }, (ssh) => ssh.exec('hostname'));
    expect(again.stdout.trim()).toBe('h2');
  });

  it('GlobalKnownHostsFile (the /etc/ssh/ssh_known_hosts of ssh config) is read: a key only there is trusted', async () => {
    const globalConfig = join(bed, 'global_config');
    const empty = join(bed, 'empty_known_hosts');
    await writeFile(empty, '');
    await writeFile(
      globalConfig,
      `Host *\n  GlobalKnownHostsFile ${join(bed, 'known_hosts')}\n  User labctl-np\n  IdentityFile ${key()}\n  UserKnownHostsFile ${empty}\nHost bastion\n  HostName ${env.JUMP_BASTION_ADDR}\n  Port ${env.JUMP_BASTION_PORT}\n`,
    );
    const seen = await withSsh('bastion', { sshConfigFile: globalConfig, agent: false }, (ssh) => ssh.exec('hostname'));
    expect(seen.stdout.trim()).toBe('h1');
    expect(await readFile(empty, 'utf8')).toBe('');
    await expect(
      withSsh('bastion', { sshConfigFile: globalConfig, agent: false, globalKnownHosts: false }, (ssh) =>
        ssh.exec('true'),
      ),
    ).rejects.toThrow(/is not in/);
  });
});
