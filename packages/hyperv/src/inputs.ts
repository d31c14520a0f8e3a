import { win32 } from 'node:path';
import type { VmPlan } from '@labctl/core/provider';
import { hyperVMac } from './parse.js';
import type { CreateVmSpec } from './types.js';

/** Builds the JSON inputs of the scripts from labctl's plan. Pure: the same plan gives the same bytes. */
export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

/** A VM name made safe as a Windows file name (the VM keeps its real name; only the file differs). */
export function diskFileName(vmName: string, golden: string): string {
  const extension = win32.extname(golden).toLowerCase() === '.vhd' ? '.vhd' : '.vhdx';
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are invalid in Windows file names
  const safe = vmName.replace(/[<>:"/\\|?*\u0000-\u001f]/g, '_').replace(/[. ]+$/, '_');
  return `${safe}${extension}`;
}

/** The batch's disk directory: `<configured path>\\<lab>`, or null to let the host use its default VHD path. */
export function diskDirFor(path: string | undefined, lab: string): string | null {
  return path ? win32.join(path, lab) : null;
}

export function generationOf(vm: VmPlan): 1 | 2 {
  return vm.generation ?? (vm.firmware === 'bios' ? 1 : 2);
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
