import { UsageError } from '@labctl/core/errors';
import type { Provider } from '@labctl/core/provider';
import type { LoadedLabFile } from '@labctl/core/spec';
import { hyperVProvider } from '@labctl/hyperv/factory';
import { HyperVProvider } from '@labctl/hyperv/provider';
import { LibvirtProvider } from '@labctl/libvirt/provider';
import { libvirtOptions, parseLibvirtSettings } from '@labctl/libvirt/settings';

/**
 * Provider registry: name -> factory. A provider is made per lab (and per host, when a lab spans
 * several); it never prints and never touches the state file.
 */
export interface ProviderContext {
  lab: LoadedLabFile;
  labDir: string;
  /** Connection (libvirt URI, Hyper-V host); the lab file's or the provider's default when absent. */
  uri?: string;
}

export type ProviderFactory = (context: ProviderContext) => Provider;

export const providers: Record<string, ProviderFactory> = {
  libvirt: ({ lab, labDir, uri }) =>
    new LibvirtProvider(libvirtOptions(lab.lab, labDir, uri ?? lab.spec.uri, parseLibvirtSettings(lab.spec.libvirt, lab.resolvePath))),
  // Hyper-V: hosts from `hosts:`; a uri (--uri, or a VM record's host) narrows to that one host.
  hyperv: ({ lab, labDir, uri }) => hyperVProvider({ lab, labDir, ...(uri ? { host: uri } : {}) }),
};

/** Each provider's MAC prefix for planned VMs (its static `macPrefix`), for planLab before any provider is made. */
const macPrefixes: Record<string, string> = {
  libvirt: LibvirtProvider.macPrefix,
  hyperv: HyperVProvider.macPrefix,
};

export function macPrefixFor(provider: string): string | undefined {
  return macPrefixes[provider];
}

export function makeProvider(name: string, context: ProviderContext): Provider {
  const factory = providers[name];
  if (!factory) {
    throw new UsageError('PROVIDER_UNKNOWN', `unknown provider "${name}"`, { hint: `Known providers: ${Object.keys(providers).join(', ')}.` });
  }
  return factory(context);
}

/** One provider per (provider name, host) for the VMs of a state file. */
export function providerCache(context: Omit<ProviderContext, 'uri'>): (vm: { provider: string; host: string }) => Provider {
  const made = new Map<string, Provider>();
  return (vm) => {
    const key = `${vm.provider}\0${vm.host}`;
    let provider = made.get(key);
    if (!provider) {
      // libvirt records "local" for its default URI; for Hyper-V "local" is a host (this machine, no SSH).
      const host = vm.host && (vm.host !== 'local' || vm.provider !== 'libvirt') ? vm.host : undefined;
      provider = makeProvider(vm.provider, { ...context, ...(host ? { uri: host } : {}) });
      made.set(key, provider);
    }
    return provider;
  };
}
