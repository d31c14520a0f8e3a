import { describe, expect, it } from 'vitest';
import { buildInventory, safeGroupName, sshCommonArgs } from './model.js';
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
    expect(inventory.hosts[0]?.vars).toEqual({
      ansible_host: '192.0.2.1',
      ansible_ssh_extra_args: '-o HostKeyAlias=a',
      labctl_state: 'running',
      good: 1,
    });
    expect(warnings.some((w) => w.includes('"bad-name"'))).toBe(true);
  });

  it('pins the key under the VM name (HostKeyAlias) wherever ssh connects, and quotes the known_hosts path for shlex and ssh', () => {
    const { inventory } = build([vm('a', 'g', { vars: { ansible_port: 2022, ansible_host: '192.0.2.99' } })]);
    expect(inventory.knownHosts).toEqual([`a ${KEY}`]);
    expect(inventory.hosts[0]?.vars.ansible_ssh_extra_args).toBe('-o HostKeyAlias=a');
    expect(shlexSplit(sshCommonArgs("/my labs/it's 100%/known_hosts"))).toEqual([
      '-o',
      `UserKnownHostsFile="/my labs/it's 100%%/known_hosts"`,
      '-o',
      'StrictHostKeyChecking=yes',
    ]);
  });

  it("adds to the user's ansible_ssh_common_args (lab, group and host level) instead of replacing them", () => {
    const pinning = sshCommonArgs('/kh');
    const { inventory } = build(
      [vm('a', 'web'), vm('b', 'db', { vars: { ansible_ssh_common_args: '-o ControlPersist=60s' } })],
      {
        inventory: { vars: { ansible_ssh_common_args: '-o ProxyJump=admin@bastion' } },
        groups: { web: { vars: { ansible_ssh_common_args: '-o ForwardAgent=yes' } } },
      },
    );
    const group = (name: string) => inventory.groups.find((g) => g.name === name)!;
    expect(group('labctl_lab_1').vars.ansible_ssh_common_args).toBe(`-o ProxyJump=admin@bastion ${pinning}`);
    expect(group('web').vars.ansible_ssh_common_args).toBe(`-o ForwardAgent=yes ${pinning}`);
    expect(inventory.hosts.find((h) => h.name === 'b')!.vars.ansible_ssh_common_args).toBe(
      `-o ControlPersist=60s ${pinning}`,
    );
  });

  it('ssh.proxyJump reaches the host vars; stopped VMs are in labctl_stopped, not their group, with their state', () => {
    const { inventory } = build([vm('web-01', 'web'), vm('web-02', 'web', { state: 'stopped' }), vm('db-01', 'db')], {
      defaults: { ssh: { proxyJump: 'admin@bastion:2222' } },
      groups: { db: { ssh: { proxyJump: 'j1,ops@j2' } } },
    });
    const hosts = Object.fromEntries(inventory.hosts.map((h) => [h.name, h]));
    expect(hosts['web-01']!.vars.ansible_ssh_extra_args).toBe('-o HostKeyAlias=web-01 -o ProxyJump=admin@bastion:2222');
    expect(hosts['db-01']!.vars.ansible_ssh_extra_args).toBe('-o HostKeyAlias=db-01 -o ProxyJump=j1,ops@j2');
    expect(hosts['db-01']!.proxyJump).toBe('j1,ops@j2');
    const group = (name: string) => inventory.groups.find((g) => g.name === name)!;
    expect(group('web').hosts).toEqual(['web-01']);
    expect(group('labctl_stopped').hosts).toEqual(['web-02']);
    expect(hosts['web-02']!.vars.labctl_state).toBe('stopped');
    expect(group('labctl_lab_1').children).toContain('labctl_stopped');
    expect(() => build([vm('a', 'labctl_stopped')])).toThrow(/reserved/);
  });
});
