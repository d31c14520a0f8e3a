import { describe, expect, it } from 'vitest';
import { libvirtOptions } from './options.js';

describe('libvirtOptions: the VM settings only libvirt reads, typed at its boundary', () => {
  it('defaults firmware to bios and passes direct kernel boot through', () => {
    expect(libvirtOptions({ name: 'a', options: {} })).toEqual({ firmware: 'bios' });
    expect(libvirtOptions({ name: 'a', options: { firmware: 'uefi', kernel: '/g/vmlinux', cmdline: '' } })).toEqual({
      firmware: 'uefi',
      kernel: '/g/vmlinux',
      cmdline: '',
    });
    // Another provider's settings are not libvirt's business.
    expect(libvirtOptions({ name: 'a', options: { generation: 2 } })).toEqual({ firmware: 'bios' });
  });

  it('a wrong value is a usage error (exit 2) naming the VM', () => {
    expect(() => libvirtOptions({ name: 'web-01', options: { firmware: 'efi' } })).toThrow(
      expect.objectContaining({ code: 'LIBVIRT_OPTION', exitCode: 2 }),
    );
    expect(() => libvirtOptions({ name: 'web-01', options: { kernel: 7 } })).toThrow(/web-01: kernel must be text/);
  });
});
