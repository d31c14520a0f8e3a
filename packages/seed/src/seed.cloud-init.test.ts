import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isoImage } from './iso9660.js';
import { generateHostKey } from './keys.js';
import { SEED_LABEL, type SeedIdentity, seedFiles } from './nocloud.js';
import { CLOUD_INIT_PATH, cloudInit, cloudInitMissing, READ_SEED_SCRIPT } from './testing/cloud-init.js';

/** The seed as the guest gets it: labctl's ISO image, read back by xorriso, then by cloud-init itself. */
const missing = cloudInitMissing();
const xorriso = (() => {
  try {
    execFileSync('xorriso', ['-version'], { stdio: 'ignore' });
    return undefined;
  } catch {
    if (process.env.CI) throw new Error('CI needs xorriso (scripts/setup.sh installs it)');
    return 'xorriso is not installed (run ./scripts/setup.sh as root)';
  }
})();

function identity(overrides: Partial<SeedIdentity> = {}): SeedIdentity {
  return {
    hostname: 'web-03',
    instanceId: 'web-03-0a1b2c3d4e5f',
    // A MAC that YAML 1.1 would read as a base-60 number if it were written unquoted.
    mac: '52:54:00:12:34:56',
    user: 'root',
    authorizedKeys: [generateHostKey('ed25519').publicKey],
    hostKeys: [generateHostKey('ed25519', 'web-03')],
    ...overrides,
  };
}

/** Writes the ISO, extracts it with xorriso (an independent ISO 9660/Joliet reader), returns the directory. */
function throughIso(id: SeedIdentity): string {
  const dir = mkdtempSync(join(tmpdir(), 'labctl-seed-'));
  writeFileSync(join(dir, 'seed.iso'), isoImage(seedFiles(id), SEED_LABEL));
  execFileSync('xorriso', ['-osirrox', 'on', '-indev', join(dir, 'seed.iso'), '-extract', '/', join(dir, 'files')], {
    stdio: 'ignore',
  });
  return dir;
}

function readByCloudInit(dir: string): Record<string, any> {
  return JSON.parse(cloudInit([READ_SEED_SCRIPT, join(dir, 'files'), join(dir, 'root')]));
}

describe.skipIf(missing || xorriso)(
  `cloud-init reads labctl's NoCloud seed (${missing ?? xorriso ?? CLOUD_INIT_PATH})`,
  () => {
    it('the image is labelled cidata and holds the three NoCloud files under their real names', () => {
      const dir = throughIso(identity());
      const label = execFileSync('xorriso', ['-indev', join(dir, 'seed.iso'), '-pvd_info'], {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      expect(label).toMatch(/Volume Id\s*:\s*cidata/);
      for (const name of ['meta-data', 'user-data', 'network-config', 'labctl-hostname', 'labctl-ssh-host-ed25519-key'])
        expect(readFileSync(join(dir, 'files', name), 'utf8').length).toBeGreaterThan(0);
    });

    it('static address: the datasource gives the hostname, instance-id, host keys, authorized key and the address', () => {
      const id = identity({
        network: { address: '10.78.0.103', prefix: 24, gateway: '10.78.0.1', dns: ['10.78.0.1'] },
      });
      const seen = readByCloudInit(throughIso(id));
      expect(seen.found).toBe(true);
      expect(seen.hostname).toBe('web-03');
      expect(seen.instance_id).toBe('web-03-0a1b2c3d4e5f');
      expect(seen.user_data_header).toBe('#cloud-config');
      expect(seen.schema_errors).toEqual([]);
      expect(seen.user_data.ssh_keys.ed25519_public).toBe(id.hostKeys[0]!.publicKey);
      expect(seen.user_data.ssh_keys.ed25519_private).toBe(id.hostKeys[0]!.privateKey);
      expect(seen.user_data.ssh_deletekeys).toBe(true);
      expect(seen.user_data.ssh_authorized_keys).toEqual(id.authorizedKeys);
      expect(seen.user_data.disable_root).toBe(false);
      // What cloud-init would write into a CentOS guest and an Ubuntu guest.
      const ifcfg = Object.entries(seen.rendered as Record<string, string>).find(([file]) =>
        /ifcfg-eth0$/.test(file),
      )?.[1];
      expect(ifcfg).toMatch(/IPADDR=10\.78\.0\.103/);
      expect(ifcfg).toMatch(/HWADDR=52:54:00:12:34:56/);
      expect(ifcfg).toMatch(/BOOTPROTO=(none|static)/);
      const netplan = Object.entries(seen.rendered as Record<string, string>).find(([file]) =>
        file.endsWith('50-cloud-init.yaml'),
      )?.[1];
      expect(netplan).toContain('10.78.0.103/24');
      expect(netplan).toMatch(/macaddress: ['"]?52:54:00:12:34:56/);
    });

    it('DHCP and a non-root user: cloud-init makes the user with the key and sudo, and root stays closed', () => {
      const id = identity({
        user: 'ansible',
        userData: { packages: ['python3'], runcmd: [['touch', '/etc/labctl-ran']] },
      });
      const seen = readByCloudInit(throughIso(id));
      expect(seen.schema_errors).toEqual([]);
      expect(seen.user_data.disable_root).toBe(true);
      const user = seen.user_data.users.find((u: { name?: string }) => u.name === 'ansible');
      expect(user.ssh_authorized_keys).toEqual(id.authorizedKeys);
      expect(user.sudo).toBe('ALL=(ALL) NOPASSWD:ALL');
      expect(seen.user_data.packages).toEqual(['python3']);
      const ifcfg = Object.entries(seen.rendered as Record<string, string>).find(([file]) =>
        /ifcfg-eth0$/.test(file),
      )?.[1];
      expect(ifcfg).toMatch(/BOOTPROTO=dhcp/);
    });

    it("cloud-init's schema check accepts labctl's user-data (the check a user would run by hand)", () => {
      const dir = throughIso(identity({ hostKeys: [generateHostKey('ed25519'), generateHostKey('rsa')] }));
      const out = cloudInit(['-m', 'cloudinit.cmd.main', 'schema', '--config-file', join(dir, 'files', 'user-data')]);
      expect(out).toMatch(/Valid cloud-config/);
    });
  },
);
