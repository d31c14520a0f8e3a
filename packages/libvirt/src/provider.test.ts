import { describe, expect, it } from 'vitest';
import { isLocalUri, LibvirtProvider } from './provider.js';

describe('LibvirtProvider', () => {
  it('tells local URIs (the neighbour table and qemu-img are this machine\'s) from remote ones', () => {
    expect(isLocalUri('qemu:///system')).toBe(true);
    expect(isLocalUri('qemu:///system?socket=/tmp/x/run/libvirt-sock')).toBe(true);
    expect(isLocalUri('qemu:///session')).toBe(true);
    expect(isLocalUri('qemu+ssh://root@kvm01/system')).toBe(false);
    expect(isLocalUri('qemu+tls://kvm01/system')).toBe(false);
  });

  it('refuses a remote host in preflight, before anything is created', async () => {
    // A "virsh" that answers `uri` (connected) and nothing else: only the preflight's own logic runs.
    const provider = new LibvirtProvider({ lab: 'l', uri: 'qemu+ssh://root@kvm01/system', diskDir: '/nonexistent', virshProgram: 'true' });
    const checks = await provider.preflight({ lab: 'l', provider: 'libvirt', concurrency: 1, vms: [] });
    expect(checks.find((check) => check.level === 'error')).toMatchObject({ id: 'libvirt.remote' });
  });
});
