import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { VmPlan } from '@labctl/core/provider';
import { describe, expect, it } from 'vitest';
import { checkSeedSettings, makeSeed } from './identity.js';

function plan(keyFile: string, overrides: Partial<VmPlan> = {}): VmPlan {
  return {
    name: 'web-01',
    group: 'web',
    host: 'local',
    mac: '52:54:00:aa:bb:cc',
    cpus: 1,
    memoryMiB: 512,
    golden: '/g.vhd',
    clone: 'linked',
    network: 'labnet',
    options: {},
    ssh: { user: 'root', port: 22, keyFile },
    cloudInit: { hostKeyTypes: ['ed25519'] },
    ...overrides,
  };
}

function keyPair(passphrase = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'labctl-identity-'));
  const file = join(dir, 'id_ed25519');
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', passphrase, '-f', file]);
  return file;
}

describe('makeSeed: the login key authorized in the seed', () => {
  it('takes KEYFILE.pub; without it, derives the public key from an unencrypted private key', async () => {
    const file = keyPair();
    const pub = readFileSync(`${file}.pub`, 'utf8').trim().split(' ').slice(0, 2).join(' ');
    const withPub = await makeSeed(plan(file));
    expect(withPub.files.find((f) => f.name === 'labctl-authorized-keys')?.data).toBe(`${pub}\n`);
    rmSync(`${file}.pub`);
    const derived = await makeSeed(plan(file));
    expect(derived.files.find((f) => f.name === 'labctl-authorized-keys')?.data).toBe(`${pub}\n`);
    expect(derived.hostKeys[0]).toMatch(/^ssh-ed25519 /);
    expect(derived.instanceId).toMatch(/^web-01-[0-9a-f]{12}$/);
    // A static address goes into the seed; a reservation does not (the guest keeps DHCP).
    const st = await makeSeed(plan(file, { address: { address: '10.0.0.5', prefix: 24, assign: 'static' } }));
    expect(st.files.find((f) => f.name === 'labctl-network')?.data).toContain('ADDRESS=10.0.0.5');
    const rs = await makeSeed(plan(file, { address: { address: '10.0.0.5', prefix: 24, assign: 'reservation' } }));
    expect(rs.files.find((f) => f.name === 'labctl-network')?.data).toContain('MODE=dhcp');
  });

  it('a key with a passphrase and no .pub, and cloud-config keys labctl owns, are refused with exit 2', async () => {
    const file = keyPair('secret phrase');
    rmSync(`${file}.pub`);
    await expect(makeSeed(plan(file))).rejects.toMatchObject({
      code: 'SEED_NO_PUBLIC_KEY',
      exitCode: 2,
      hint: expect.stringContaining('ssh-keygen -y -f'),
    });
    expect(() =>
      checkSeedSettings([
        plan(file, { cloudInit: { hostKeyTypes: ['ed25519'], userData: { hostname: 'x', ssh_keys: {} } } }),
      ]),
    ).toThrow(/cloud-config key "hostname" is set by labctl.*"ssh_keys"/);
  });
});
