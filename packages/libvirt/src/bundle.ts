import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { EventSink } from '@labctl/core/events';
import { pathInside } from '@labctl/core/names';
import type { VmBundleDescription, VmExportFacts } from '@labctl/core/provider';
import type { VmRecord } from '@labctl/core/state';
import { LibvirtError } from './connect.js';
import { bundleProblem, DESCRIPTION_FILE, fileSha256, recordIdentity, SUMS_FILE } from '@labctl/core/flows/bundle';
import { exportDomainDisk, type ExportHost } from './export-disk.js';
import { escapeXml, unescapeXml } from './xml.js';

/**
 * `labctl export` on libvirt: a stopped VM as a self-contained bundle (flattened disk, seed, the
 * domain XML libvirt holds, labctl's description, SHA256SUMS written last so a bundle without it
 * is unfinished), or as an OVF 1.0 package (.ova: descriptor, streamOptimized VMDK, SHA-256
 * manifest) that other hypervisors import. Kernel and initrd files of a direct-kernel-boot VM are
 * named, not copied.
 */

/** The settings of a domain labctl defined, read back from `virsh dumpxml --inactive`. */
export interface DomainFacts {
  domainType: string;
  memoryMiB: number;
  cpus: number;
  firmware: 'bios' | 'uefi';
  network: string;
  mac: string;
  kernel?: string;
  initrd?: string;
  cmdline?: string;
}

const MEMORY_UNITS: Record<string, number> = { KiB: 1 / 1024, MiB: 1, GiB: 1024, b: 1 / 2 ** 20, bytes: 1 / 2 ** 20 };

export function parseDomainFacts(xml: string): DomainFacts {
  const text = (pattern: RegExp) => {
    const found = pattern.exec(xml)?.[1];
    return found === undefined ? undefined : unescapeXml(found);
  };
  const memory = /<memory(?: unit='(\w+)')?>(\d+)<\/memory>/.exec(xml);
  const source = /<interface type='(network|bridge)'>[\s\S]*?<source (?:network|bridge)='([^']+)'/.exec(xml);
  const mac = text(/<mac address='([^']+)'\/>/);
  if (!memory || !source || !mac)
    throw new LibvirtError('DOMAIN_XML', 'the domain XML lacks its memory, interface or MAC');
  const kernel = text(/<kernel>([^<]*)<\/kernel>/);
  const initrd = text(/<initrd>([^<]*)<\/initrd>/);
  const cmdline = text(/<cmdline>([^<]*)<\/cmdline>/);
  return {
    domainType: text(/<domain type='(\w+)'/) ?? 'qemu',
    memoryMiB: Math.round(Number(memory[2]) * (MEMORY_UNITS[memory[1] ?? 'KiB'] ?? 1 / 1024)),
    cpus: Number(text(/<vcpu[^>]*>(\d+)<\/vcpu>/) ?? 1),
    firmware: /<os firmware='efi'>|<loader /.test(xml) ? 'uefi' : 'bios',
    network: source[1] === 'bridge' ? `bridge:${unescapeXml(source[2]!)}` : unescapeXml(source[2]!),
    mac,
    ...(kernel ? { kernel } : {}),
    ...(initrd ? { initrd } : {}),
    ...(cmdline ? { cmdline } : {}),
  };
}

async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const partial = `${path}.labctl-partial`;
  const handle = await open(partial, 'w', mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(partial, path);
}

export interface BundleHost extends ExportHost {
  lab: string;
}

export async function exportBundle(
  host: BundleHost,
  vm: VmRecord,
  request: { dir: string; format: 'bundle' | 'ova' },
  events: EventSink,
): Promise<VmExportFacts> {
  if (request.format === 'ova') return exportOva(host, vm, request.dir, events);
  const dir = pathInside(request.dir, vm.name, 'bundle directory');
  if (!(await bundleProblem(dir))) {
    events({ subject: vm.name, phase: 'export', status: 'skipped', message: `${dir} is complete and verified` });
    return { path: dir, format: 'bundle', written: false, files: await listedFiles(dir) };
  }
  await mkdir(dir, { recursive: true, mode: 0o700 });
  await rm(join(dir, SUMS_FILE), { force: true });
  const description = await describe(host, vm, { disk: 'disk.qcow2', definition: 'domain.xml' });
  await exportDomainDisk(
    host,
    vm,
    { output: join(dir, 'disk.qcow2'), format: 'qcow2', flatten: true, overwrite: true },
    events,
  );
  const seed = await host.store.seedPath(vm.name);
  if (await isFile(seed)) {
    // It holds the VM's private host keys: the bundle's directory is 0700 and the copy 0600.
    await copyFile(seed, join(dir, 'seed.iso.labctl-partial'));
    await chmod(join(dir, 'seed.iso.labctl-partial'), 0o600);
    await rename(join(dir, 'seed.iso.labctl-partial'), join(dir, 'seed.iso'));
    description.files.seed = 'seed.iso';
  }
  await writeAtomic(join(dir, 'domain.xml'), await host.virsh.text(['dumpxml', '--inactive', vm.name]), 0o600);
  await writeAtomic(join(dir, DESCRIPTION_FILE), `${JSON.stringify(description, null, 2)}\n`, 0o600);
  const names = [
    description.files.disk,
    ...(description.files.seed ? [description.files.seed] : []),
    'domain.xml',
    DESCRIPTION_FILE,
  ];
  const sums: string[] = [];
  for (const name of names) sums.push(`${await fileSha256(join(dir, name))}  ${name}`);
  await writeAtomic(join(dir, SUMS_FILE), `${sums.join('\n')}\n`, 0o600);
  events({ subject: vm.name, phase: 'export', status: 'done', message: dir });
  return { path: dir, format: 'bundle', written: true, files: await listedFiles(dir) };
}

async function listedFiles(dir: string): Promise<VmExportFacts['files']> {
  const sums = await readFile(join(dir, SUMS_FILE), 'utf8');
  return Promise.all(
    sums
      .split('\n')
      .filter(Boolean)
      .map(async (line) => {
        const [sha256, name] = line.split('  ') as [string, string];
        return { name, sha256, bytes: (await stat(join(dir, name))).size };
      }),
  );
}

async function isFile(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

async function describe(
  host: BundleHost,
  vm: VmRecord,
  files: VmBundleDescription['files'],
): Promise<VmBundleDescription> {
  const facts = parseDomainFacts(await host.virsh.text(['dumpxml', '--inactive', vm.name]));
  const { domainType, memoryMiB, cpus, network, mac, ...options } = facts;
  return {
    labctlExport: 1,
    ...recordIdentity(vm),
    provider: 'libvirt',
    mac,
    cpus,
    memoryMiB,
    network,
    options: { ...options, domainType },
    files,
    exportedAt: new Date().toISOString(),
  };
}

/** An OVF 1.0 descriptor for one VM with one streamOptimized VMDK and one NIC (DSP0243). */
export function ovfDescriptor(options: {
  name: string;
  vmdk: string;
  vmdkBytes: number;
  capacityBytes: number;
  cpus: number;
  memoryMiB: number;
  network: string;
}): string {
  const e = escapeXml;
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1" xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"',
    '    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"',
    '    xmlns:vssd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"',
    '    xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ovf:version="1.0">',
    '  <References>',
    `    <File ovf:id="file1" ovf:href="${e(options.vmdk)}" ovf:size="${options.vmdkBytes}"/>`,
    '  </References>',
    '  <DiskSection>',
    '    <Info>Virtual disks</Info>',
    `    <Disk ovf:diskId="vmdisk1" ovf:fileRef="file1" ovf:capacity="${options.capacityBytes}" ovf:format="http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"/>`,
    '  </DiskSection>',
    '  <NetworkSection>',
    '    <Info>Logical networks</Info>',
    `    <Network ovf:name="${e(options.network)}"><Description>The network the VM was on in its lab</Description></Network>`,
    '  </NetworkSection>',
    `  <VirtualSystem ovf:id="${e(options.name)}">`,
    '    <Info>A virtual machine exported by labctl</Info>',
    `    <Name>${e(options.name)}</Name>`,
    '    <OperatingSystemSection ovf:id="36">',
    '      <Info>The guest operating system</Info>',
    '      <Description>Linux</Description>',
    '    </OperatingSystemSection>',
    '    <VirtualHardwareSection>',
    '      <Info>Virtual hardware requirements</Info>',
    '      <System>',
    '        <vssd:ElementName>Virtual Hardware Family</vssd:ElementName>',
    '        <vssd:InstanceID>0</vssd:InstanceID>',
    `        <vssd:VirtualSystemIdentifier>${e(options.name)}</vssd:VirtualSystemIdentifier>`,
    '        <vssd:VirtualSystemType>vmx-07</vssd:VirtualSystemType>',
    '      </System>',
    '      <Item>',
    '        <rasd:AllocationUnits>hertz * 10^6</rasd:AllocationUnits>',
    `        <rasd:ElementName>${options.cpus} virtual CPU(s)</rasd:ElementName>`,
    '        <rasd:InstanceID>1</rasd:InstanceID>',
    '        <rasd:ResourceType>3</rasd:ResourceType>',
    `        <rasd:VirtualQuantity>${options.cpus}</rasd:VirtualQuantity>`,
    '      </Item>',
    '      <Item>',
    '        <rasd:AllocationUnits>byte * 2^20</rasd:AllocationUnits>',
    `        <rasd:ElementName>${options.memoryMiB} MB of memory</rasd:ElementName>`,
    '        <rasd:InstanceID>2</rasd:InstanceID>',
    '        <rasd:ResourceType>4</rasd:ResourceType>',
    `        <rasd:VirtualQuantity>${options.memoryMiB}</rasd:VirtualQuantity>`,
    '      </Item>',
    '      <Item>',
    '        <rasd:Address>0</rasd:Address>',
    '        <rasd:ElementName>SCSI controller 0</rasd:ElementName>',
    '        <rasd:InstanceID>3</rasd:InstanceID>',
    '        <rasd:ResourceSubType>lsilogic</rasd:ResourceSubType>',
    '        <rasd:ResourceType>6</rasd:ResourceType>',
    '      </Item>',
    '      <Item>',
    '        <rasd:AddressOnParent>0</rasd:AddressOnParent>',
    '        <rasd:ElementName>Hard disk 1</rasd:ElementName>',
    '        <rasd:HostResource>ovf:/disk/vmdisk1</rasd:HostResource>',
    '        <rasd:InstanceID>4</rasd:InstanceID>',
    '        <rasd:Parent>3</rasd:Parent>',
    '        <rasd:ResourceType>17</rasd:ResourceType>',
    '      </Item>',
    '      <Item>',
    '        <rasd:AutomaticAllocation>true</rasd:AutomaticAllocation>',
    `        <rasd:Connection>${e(options.network)}</rasd:Connection>`,
    '        <rasd:ElementName>Network adapter 1</rasd:ElementName>',
    '        <rasd:InstanceID>5</rasd:InstanceID>',
    '        <rasd:ResourceSubType>VmxNet3</rasd:ResourceSubType>',
    '        <rasd:ResourceType>10</rasd:ResourceType>',
    '      </Item>',
    '    </VirtualHardwareSection>',
    '  </VirtualSystem>',
    '</Envelope>',
    '',
  ].join('\n');
}

const run = promisify(execFile);

async function exportOva(host: BundleHost, vm: VmRecord, dir: string, events: EventSink): Promise<VmExportFacts> {
  const ova = pathInside(dir, `${vm.name}.ova`, 'OVA file');
  const parts = pathInside(dir, `.${vm.name}.ova-parts`, 'OVA work directory');
  await rm(parts, { recursive: true, force: true });
  await mkdir(parts, { recursive: true, mode: 0o700 });
  try {
    const vmdk = `${vm.name}-disk1.vmdk`;
    const disk = await exportDomainDisk(
      host,
      vm,
      { output: join(parts, vmdk), format: 'vmdk', flatten: true, overwrite: true },
      events,
    );
    const info = JSON.parse((await run('qemu-img', ['info', '--output=json', disk.path])).stdout) as {
      'virtual-size': number;
    };
    const facts = parseDomainFacts(await host.virsh.text(['dumpxml', '--inactive', vm.name]));
    const ovf = `${vm.name}.ovf`;
    await writeAtomic(
      join(parts, ovf),
      ovfDescriptor({
        name: vm.name,
        vmdk,
        vmdkBytes: disk.bytes,
        capacityBytes: info['virtual-size'],
        cpus: facts.cpus,
        memoryMiB: facts.memoryMiB,
        network: facts.network,
      }),
      0o644,
    );
    const mf = `${vm.name}.mf`;
    const lines = [`SHA256(${ovf})= ${await fileSha256(join(parts, ovf))}`, `SHA256(${vmdk})= ${disk.sha256}`];
    await writeAtomic(join(parts, mf), `${lines.join('\n')}\n`, 0o644);
    // The descriptor first, as OVF requires of a package; ustar, as OVF tools read.
    await run('tar', ['--format=ustar', '-cf', `${ova}.labctl-partial`, '-C', parts, ovf, vmdk, mf], {
      timeout: 30 * 60_000,
    });
    const handle = await open(`${ova}.labctl-partial`, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(`${ova}.labctl-partial`, ova);
  } finally {
    await rm(parts, { recursive: true, force: true });
  }
  const bytes = (await stat(ova)).size;
  events({ subject: vm.name, phase: 'export', status: 'done', message: ova });
  return {
    path: ova,
    format: 'ova',
    written: true,
    files: [{ name: `${vm.name}.ova`, bytes, sha256: await fileSha256(ova) }],
  };
}
