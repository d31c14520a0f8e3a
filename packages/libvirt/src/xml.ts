/**
 * libvirt domain XML for one labctl VM. Every value that reaches the XML goes through `escapeXml`
 * (names, paths, kernel command lines and metadata all come from users or lab files).
 */
export const LABCTL_XMLNS = 'https://labctl.dev/xmlns/libvirt/1';
export const LABCTL_XMLNS_PREFIX = 'labctl';

const XML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Escape text and attribute values; control characters that XML 1.0 cannot carry are refused. */
export function escapeXml(value: string | number): string {
  const text = String(value);
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting exactly these characters
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(text)) {
    throw new Error(`value ${JSON.stringify(text)} contains control characters that XML cannot carry`);
  }
  return text.replace(/[&<>"']/g, (ch) => XML_ESCAPES[ch]!);
}

export function unescapeXml(value: string): string {
  return value.replace(/&(amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g, (_, entity: string) => {
    if (entity === 'amp') return '&';
    if (entity === 'lt') return '<';
    if (entity === 'gt') return '>';
    if (entity === 'quot') return '"';
    if (entity === 'apos') return "'";
    const code = entity.startsWith('#x') ? Number.parseInt(entity.slice(2), 16) : Number.parseInt(entity.slice(1), 10);
    return String.fromCodePoint(code);
  });
}

/** What labctl stores inside the domain (`<metadata>`), so `list` finds its own VMs after a crash. */
export interface LabctlMetadata {
  lab: string;
  group: string;
  /** The VM's own disk (overlay or full copy): the only disk labctl ever deletes. */
  disk: string;
  golden: string;
}

export interface DomainSpec {
  name: string;
  /** 'qemu' = TCG (software), 'kvm' = hardware acceleration. */
  domainType: 'qemu' | 'kvm';
  memoryMiB: number;
  cpus: number;
  firmware: 'bios' | 'uefi';
  disk: string;
  /** 'qcow2' for overlays and full clones. */
  diskFormat: string;
  mac: string;
  /** A libvirt network name, or `bridge:NAME` for a host bridge. */
  network: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Serial console log file: what the guest printed, for "what to check" explanations. */
  consoleLog: string;
  /** The VM's NoCloud seed image (ISO 9660, label cidata), attached read-only as a second disk. */
  seed?: string;
  /** cloud-init instance-id for the SMBIOS serial (default: the VM's name). */
  instanceId?: string;
  metadata: LabctlMetadata;
}

export function networkSource(network: string): { type: 'network' | 'bridge'; name: string } {
  return network.startsWith('bridge:')
    ? { type: 'bridge', name: network.slice('bridge:'.length) }
    : { type: 'network', name: network };
}

/**
 * The SMBIOS system serial cloud-init reads as NoCloud meta-data even without a seed disk
 * (`ds=nocloud;h=NAME;i=ID`); the demo guest reads `h=` from it too. Names are [A-Za-z0-9_.-]
 * (validated where they enter), so no `;` or `=` can reach it.
 */
export function smbiosSerial(name: string, instanceId = name): string {
  return `ds=nocloud;h=${name};i=${instanceId}`;
}

export function domainXml(spec: DomainSpec): string {
  const e = escapeXml;
  const net = networkSource(spec.network);
  const uefi = spec.firmware === 'uefi';
  const kernelBoot = spec.kernel
    ? [
        `    <kernel>${e(spec.kernel)}</kernel>`,
        ...(spec.initrd ? [`    <initrd>${e(spec.initrd)}</initrd>`] : []),
        ...(spec.cmdline ? [`    <cmdline>${e(spec.cmdline)}</cmdline>`] : []),
      ]
    : ["    <boot dev='hd'/>"];
  const meta = spec.metadata;
  return [
    `<domain type='${e(spec.domainType)}'>`,
    `  <name>${e(spec.name)}</name>`,
    `  <title>${e(`labctl ${meta.lab}/${spec.name}`)}</title>`,
    '  <metadata>',
    `    <${LABCTL_XMLNS_PREFIX}:vm xmlns:${LABCTL_XMLNS_PREFIX}='${LABCTL_XMLNS}'>`,
    `      <${LABCTL_XMLNS_PREFIX}:lab>${e(meta.lab)}</${LABCTL_XMLNS_PREFIX}:lab>`,
    `      <${LABCTL_XMLNS_PREFIX}:group>${e(meta.group)}</${LABCTL_XMLNS_PREFIX}:group>`,
    `      <${LABCTL_XMLNS_PREFIX}:disk>${e(meta.disk)}</${LABCTL_XMLNS_PREFIX}:disk>`,
    `      <${LABCTL_XMLNS_PREFIX}:golden>${e(meta.golden)}</${LABCTL_XMLNS_PREFIX}:golden>`,
    `    </${LABCTL_XMLNS_PREFIX}:vm>`,
    '  </metadata>',
    `  <memory unit='MiB'>${e(spec.memoryMiB)}</memory>`,
    `  <vcpu>${e(spec.cpus)}</vcpu>`,
    // Identity without a seed disk too: cloud-init's NoCloud reads the SMBIOS serial.
    "  <sysinfo type='smbios'>",
    '    <system>',
    `      <entry name='serial'>${e(smbiosSerial(spec.name, spec.instanceId))}</entry>`,
    '    </system>',
    '  </sysinfo>',
    uefi ? "  <os firmware='efi'>" : '  <os>',
    `    <type arch='x86_64' machine='${uefi ? 'q35' : 'pc'}'>hvm</type>`,
    ...kernelBoot,
    "    <smbios mode='sysinfo'/>",
    '  </os>',
    '  <features><acpi/><apic/></features>',
    '  <devices>',
    "    <disk type='file' device='disk'>",
    `      <driver name='qemu' type='${e(spec.diskFormat)}' discard='unmap'/>`,
    `      <source file='${e(spec.disk)}'/>`,
    "      <target dev='vda' bus='virtio'/>",
    '    </disk>',
    ...(spec.seed
      ? [
          // A read-only virtio disk, not a CD-ROM: guests find it by its label (cidata) either way,
          // and a virtio disk needs no SCSI/ATA stack in the guest.
          "    <disk type='file' device='disk'>",
          "      <driver name='qemu' type='raw'/>",
          `      <source file='${e(spec.seed)}'/>`,
          "      <target dev='vdb' bus='virtio'/>",
          '      <readonly/>',
          '    </disk>',
        ]
      : []),
    `    <interface type='${net.type}'>`,
    `      <source ${net.type}='${e(net.name)}'/>`,
    `      <mac address='${e(spec.mac)}'/>`,
    "      <model type='virtio'/>",
    "      <rom enabled='no'/>",
    '    </interface>',
    "    <serial type='file'>",
    `      <source path='${e(spec.consoleLog)}'/>`,
    "      <target port='0'/>",
    '    </serial>',
    "    <memballoon model='none'/>",
    '  </devices>',
    // No DAC relabelling: libvirt would otherwise chown the overlay AND its backing chain, i.e. the
    // shared golden image. qemu runs with the daemon's identity and reads the golden image in place;
    // the only writable disk is the VM's own overlay.
    "  <seclabel type='static' model='dac' relabel='no'>",
    '    <label>+0:+0</label>',
    '  </seclabel>',
    '</domain>',
    '',
  ].join('\n');
}

/**
 * Reads labctl's `<metadata>` element back: from `virsh metadata NAME <labctl namespace>` (which
 * answers only for that namespace and prints the element without its prefix) or from `dumpxml`.
 */
export function parseLabctlMetadata(xml: string): LabctlMetadata | undefined {
  const field = (name: string): string | undefined => {
    const match = new RegExp(`<(?:[A-Za-z0-9_]+:)?${name}>([^<]*)</(?:[A-Za-z0-9_]+:)?${name}>`).exec(xml);
    return match ? unescapeXml(match[1]!) : undefined;
  };
  if (!/^\s*<vm[\s>]/.test(xml) && !xml.includes(LABCTL_XMLNS)) return undefined;
  const lab = field('lab');
  const group = field('group');
  if (!lab || !group) return undefined;
  return { lab, group, disk: field('disk') ?? '', golden: field('golden') ?? '' };
}
