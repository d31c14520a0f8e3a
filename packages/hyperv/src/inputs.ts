import { UsageError } from '@labctl/core/errors';
import { win32 } from 'node:path';
import type { VmPlan } from '@labctl/core/provider';
import { hyperVMac } from './parse.js';
import type { CreateVmSpec } from './types.js';

/** Builds the JSON inputs of the scripts from labctl's plan. Pure: the same plan gives the same bytes. */
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** A VM name made safe as a Windows file name (the VM keeps its real name; only the file differs). */
export function diskFileName(vmName: string, golden: string): string {
  const extension = isVhd(golden) ? '.vhd' : '.vhdx';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are invalid in Windows file names
  const safe = vmName.replace(/[<>:"/\\|?*\u0000-\u001f]/g, '_').replace(/[. ]+$/, '_');
  return `${safe}${extension}`;
}

/** The batch's disk directory: `<configured path>\\<lab>`, or null to let the host use its default VHD path. */
export function diskDirFor(path: string | undefined, lab: string): string | null {
  return path ? win32.join(path, lab) : null;
}

/**
 * Generation 2 (UEFI) unless asked otherwise; a .vhd golden disk means Generation 1, because
 * Generation 2 VMs only take VHDX. `firmware:` is libvirt's setting and is not read here.
 */
export function generationOf(vm: VmPlan): 1 | 2 {
  return hypervOptions(vm).generation ?? (isVhd(vm.golden) ? 1 : 2);
}

/** What Hyper-V reads of a VM's provider-specific settings (VmPlan.options), typed. */
export interface HyperVVmOptions {
  generation?: 1 | 2;
  /** linux: the UEFI CA template (default for Generation 2), windows, or off. */
  secureBoot?: 'off' | 'linux' | 'windows';
  /** Access VLAN of the network adapter. */
  vlan?: number;
}

export function hypervOptions(vm: Pick<VmPlan, 'name' | 'options'>): HyperVVmOptions {
  const { generation, secureBoot, vlan } = vm.options;
  const bad = (key: string, value: unknown, want: string) =>
    new UsageError('HYPERV_OPTION', `${vm.name}: ${key} must be ${want}, not ${JSON.stringify(value)}`);
  if (generation !== undefined && generation !== 1 && generation !== 2) throw bad('generation', generation, '1 or 2');
  if (secureBoot !== undefined && secureBoot !== 'off' && secureBoot !== 'linux' && secureBoot !== 'windows') {
    throw bad('secureBoot', secureBoot, 'off, linux or windows');
  }
  if (vlan !== undefined && (typeof vlan !== 'number' || !Number.isInteger(vlan) || vlan < 1 || vlan > 4094))
    throw bad('vlan', vlan, 'a VLAN id 1-4094');
  return {
    ...(generation !== undefined ? { generation } : {}),
    ...(secureBoot !== undefined ? { secureBoot } : {}),
    ...(vlan !== undefined ? { vlan } : {}),
  };
}

export function isVhd(path: string): boolean {
  return win32.extname(path).toLowerCase() === '.vhd';
}

/**
 * A path as the Hyper-V host sees it. The lab-file loader resolves relative paths against the lab
 * directory on this machine, which turns `D:\Golden\c7.vhdx` into `/home/me/lab/D:\Golden\c7.vhdx`;
 * the Windows path (drive or UNC) is taken back out of such a result.
 */
export function hostPath(path: string): string {
  const at = path.search(/[A-Za-z]:[\\/]|\\\\/);
  return at > 0 ? path.slice(at) : path;
}

/** The plan of one VM with its paths as the Hyper-V host sees them. */
export function forHyperV(vm: VmPlan): VmPlan {
  return { ...vm, golden: hostPath(vm.golden) };
}

/** Linux is labctl's main guest: Generation 2 gets the UEFI CA template unless told otherwise. */
export function secureBootOf(vm: VmPlan): 'linux' | 'windows' | 'off' {
  return hypervOptions(vm).secureBoot ?? 'linux';
}

export function createSpec(vm: VmPlan): CreateVmSpec {
  return {
    name: vm.name,
    group: vm.group,
    generation: generationOf(vm),
    memoryBytes: vm.memoryMiB * MiB,
    processors: vm.cpus,
    switch: vm.network,
    mac: vm.mac ? hyperVMac(vm.mac) : null,
    vlan: hypervOptions(vm).vlan ?? null,
    secureBoot: secureBootOf(vm),
    golden: vm.golden,
    clone: vm.clone,
    diskFile: diskFileName(vm.name, vm.golden),
    seedFile: `${vm.name}.seed.vhdx`,
    // Filled by the provider's create (it holds private keys): never in --emit-powershell output.
    seed: null,
  };
}
