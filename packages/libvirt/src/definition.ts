import { QEMU_MAC_PREFIX } from './provider.js';
import type { ProviderDefinition } from '@labctl/core/provider';
import { DEFAULT_URI, LibvirtProvider } from './provider.js';
import { libvirtOptions, parseLibvirtSettings } from './settings.js';

/**
 * The KVM/libvirt provider as the registry knows it. A VM recorded with host "local" (or a run
 * without a connection) uses the lab file's `uri:`, else $LIBVIRT_DEFAULT_URI, else qemu:///system.
 */
export const libvirtDefinition: ProviderDefinition = {
  name: 'libvirt',
  macPrefix: QEMU_MAC_PREFIX,
  defaultConnection: { value: DEFAULT_URI, env: 'LIBVIRT_DEFAULT_URI' },
  make: ({ lab, labDir, connection }) =>
    new LibvirtProvider(
      libvirtOptions(
        lab.lab,
        labDir,
        connection && connection !== 'local'
          ? connection
          : (lab.spec.uri ?? (process.env.LIBVIRT_DEFAULT_URI || undefined)),
        parseLibvirtSettings(lab.spec.libvirt, lab.resolvePath),
      ),
    ),
};
