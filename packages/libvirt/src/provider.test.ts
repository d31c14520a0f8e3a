import { describe, expect, it } from 'vitest';
import { isLocalUri, LibvirtProvider, remoteUriChecks } from './provider.js';

describe('LibvirtProvider', () => {
  it("tells local URIs (the neighbour table and qemu-img are this machine's) from remote ones", () => {
    expect(isLocalUri('qemu:///system')).toBe(true);
    expect(isLocalUri('qemu:///system?socket=/tmp/x/run/libvirt-sock')).toBe(true);
    expect(isLocalUri('qemu:///session')).toBe(true);
    expect(isLocalUri('qemu+ssh://root@kvm01/system')).toBe(false);
    expect(isLocalUri('qemu+tls://kvm01/system')).toBe(false);
  });

  it('makes disks with the local qemu-img for a local URI, through a storage pool for a remote one or when a pool is set', () => {
    expect(new LibvirtProvider({ lab: 'l', diskDir: '/d' }).store.kind).toBe('local');
    expect(new LibvirtProvider({ lab: 'l', uri: 'qemu:///system', diskDir: '/d', pool: 'p' }).store.kind).toBe('pool');
    expect(new LibvirtProvider({ lab: 'l', uri: 'qemu+ssh://root@kvm01/system', diskDir: '/d' }).store.kind).toBe(
      'pool',
    );
  });

  it('checks the storage pool of a remote host in preflight, before anything is created', async () => {
    // A "virsh" that answers everything with nothing: connected, but the pool is not running.
    const provider = new LibvirtProvider({
      lab: 'l',
      uri: 'qemu+ssh://root@kvm01/system',
      diskDir: '/nonexistent',
      virshProgram: 'true',
    });
    const { checks } = await provider.preflight({ lab: 'l', provider: 'libvirt', concurrency: 1, vms: [] });
    expect(checks.find((check) => check.level === 'error')).toMatchObject({
      id: 'libvirt.pool',
      message: expect.stringMatching(/"default" is not active/),
    });
  });

  it('warns when a URI turns host-key checking off or carries a known_hosts= the ssh transport ignores; never for local URIs', () => {
    expect(remoteUriChecks('qemu:///system?socket=/x')).toEqual([]);
    expect(remoteUriChecks('qemu+libssh://root@kvm01/system?known_hosts=/k&keyfile=/id')).toEqual([]);
    expect(remoteUriChecks('qemu+ssh://root@kvm01/system?no_verify=1')).toEqual([
      expect.objectContaining({ level: 'warning', message: expect.stringMatching(/no_verify/) }),
    ]);
    expect(remoteUriChecks('qemu+ssh://root@kvm01/system?known_hosts=/k')).toEqual([
      expect.objectContaining({ message: expect.stringMatching(/OpenSSH/) }),
    ]);
  });
});
