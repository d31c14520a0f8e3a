import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoImage } from '@labctl/seed/iso9660';
import { generateHostKey } from '@labctl/seed/keys';
import { SEED_LABEL, type SeedIdentity, seedFiles } from '@labctl/seed/nocloud';
import { describe, expect, it } from 'vitest';
import { loadProfile } from './catalog.js';

/**
 * The firstboot-seed step's service script, run (with dash and with bash) against a CentOS-looking
 * root and a seed labctl made, as an ISO image read back by xorriso: the state a clone of a CentOS
 * minimal template reaches at first boot, and that a second boot changes nothing.
 */
const xorriso = spawnSync('xorriso', ['-version'], { stdio: 'ignore' }).status === 0;
if (!xorriso && process.env.CI) throw new Error('CI needs xorriso (scripts/setup.sh installs it)');

const step = loadProfile('centos7').steps.find((s) => s.id === 'firstboot-seed')!;
const script = /<<'LABCTL_FIRSTBOOT_SCRIPT'\n([\s\S]*?)\nLABCTL_FIRSTBOOT_SCRIPT\n/.exec(step.apply)![1]!;

function centosRoot(): string {
  const root = mkdtempSync(join(tmpdir(), 'labctl-firstboot-root-'));
  for (const dir of ['etc/sysconfig/network-scripts', 'etc/ssh', 'root', 'home/labadmin', 'var/lib'])
    mkdirSync(join(root, dir), { recursive: true });
  writeFileSync(join(root, 'etc/sysconfig/network'), 'NETWORKING=yes\nHOSTNAME=localhost.localdomain\n');
  writeFileSync(join(root, 'etc/sysconfig/network-scripts/ifcfg-eth0'), 'DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\n');
  writeFileSync(
    join(root, 'etc/passwd'),
    'root:x:0:0:root:/root:/bin/bash\nlabadmin:x:1000:1000::/home/labadmin:/bin/bash\n',
  );
  writeFileSync(join(root, 'etc/ssh/ssh_host_rsa_key'), 'the template image key, shared by every clone\n');
  writeFileSync(join(root, 'etc/hostname'), 'localhost.localdomain\n');
  return root;
}

function seed(identity: Partial<SeedIdentity> = {}): { dir: string; identity: SeedIdentity } {
  const full: SeedIdentity = {
    hostname: 'db-02',
    instanceId: 'db-02-a1b2c3d4e5f6',
    mac: '00:15:5d:01:02:03',
    user: 'labadmin',
    authorizedKeys: [generateHostKey('ed25519').publicKey],
    hostKeys: [generateHostKey('ed25519', 'db-02')],
    network: { address: '192.168.50.12', prefix: 24, gateway: '192.168.50.1', dns: ['192.168.50.1', '1.1.1.1'] },
    ...identity,
  };
  const dir = mkdtempSync(join(tmpdir(), 'labctl-firstboot-seed-'));
  writeFileSync(join(dir, 'seed.iso'), isoImage(seedFiles(full), SEED_LABEL));
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', join(dir, 'seed.iso'), '-extract', '/', join(dir, 'files')], {
    stdio: 'ignore',
  });
  return { dir: join(dir, 'files'), identity: full };
}

function boot(shell: string, root: string, seedDir: string): { code: number; out: string } {
  const file = join(root, '..', `${root.split('/').pop()}-firstboot.sh`);
  writeFileSync(file, script, { mode: 0o755 });
  const result = spawnSync(shell, [file], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH, LABCTL_FIRSTBOOT_ROOT: root, LABCTL_FIRSTBOOT_SEED: seedDir },
  });
  return { code: result.status ?? 1, out: `${result.stdout}${result.stderr}` };
}

const read = (root: string, path: string) => readFileSync(join(root, path), 'utf8');

describe.skipIf(!xorriso)(
  'firstboot-seed: a clone of a CentOS template without cloud-init takes its identity from the seed',
  () => {
    for (const shell of ['sh', 'bash']) {
      it(`${shell}: host name, the pinned host key only, authorized keys and a static ifcfg-eth0, once per instance-id`, () => {
        const root = centosRoot();
        const { dir, identity } = seed();
        const first = boot(shell, root, dir);
        expect(first, first.out).toMatchObject({ code: 0 });
        expect(read(root, 'etc/hostname')).toBe('db-02\n');
        expect(read(root, 'etc/sysconfig/network')).toBe('NETWORKING=yes\nHOSTNAME=db-02\n');
        expect(existsSync(join(root, 'etc/ssh/ssh_host_rsa_key'))).toBe(false);
        const installed = join(root, 'etc/ssh/ssh_host_ed25519_key');
        const derived = execFileSync('ssh-keygen', ['-y', '-f', installed], { encoding: 'utf8' })
          .trim()
          .split(' ')
          .slice(0, 2)
          .join(' ');
        expect(derived).toBe(identity.hostKeys[0]!.publicKey);
        expect(execFileSync('stat', ['-c', '%a', installed], { encoding: 'utf8' }).trim()).toBe('600');
        expect(read(root, 'home/labadmin/.ssh/authorized_keys')).toBe(`${identity.authorizedKeys[0]}\n`);
        expect(read(root, 'etc/sysconfig/network-scripts/ifcfg-eth0')).toBe(
          'DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=none\nTYPE=Ethernet\nNM_CONTROLLED=no\nIPADDR=192.168.50.12\nPREFIX=24\nGATEWAY=192.168.50.1\nDNS1=192.168.50.1\nDNS2=1.1.1.1\n',
        );
        expect(read(root, 'var/lib/labctl/instance-id')).toBe('db-02-a1b2c3d4e5f6\n');

        // Second boot, same instance: nothing is touched, not even a host name the admin changed since.
        writeFileSync(join(root, 'etc/hostname'), 'renamed-by-admin\n');
        const before = execFileSync('bash', ['-c', `cd ${root} && find . -type f -exec sha256sum {} + | sort`], {
          encoding: 'utf8',
        });
        const second = boot(shell, root, dir);
        expect(second.code).toBe(0);
        expect(second.out).toMatch(/instance db-02-a1b2c3d4e5f6 already applied/);
        expect(
          execFileSync('bash', ['-c', `cd ${root} && find . -type f -exec sha256sum {} + | sort`], {
            encoding: 'utf8',
          }),
        ).toBe(before);

        // The VM made anew (a new instance-id, new keys): applied again.
        const again = seed({ instanceId: 'db-02-ffffffffffff', hostKeys: [generateHostKey('ed25519')] });
        expect(boot(shell, root, again.dir).code).toBe(0);
        expect(read(root, 'etc/hostname')).toBe('db-02\n');
        expect(read(root, 'etc/ssh/ssh_host_ed25519_key.pub')).toBe(`${again.identity.hostKeys[0]!.publicKey}\n`);
      });
    }

    it('DHCP seeds leave the DHCP ifcfg alone; a hand-made seed with shell in its values is refused and changes nothing', () => {
      const root = centosRoot();
      const { dir } = seed({ network: undefined, user: 'root' });
      expect(boot('sh', root, dir).code).toBe(0);
      expect(read(root, 'etc/sysconfig/network-scripts/ifcfg-eth0')).toBe('DEVICE=eth0\nONBOOT=yes\nBOOTPROTO=dhcp\n');
      expect(read(root, 'root/.ssh/authorized_keys')).toMatch(/^ssh-ed25519 /);

      const hostile = centosRoot();
      const bad = seed({ instanceId: 'x-1' });
      writeFileSync(join(bad.dir, 'labctl-hostname'), 'db-02;touch /tmp/labctl-pwned\n');
      const refused = boot('sh', hostile, bad.dir);
      expect(refused.code).toBe(1);
      expect(refused.out).toMatch(/refusing host name/);
      expect(read(hostile, 'etc/hostname')).toBe('localhost.localdomain\n');
      expect(existsSync(join(hostile, 'var/lib/labctl/instance-id'))).toBe(false);
      const badNet = seed({ instanceId: 'x-2' });
      writeFileSync(join(badNet.dir, 'labctl-network'), 'MODE=static\nADDRESS=10.0.0.5$(id)\nPREFIX=24\n');
      const untouched = centosRoot();
      const refusedNet = boot('sh', untouched, badNet.dir);
      expect(refusedNet.code).toBe(1);
      expect(refusedNet.out).toMatch(/refusing network value/);
      expect(read(untouched, 'etc/hostname')).toBe('localhost.localdomain\n');
      expect(existsSync(join(untouched, 'etc/ssh/ssh_host_rsa_key'))).toBe(true);
    });
  },
);
