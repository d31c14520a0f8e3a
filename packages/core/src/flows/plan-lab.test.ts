import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../errors.js';
import type { LoadedLabFile } from '../spec.js';
import { parseLabFile, resolveLocalPath } from '../spec.js';
import { planLab } from './plan-lab.js';

/** A lab file; without `provider:` it names the fake provider (core knows no provider of its own). */
function labFile(yaml: string): LoadedLabFile {
  const spec = parseLabFile(/^provider:/m.test(yaml) ? yaml : `provider: fake\n${yaml}`, 'labctl.yaml');
  return {
    path: '/labs/demo/labctl.yaml',
    spec,
    lab: spec.lab ?? 'demo',
    resolvePath: (p) => resolveLocalPath(p, '/labs/demo'),
  };
}

describe('planLab', () => {
  it('without a lab file: group "vm", vm-01.., deterministic MACs, defaults', () => {
    const { plan } = planLab(labFile(''), { count: 3, golden: '/g/golden.vhd' });
    expect(plan.vms.map((vm) => vm.name)).toEqual(['vm-01', 'vm-02', 'vm-03']);
    expect(plan.vms[0]).toMatchObject({
      group: 'vm',
      cpus: 1,
      memoryMiB: 512,
      network: 'default',
      clone: 'linked',
      options: {},
      ssh: { user: 'root', port: 22 },
    });
    // No provider prefix given: a locally administered one (02:…), which no vendor or pool uses.
    expect(plan.vms[0]!.mac).toMatch(/^02:1a:b0(:[0-9a-f]{2}){3}$/);
    expect(new Set(plan.vms.map((vm) => vm.mac)).size).toBe(3);
    expect(planLab(labFile(''), { count: 3, golden: '/g/golden.vhd' }).plan.vms.map((vm) => vm.mac)).toEqual(
      plan.vms.map((vm) => vm.mac),
    );
    expect(plan.concurrency).toBe(4);
  });

  it("MACs take the provider's prefix (Hyper-V: 00:15:5D), still derived from lab + VM name", () => {
    const macPrefix = (provider: string) => ({ hyperv: '00:15:5D', fake: '52:54:00' })[provider];
    const hyperv = planLab(labFile('provider: hyperv'), { count: 3, golden: 'D:\\g.vhdx' }, { macPrefix }).plan;
    expect(hyperv.vms.map((vm) => vm.mac)).toEqual(
      hyperv.vms.map(() => expect.stringMatching(/^00:15:5d(:[0-9a-f]{2}){3}$/)),
    );
    expect(
      planLab(labFile('provider: hyperv'), { count: 3, golden: 'D:\\g.vhdx' }, { macPrefix }).plan.vms.map(
        (vm) => vm.mac,
      ),
    ).toEqual(hyperv.vms.map((vm) => vm.mac));
    const libvirt = planLab(labFile(''), { count: 3, golden: '/g.vhd' }, { macPrefix }).plan;
    // Same lab and names: the same last three octets, only the prefix differs.
    expect(libvirt.vms.map((vm) => vm.mac.slice(8))).toEqual(hyperv.vms.map((vm) => vm.mac.slice(8)));
    expect(libvirt.vms[0]!.mac).toMatch(/^52:54:00:/);
    expect(
      planLab(labFile(''), { count: 1, golden: '/g.vhd', provider: 'other' }, { macPrefix }).plan.vms[0]!.mac,
    ).toMatch(/^02:1a:b0:/);
    expect(() =>
      planLab({ ...labFile(''), spec: { ...labFile('').spec, provider: undefined } }, { count: 1, golden: '/g.vhd' }),
    ).toThrow(/no provider/);
    expect(
      planLab(
        { ...labFile(''), spec: { ...labFile('').spec, provider: undefined } },
        { count: 1, golden: '/g.vhd' },
        { defaultProvider: 'fake' },
      ).plan.provider,
    ).toBe('fake');
    expect(
      planLab(labFile(''), { count: 1, golden: '/g.vhd', provider: 'hyperv' }, { macPrefix }).plan.vms[0]!.mac,
    ).toMatch(/^00:15:5d:/);
  });

  it('group settings win over defaults, flags over both; lab-file paths are relative to the file', () => {
    const file = labFile(`
lab: demo
concurrency: 8
defaults: { golden: images/golden.vhd, memory: 1G, cpus: 2, network: labnet, kernel: boot/vmlinux, ssh: { keyFile: keys/id } }
groups:
  web: { count: 2, memory: 2G, name: "web{n}", vars: { port: 80 } }
  db: { count: 1 }
`);
    const { plan } = planLab(file, {});
    expect(plan.vms.map((vm) => `${vm.name}:${vm.group}:${vm.memoryMiB}:${vm.cpus}`)).toEqual([
      'web1:web:2048:2',
      'web2:web:2048:2',
      'db-01:db:1024:2',
    ]);
    expect(plan.vms[0]).toMatchObject({
      golden: '/labs/demo/images/golden.vhd',
      options: { kernel: '/labs/demo/boot/vmlinux' },
      ssh: { keyFile: '/labs/demo/keys/id' },
      vars: { port: 80 },
    });
    expect(plan.concurrency).toBe(8);
    const flagged = planLab(file, {
      group: 'db',
      count: 2,
      memory: '256M',
      network: 'other',
      golden: '/abs/g.qcow2',
    }).plan;
    expect(flagged.vms.map((vm) => [vm.name, vm.memoryMiB, vm.network, vm.golden])).toEqual([
      ['db-01', 256, 'other', '/abs/g.qcow2'],
      ['db-02', 256, 'other', '/abs/g.qcow2'],
    ]);
  });

  it('a Windows path (a file on a Hyper-V host) is kept as written, from the lab file or a flag', () => {
    const file = labFile(
      "provider: hyperv\ndefaults: { golden: 'D:\\Golden\\c7.vhdx' }\ngroups: { web: { count: 1 }, db: { count: 1, golden: '\\\\nas\\golden\\db.vhdx' } }\n",
    );
    expect(planLab(file, {}).plan.vms.map((vm) => vm.golden)).toEqual([
      'D:\\Golden\\c7.vhdx',
      String.raw`\\nas\golden\db.vhdx`,
    ]);
    expect(planLab(file, { group: 'web', golden: 'E:/g.vhdx' }).plan.vms[0]!.golden).toBe('E:/g.vhdx');
    expect(planLab(file, { group: 'web', golden: 'rel.vhdx' }).plan.vms[0]!.golden).toBe(
      join(process.cwd(), 'rel.vhdx'),
    );
  });

  it('refuses what cannot be planned, before anything happens', () => {
    expect(() => planLab(labFile(''), { count: 2 })).toThrow(/no golden image/);
    const two = labFile('defaults: { golden: /g.vhd }\ngroups: { a: { count: 1 }, b: { count: 1 } }');
    expect(() => planLab(two, { count: 3 })).toThrow(/--count needs --group/);
    expect(() => planLab(labFile('defaults: { golden: /g.vhd }'), { count: 1, name: 'x' })).toThrow(UsageError);
    expect(() => planLab(labFile('defaults: { golden: /g.vhd }'), { count: 1, memory: 'lots' })).toThrow(/not a size/);
    const clash = labFile(
      'defaults: { golden: /g.vhd }\ngroups: { a: { count: 1, name: "n{n}" }, b: { count: 1, name: "n{n}" } }',
    );
    expect(() => planLab(clash, {})).toThrow(/would both make a VM named n1/);
    // A typo in --group is not a new group: known groups are named; --new-group or the state's groups allow it.
    const known = labFile('defaults: { golden: /g.vhd }\ngroups: { web: { count: 1 }, db: { count: 1 } }');
    expect(() => planLab(known, { group: 'wbe', count: 1 })).toThrow(/no group "wbe"/);
    try {
      planLab(known, { group: 'wbe', count: 1 }, { knownGroups: ['cache'] });
    } catch (err) {
      expect((err as UsageError).hint).toMatch(/Known groups: cache, db, web\. To start a new group, add --new-group/);
      expect((err as UsageError).exitCode).toBe(2);
    }
    expect(
      planLab(known, { group: 'cache', count: 1 }, { knownGroups: ['cache'] }).plan.vms.map((vm) => vm.name),
    ).toEqual(['cache-01']);
    expect(planLab(known, { group: 'wbe', count: 1, newGroup: true }).plan.vms.map((vm) => vm.name)).toEqual([
      'wbe-01',
    ]);
  });
});

describe('docs/lab-file.md', () => {
  it('its example is a valid lab file and plans web-01..03 and db-01', () => {
    const doc = readFileSync(join(import.meta.dirname, '../../../../docs/lab-file.md'), 'utf8');
    const example = /```yaml\n([\s\S]*?)```/.exec(doc)![1]!;
    const { plan } = planLab(labFile(example), {});
    expect(plan.vms.map((vm) => vm.name)).toEqual(['web-01', 'web-02', 'web-03', 'db-01']);
    expect(plan.vms[3]).toMatchObject({
      memoryMiB: 2048,
      cpus: 2,
      network: 'labnet',
      golden: '/labs/demo/images/golden.vhd',
    });
  });

  it('static addresses: handed out in VM order per group, checked against the subnet, never two VMs on one', () => {
    const { plan } = planLab(
      labFile(
        [
          'defaults: { golden: /g.vhd, network: { name: labnet, prefix: 24, gateway: 10.0.0.1, dns: [10.0.0.1] } }',
          'groups:',
          '  web: { count: 3, network: { addresses: 10.0.0.20-22 } }',
          '  db: { count: 1, network: { addresses: [10.0.0.40], assign: reservation } }',
          '  dyn: { count: 1 }',
        ].join('\n'),
      ),
      {},
    );
    const byName = Object.fromEntries(plan.vms.map((vm) => [vm.name, vm]));
    expect(byName['web-03']?.address).toEqual({
      address: '10.0.0.22',
      prefix: 24,
      gateway: '10.0.0.1',
      dns: ['10.0.0.1'],
      assign: 'static',
    });
    expect(byName['db-01']?.address).toMatchObject({ address: '10.0.0.40', assign: 'reservation' });
    expect(byName['dyn-01']?.address).toBeUndefined();
    expect(byName['web-01']?.network).toBe('labnet');
    expect(byName['web-01']?.cloudInit).toEqual({ hostKeyTypes: ['ed25519'] });

    const refused = (yaml: string, code: string, message: RegExp) => {
      try {
        planLab(labFile(yaml), {});
        throw new Error('not refused');
      } catch (err) {
        expect(err).toBeInstanceOf(UsageError);
        expect((err as UsageError).code).toBe(code);
        expect((err as UsageError).exitCode).toBe(2);
        expect((err as Error).message).toMatch(message);
      }
    };
    refused(
      'defaults: { golden: /g.vhd }\ngroups:\n  a: { count: 3, network: { addresses: 10.0.0.20-21 } }',
      'ADDRESS_POOL_SHORT',
      /2 addresses for 3 VMs/,
    );
    refused(
      'defaults: { golden: /g.vhd }\ngroups:\n  a: { count: 2, network: { addresses: 10.0.0.20-21 } }\n  b: { count: 1, network: { addresses: 10.0.0.21 } }',
      'ADDRESS_CLASH',
      /a-02 and b-01 would both get 10\.0\.0\.21/,
    );
    refused(
      'defaults: { golden: /g.vhd }\ngroups:\n  a: { count: 1, network: { addresses: 10.0.0.255 } }',
      'ADDRESS_INVALID',
      /broadcast address/,
    );
    refused(
      'defaults: { golden: /g.vhd }\ngroups:\n  a: { count: 1, network: { addresses: 10.0.0.5, gateway: 10.9.0.1 } }',
      'ADDRESS_INVALID',
      /gateway 10\.9\.0\.1 is not in 10\.0\.0\.0\/24/,
    );
    refused(
      'defaults: { golden: /g.vhd }\ngroups:\n  a: { count: 1, network: { addresses: 10.0.0.300 } }',
      'ADDRESS_INVALID',
      /not an IPv4 address/,
    );
  });

  it('seed: on by default with an ed25519 host key; enabled: false plans no seed', () => {
    const { plan } = planLab(
      labFile(
        'defaults: { golden: /g.vhd, seed: { hostKeyTypes: [ed25519, rsa], userData: { packages: [git] } } }\ngroups:\n  a: { count: 1 }\n  b: { count: 1, seed: { enabled: false } }',
      ),
      {},
    );
    expect(plan.vms[0]?.cloudInit).toEqual({ hostKeyTypes: ['ed25519', 'rsa'], userData: { packages: ['git'] } });
    expect(plan.vms[1]?.cloudInit).toBeUndefined();
  });
});
