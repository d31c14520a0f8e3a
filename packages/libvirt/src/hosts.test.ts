import { describe, expect, it } from 'vitest';
import { libvirtHosts } from './hosts.js';
import { parseNodeMemory, parseVersions } from './provider.js';

const resolve = (path: string) => (path.startsWith('/') ? path : `/lab/${path}`);

describe('libvirt hosts from labctl.yaml', () => {
  it('takes a uri as written, or builds qemu+ssh:// from address, user and port; paths are the lab’s', () => {
    const hosts = libvirtHosts(
      {
        hosts: [
          { name: 'kvm1', uri: 'qemu+ssh://root@kvm1.lab/system?keyfile=/k', pool: 'fast', concurrency: 2 },
          { name: 'kvm2', address: 'kvm2.lab', user: 'admin', port: 2222, path: 'disks', memoryLimit: 4096 },
          { name: 'here', address: 'local' },
        ],
      },
      resolve,
    );
    expect(hosts).toEqual([
      { name: 'kvm1', uri: 'qemu+ssh://root@kvm1.lab/system?keyfile=/k', pool: 'fast', concurrency: 2 },
      { name: 'kvm2', uri: 'qemu+ssh://admin@kvm2.lab:2222/system', diskDir: '/lab/disks', memoryLimitMiB: 4096 },
      { name: 'here', uri: 'qemu:///system' },
    ]);
  });

  it('refuses a host with no way to reach it, and URIs or addresses that are not one argument', () => {
    expect(() => libvirtHosts({ hosts: [{ name: 'x' }] }, resolve)).toThrow(/no uri \(or address\)/);
    for (const uri of ['-c qemu:///system', 'qemu:///system x', 'qemu:///system\n', 'system'])
      expect(() => libvirtHosts({ hosts: [{ name: 'x', uri }] }, resolve)).toThrow(/is not a libvirt URI/);
    expect(() => libvirtHosts({ hosts: [{ name: 'x', address: 'a b' }] }, resolve)).toThrow(/is not a libvirt URI/);
  });
});

describe('host facts', () => {
  it('reads virsh nodememstats and virsh version', () => {
    expect(
      parseNodeMemory(
        'total  :             16314044 KiB\nfree   :              6873380 KiB\nbuffers:               312904 KiB\ncached :              5224540 KiB\n',
      ),
    ).toEqual({ total: 16314044 * 1024, free: 6873380 * 1024, buffers: 312904 * 1024, cached: 5224540 * 1024 });
    expect(
      parseVersions(
        'Compiled against library: libvirt 9.0.0\nUsing library: libvirt 9.0.0\nUsing API: QEMU 9.0.0\nRunning hypervisor: QEMU 7.2.22\n',
      ),
    ).toEqual({ libvirtVersion: '9.0.0', hypervisorVersion: 'QEMU 7.2.22' });
  });
});
