import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { closeJumpHosts } from '@labctl/remote/ssh';
import { type SshJumpBed, startJumpBed } from '@labctl/remote/ssh-testbed';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sshHandshakeProbe } from './ssh-probe.js';

/**
 * The discovery probe of a VM behind a jump host (a lab's ssh.proxyJump): a bastion sshd and a
 * target sshd in network namespaces of their own, the target reachable only through the bastion
 * (scripts/testbed/ssh-jump.sh). The VM's pinned key is checked end to end through the channel.
 */
const BASE_PORT = 22310;
const gate = requireTestbed('the SSH probe through a jump host', {
  root: true,
  commands: ['sshd', 'ssh', 'ssh-keygen', 'unshare', 'ip'],
});

describe.skipIf(gate.skip)('sshHandshakeProbe through ssh.proxyJump', () => {
  let bed: string;
  let env: Record<string, string>;
  let config: string;
  const keyOf = async (file: string) => (await readFile(file, 'utf8')).split(' ').slice(0, 2).join(' ');

  let jumpBed: SshJumpBed;
  beforeAll(async () => {
    jumpBed = await startJumpBed('probe-jump-', BASE_PORT);
    ({ dir: bed, env } = jumpBed);
    config = join(bed, 'ssh_config');
    await writeFile(
      config,
      `Host bastion\n  HostName ${env.JUMP_BASTION_ADDR}\n  Port ${env.JUMP_BASTION_PORT}\n  User labctl-np\n  IdentityFile ${join(bed, 'client', 'id_ed25519')}\n  UserKnownHostsFile ${join(bed, 'known_hosts')}\n`,
    );
  }, 60_000);
  afterAll(async () => {
    await closeJumpHosts();
    await jumpBed?.stop();
  });

  const target = () => ({
    address: env.JUMP_TARGET_ADDR!,
    port: Number(env.JUMP_TARGET_PORT),
    proxyJump: 'bastion',
    sshConfigFile: config,
  });

  it('the pinned key answers through the bastion; another key is a mismatch; direct, nothing answers', async () => {
    const pinned = await keyOf(join(bed, 'h2', 'ssh_host_ed25519_key.pub'));
    expect(await sshHandshakeProbe({ ...target(), pinnedKeys: [pinned] }, 10_000)).toEqual({
      ok: true,
      hostKey: pinned,
    });
    const wrong = await keyOf(join(bed, 'client', 'wrong_ed25519.pub'));
    expect(await sshHandshakeProbe({ ...target(), pinnedKeys: [wrong] }, 10_000)).toMatchObject({
      ok: false,
      reason: 'key-mismatch',
    });
    const { proxyJump: _, ...direct } = target();
    expect(await sshHandshakeProbe({ ...direct, pinnedKeys: [pinned] }, 3_000)).toMatchObject({ ok: false });
  });

  it('a closed port behind the bastion reads as a closed port, not as a broken jump host', async () => {
    const result = await sshHandshakeProbe({ ...target(), port: 1, pinnedKeys: [] }, 10_000);
    expect(result).toMatchObject({ ok: false });
    expect(result.ok ? '' : result.message).toMatch(/cannot open a connection to .*:1/);
  });
});
