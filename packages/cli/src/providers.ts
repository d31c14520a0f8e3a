import { LabctlError, UsageError } from '@labctl/core/errors';
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

interface ProviderEntry {
  make: ProviderFactory;
  /** Prefix of the static MACs planned for its VMs; known before any provider is made. */
  macPrefix: string;
}

const providers: Record<string, ProviderEntry> = {
  libvirt: {
    // A VM recorded with host "local" was made on the lab's default connection.
    make: ({ lab, labDir, uri }) =>
      new LibvirtProvider(
        libvirtOptions(lab.lab, labDir, uri && uri !== 'local' ? uri : lab.spec.uri, parseLibvirtSettings(lab.spec.libvirt, lab.resolvePath)),
      ),
    macPrefix: LibvirtProvider.macPrefix,
  },
  // Hyper-V: hosts from `hosts:`; a uri (--uri, or a VM record's host) narrows to that one host.
  hyperv: { make: ({ lab, labDir, uri }) => hyperVProvider({ lab, labDir, ...(uri ? { host: uri } : {}) }), macPrefix: HyperVProvider.macPrefix },
};

export function macPrefixFor(provider: string): string | undefined {
  return providers[provider]?.macPrefix;
}

export function makeProvider(name: string, context: ProviderContext): Provider {
  const entry = providers[name];
  if (!entry) {
    throw new UsageError('PROVIDER_UNKNOWN', `unknown provider "${name}"`, { hint: `Known providers: ${Object.keys(providers).join(', ')}.` });
  }
  return entry.make(context);
}

/** One provider per (provider name, host) for the VMs of a state file. */
export function providerCache(context: Omit<ProviderContext, 'uri'>): (vm: { provider: string; host: string }) => Provider {
  const made = new Map<string, Provider>();
  return (vm) => {
    const key = `${vm.provider}\0${vm.host}`;
    let provider = made.get(key);
    if (!provider) {
      provider = makeProvider(vm.provider, { ...context, ...(vm.host ? { uri: vm.host } : {}) });
      made.set(key, provider);
    }
    return provider;
  };
}

export function knownProvider(name: string): boolean {
  return name in providers;
}

/**
 * The lab's default connection, asked for lab VMs the state does not know (orphans of a killed
 * run): only when the lab says which provider it uses (labctl.yaml) or already has VMs of it, and
 * through `cache`, so a connection the recorded VMs use is asked once. None when the lab has no
 * default to ask (Hyper-V without hosts:, say).
 */
export function labScanner(lab: LoadedLabFile, recordedProviders: ReadonlySet<string>, cache: (vm: { provider: string; host: string }) => Provider): Array<{ provider: Provider; host: string }> {
  const name = lab.spec.provider ?? 'libvirt';
  if (!lab.spec.provider && !lab.spec.uri && !recordedProviders.has(name)) return [];
  const host = lab.spec.uri ?? (name === 'libvirt' ? process.env.LIBVIRT_DEFAULT_URI : undefined) ?? 'local';
  try {
    return [{ provider: cache({ provider: name, host }), host }];
  } catch (error) {
    if (error instanceof LabctlError && error.exitCode === 2) return [];
    throw error;
  }
}
