import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { requireTestbed } from '@labctl/core/testing/testbed';
import { describe, expect, it } from 'vitest';
import { type DomainSpec, domainXml, escapeXml, parseLabctlMetadata, unescapeXml } from './xml.js';

const hostile = `x'"<>&]]>`;

function spec(overrides: Partial<DomainSpec> = {}): DomainSpec {
  return {
    name: 'web-01',
    domainType: 'qemu',
    memoryMiB: 128,
    cpus: 1,
    firmware: 'bios',
    disk: '/var/lib/labctl/disks/web-01.qcow2',
    diskFormat: 'qcow2',
    mac: '52:54:00:aa:bb:cc',
    network: 'labnet',
    consoleLog: '/var/lib/labctl/disks/web-01.console.log',
    metadata: { lab: 'demo', group: 'web', disk: '/var/lib/labctl/disks/web-01.qcow2', golden: '/srv/golden.vhd' },
    ...overrides,
  };
}

describe('escapeXml', () => {
  it('escapes the five XML specials and round-trips', () => {
    expect(escapeXml(hostile)).toBe('x&apos;&quot;&lt;&gt;&amp;]]&gt;');
    expect(unescapeXml(escapeXml(hostile))).toBe(hostile);
  });

  it('refuses control characters XML cannot carry', () => {
    expect(() => escapeXml('a\u0001b')).toThrow(/control characters/);
    expect(escapeXml('tab\tand\nnewline')).toBe('tab\tand\nnewline');
  });
});

describe('domainXml', () => {
  it('no user value can break out of its element or attribute', () => {
    const xml = domainXml(
      spec({
        disk: `/tmp/${hostile}.qcow2`,
        network: hostile,
        kernel: `/boot/${hostile}`,
        initrd: '/boot/initrd',
        cmdline: `console=ttyS0 ${hostile}`,
        consoleLog: `/tmp/${hostile}.log`,
        metadata: { lab: hostile, group: hostile, disk: hostile, golden: hostile },
      }),
    );
    expect(xml).not.toContain(hostile);
    expect(xml).toContain("<source file='/tmp/x&apos;&quot;&lt;&gt;&amp;]]&gt;.qcow2'/>");
    expect(xml).toContain("<source network='x&apos;&quot;&lt;&gt;&amp;]]&gt;'/>");
    // Every element opened is closed: no injected markup.
    const opened = [...xml.matchAll(/<[A-Za-z]/g)].length;
    const selfClosed = [...xml.matchAll(/\/>/g)].length;
    const closed = [...xml.matchAll(/<\/[A-Za-z:]+>/g)].length;
    expect(opened).toBe(selfClosed + closed);
    expect(parseLabctlMetadata(xml)).toEqual({ lab: hostile, group: hostile, disk: hostile, golden: hostile });
  });

  it("every domain carries cloud-init's NoCloud identity in the SMBIOS serial; the kernel command line is the user's", () => {
    const direct = domainXml(spec({ kernel: '/g/vmlinux', initrd: '/g/initrd', cmdline: 'console=ttyS0' }));
    expect(direct).toContain('<cmdline>console=ttyS0</cmdline>');
    expect(direct).not.toContain("<boot dev='hd'/>");
    const disk = domainXml(spec());
    expect(disk).toContain("<boot dev='hd'/>");
    expect(disk).not.toContain('<kernel>');
    for (const xml of [direct, disk]) {
      expect(xml).toContain("<entry name='serial'>ds=nocloud;h=web-01;i=web-01</entry>");
      expect(xml).toContain("<smbios mode='sysinfo'/>");
    }
  });

  it('never lets libvirt relabel (chown) disks, so the golden backing file keeps its owner', () => {
    expect(domainXml(spec())).toMatch(/<seclabel type='static' model='dac' relabel='no'>/);
  });

  it('bridge:NAME attaches to a host bridge; uefi asks for EFI firmware on q35', () => {
    const xml = domainXml(spec({ network: 'bridge:br0', firmware: 'uefi', domainType: 'kvm' }));
    expect(xml).toContain("<interface type='bridge'>");
    expect(xml).toContain("<source bridge='br0'/>");
    expect(xml).toContain("<os firmware='efi'>");
    expect(xml).toContain("machine='q35'");
    expect(xml).toMatch(/^<domain type='kvm'>/);
  });

  it('a seed is a second, read-only raw disk, and its instance-id goes into the SMBIOS serial', () => {
    const xml = domainXml(spec({ seed: '/lab/web-01.seed.iso', instanceId: 'web-01-0a1b' }));
    expect(xml).toMatch(
      /<disk type='file' device='disk'>\s*<driver name='qemu' type='raw'\/>\s*<source file='\/lab\/web-01.seed.iso'\/>\s*<target dev='vdb' bus='virtio'\/>\s*<readonly\/>/,
    );
    expect(xml).toContain('ds=nocloud;h=web-01;i=web-01-0a1b');
    expect(domainXml(spec())).not.toContain('vdb');
  });

  it('parses the metadata as `virsh metadata` prints it (namespace prefix dropped)', () => {
    expect(
      parseLabctlMetadata(
        '<vm>\n  <lab>demo</lab>\n  <group>web</group>\n  <disk>/d/web-01.qcow2</disk>\n  <golden>/g.vhd</golden>\n</vm>\n',
      ),
    ).toEqual({
      lab: 'demo',
      group: 'web',
      disk: '/d/web-01.qcow2',
      golden: '/g.vhd',
    });
    expect(parseLabctlMetadata('<other/>')).toBeUndefined();
  });
});

const gate = requireTestbed('libvirt schema validation', { commands: ['virt-xml-validate', 'xmllint'] });
describe.skipIf(gate.skip)("domainXml against libvirt's own schema (virt-xml-validate)", () => {
  it('is a valid libvirt domain, hostile values included', () => {
    const dir = mkdtempSync(join(tmpdir(), 'labctl-libvirt-xml-'));
    for (const [i, domain] of [
      spec(),
      spec({
        kernel: '/g/vmlinux',
        initrd: '/g/initrd',
        cmdline: `a ${hostile}`,
        firmware: 'uefi',
        network: 'bridge:br0',
        metadata: { lab: hostile, group: 'g', disk: hostile, golden: hostile },
      }),
    ].entries()) {
      const file = join(dir, `d${i}.xml`);
      writeFileSync(file, domainXml(domain));
      // Exit status 0 = valid; anything else throws with xmllint's complaint.
      execFileSync('virt-xml-validate', [file, 'domain'], { stdio: 'pipe' });
    }
  });
});
