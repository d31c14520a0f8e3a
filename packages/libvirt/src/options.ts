import { UsageError } from '@labctl/core/errors';
import type { VmPlan } from '@labctl/core/provider';

/** What libvirt reads of a VM's provider-specific settings (VmPlan.options), typed and defaulted. */
export interface LibvirtVmOptions {
  /** bios (default) or uefi (OVMF). */
  firmware: 'bios' | 'uefi';
  /** Direct kernel boot (images without a bootloader): kernel, initrd and command line on the host. */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
}

function text(vm: Pick<VmPlan, 'name' | 'options'>, key: string): string | undefined {
  const value = vm.options[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string')
    throw new UsageError('LIBVIRT_OPTION', `${vm.name}: ${key} must be text, not ${JSON.stringify(value)}`);
  return value;
}

export function libvirtOptions(vm: Pick<VmPlan, 'name' | 'options'>): LibvirtVmOptions {
  const firmware = text(vm, 'firmware') ?? 'bios';
  if (firmware !== 'bios' && firmware !== 'uefi') {
    throw new UsageError(
      'LIBVIRT_OPTION',
      `${vm.name}: firmware must be bios or uefi, not ${JSON.stringify(firmware)}`,
    );
  }
  const kernel = text(vm, 'kernel');
  const initrd = text(vm, 'initrd');
  const cmdline = text(vm, 'cmdline');
  return {
    firmware,
    ...(kernel ? { kernel } : {}),
    ...(initrd ? { initrd } : {}),
    ...(cmdline !== undefined ? { cmdline } : {}),
  };
}
