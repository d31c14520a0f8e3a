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
 * Generation 2 VMs only take VHDX. `firmware:` is libvirt's setting and is not used here.
 */
export function generationOf(vm: VmPlan): 1 | 2 {
  return vm.generation ?? (isVhd(vm.golden) ? 1 : 2);
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
  return vm.secureBoot ?? 'linux';
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
    vlan: vm.vlan ?? null,
    secureBoot: secureBootOf(vm),
    golden: vm.golden,
    clone: vm.clone,
    diskFile: diskFileName(vm.name, vm.golden),
  };
}
