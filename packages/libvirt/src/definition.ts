import { UsageError } from '@labctl/core/errors';
import type { ProviderContext, ProviderDefinition } from '@labctl/core/provider';
import { libvirtHosts } from './hosts.js';
import { LibvirtHostsProvider } from './multi-host.js';
import { DEFAULT_URI, LibvirtProvider, QEMU_MAC_PREFIX } from './provider.js';
import { libvirtOptions, parseLibvirtSettings } from './settings.js';

/**
 * The KVM/libvirt provider as the registry knows it.
 * - A lab with `hosts:`: a connection that names one of them (--host, a VM record's host) is that
 *   host; none (or "local") is every host, with placement; anything else is a URI of its own.
 * - Without `hosts:`: a VM recorded with host "local" (or a run without a connection) uses the lab
 *   file's `uri:`, else $LIBVIRT_DEFAULT_URI, else qemu:///system.
 */
export const libvirtDefinition: ProviderDefinition = {
  name: 'libvirt',
  macPrefix: QEMU_MAC_PREFIX,
  defaultConnection: { value: DEFAULT_URI, env: 'LIBVIRT_DEFAULT_URI' },
  make: (context) => makeLibvirtProvider(context),
  pinsWithinHosts: true,
};

export function makeLibvirtProvider({
  lab,
  labDir,
  connection,
}: ProviderContext): LibvirtProvider | LibvirtHostsProvider {
  const settings = parseLibvirtSettings(lab.spec.libvirt, lab.resolvePath);
  const hosts = libvirtHosts(lab.spec, lab.resolvePath);
  if (hosts.length > 0 && !(connection && connection !== 'local' && !hosts.some((host) => host.name === connection))) {
    if (lab.spec.uri)
      throw new UsageError('LABFILE_INVALID', 'labctl.yaml: uri: and hosts: both name where libvirt runs', {
        hint: 'Keep one: a uri: for a one-host lab, or a uri: per entry of hosts:.',
      });
    const peers = hosts.map((host) => ({ name: host.name, uri: host.uri }));
    const providers = new Map(
      hosts.map((host) => [
        host.name,
        new LibvirtProvider({
          ...libvirtOptions(lab.lab, labDir, host.uri, {
            ...settings,
            ...(host.diskDir ? { diskDir: host.diskDir } : {}),
            ...(host.pool ? { pool: host.pool } : {}),
          }),
          hostName: host.name,
          peers,
          ...(host.concurrency ? { migrationConcurrency: Math.min(host.concurrency, 4) } : {}),
        }),
      ]),
    );
    const one = connection && connection !== 'local' ? providers.get(connection) : undefined;
    return one ?? new LibvirtHostsProvider(hosts, providers);
  }
  return new LibvirtProvider(
    libvirtOptions(
      lab.lab,
      labDir,
      connection && connection !== 'local'
        ? connection
        : (lab.spec.uri ?? (process.env.LIBVIRT_DEFAULT_URI || undefined)),
      settings,
    ),
  );
}
