import { describe, expect, it } from 'vitest';
import { buildInventory, knownHostsName, safeGroupName, sshCommonArgs } from './model.js';
import { shlexSplit } from './python-literal.js';

const KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl';
const vm = (name: string, group: string, extra: Record<string, unknown> = {}) =>
  ({
    name,
    group,
    provider: 'manual',
    host: 'local',
    addresses: ['192.0.2.1'],
    ssh: { hostKeys: [KEY] },
    state: 'running',
    ...extra,
  }) as never;
const build = (vms: unknown[], spec = {}) =>
  buildInventory({ version: 1, lab: 'lab.1', vms: vms as never }, spec, { knownHostsFile: '/kh' });

describe('the inventory model', () => {
  it('converts group names like Ansible and names the root group after the lab', () => {
    expect(safeGroupName('web-1')).toBe('web_1');
    expect(safeGroupName('1db.x')).toBe('_db_x');
    expect(safeGroupName('grüße')).toBe('grüße');
    expect(build([vm('a', 'web')]).inventory.rootGroup).toBe('labctl_lab_1');
  });

  it('leaves out VMs it cannot use, and says why', () => {
    const { inventory, skipped } = build([
      vm('ok', 'g'),
      vm('noaddr', 'g', { addresses: ['169.254.1.1', 'fe80::1'] }),
      vm('gone', 'g', { state: 'missing' }),
      vm('bad name', 'g'),
    ]);
    expect(inventory.hosts.map((h) => h.name)).toEqual(['ok']);
    expect(skipped.map((s) => s.name)).toEqual(['bad name', 'gone', 'noaddr']);
  });

  it('refuses reserved group names and cycles', () => {
    expect(() => build([vm('a', 'all')])).toThrow(/reserved/);
    expect(() =>
      build([vm('a', 'g')], { inventory: { groups: { x: { children: ['y'] }, y: { children: ['x'] } } } }),
    ).toThrow(/cycle/);
  });

  it('drops invalid variable names with a warning', () => {
    const { inventory, warnings } = build([vm('a', 'g', { vars: { good: 1, 'bad-name': 2 } })]);
    expect(inventory.hosts[0]?.vars).toEqual({ ansible_host: '192.0.2.1', good: 1 });
    expect(warnings.some((w) => w.includes('"bad-name"'))).toBe(true);
  });

  it('pins the key where ssh connects, and quotes the known_hosts path for shlex and ssh', () => {
    expect(knownHostsName('192.0.2.1', 22)).toBe('192.0.2.1');
    expect(knownHostsName('2001:db8::1', 2222)).toBe('[2001:db8::1]:2222');
    const { inventory } = build([vm('a', 'g', { vars: { ansible_port: 2022 } })]);
    expect(inventory.knownHosts).toEqual([`[192.0.2.1]:2022 ${KEY}`]);
    expect(shlexSplit(sshCommonArgs("/my labs/it's 100%/known_hosts"))).toEqual([
      '-o',
      `UserKnownHostsFile="/my labs/it's 100%%/known_hosts"`,
      '-o',
      'StrictHostKeyChecking=yes',
    ]);
  });
});
