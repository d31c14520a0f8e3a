import { describe, expect, it } from 'vitest';
import { parseSnapshotList } from './day2.js';

describe('virsh snapshot-list --parent, as the stack labctl shows', () => {
  it('reads names, times, states and parents, oldest first whatever order virsh lists them in', () => {
    const out = [
      ' snap-10   2026-11-30 10:12:00 +0000   running    snap-2',
      ' before    2026-11-30 09:00:00 +0100   shutoff    ',
      ' snap-2    2026-11-30 10:11:24 +0000   running    before',
      ' garbage line',
    ].join('\n');
    expect(parseSnapshotList(out)).toEqual([
      { name: 'before', created: '2026-11-30T08:00:00.000Z', vmState: 'shutoff' },
      { name: 'snap-2', created: '2026-11-30T10:11:24.000Z', vmState: 'running', parent: 'before' },
      { name: 'snap-10', created: '2026-11-30T10:12:00.000Z', vmState: 'running', parent: 'snap-2' },
    ]);
    expect(parseSnapshotList('')).toEqual([]);
  });
});

describe('an exported domain read back', () => {
  it('parseDomainFacts reads what domainXml wrote, and what libvirt prints for it (KiB, escapes)', async () => {
    const { domainXml } = await import('./xml.js');
    const { parseDomainFacts } = await import('./bundle.js');
    const xml = domainXml({
      name: 'web-01',
      domainType: 'qemu',
      memoryMiB: 384,
      cpus: 2,
      firmware: 'bios',
      disk: '/d/web-01.qcow2',
      diskFormat: 'qcow2',
      mac: '52:54:00:aa:bb:cc',
      network: 'bridge:br0',
      kernel: '/k/vmlinux',
      cmdline: "console=ttyS0 x='<&>'",
      consoleLog: '/d/web-01.console.log',
      metadata: { lab: 'l', group: 'web', disk: '/d/web-01.qcow2', golden: '/g.vhd' },
    });
    expect(parseDomainFacts(xml)).toEqual({
      domainType: 'qemu',
      memoryMiB: 384,
      cpus: 2,
      firmware: 'bios',
      network: 'bridge:br0',
      mac: '52:54:00:aa:bb:cc',
      kernel: '/k/vmlinux',
      cmdline: "console=ttyS0 x='<&>'",
    });
    const printed = xml.replace("<memory unit='MiB'>384</memory>", "<memory unit='KiB'>393216</memory>");
    expect(parseDomainFacts(printed).memoryMiB).toBe(384);
  });
});
