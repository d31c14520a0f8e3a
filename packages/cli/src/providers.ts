import { LabctlError, UsageError } from '@labctl/core/errors';
import type { Provider, ProviderContext, ProviderDefinition } from '@labctl/core/provider';
import type { LoadedLabFile } from '@labctl/core/spec';
import { hypervDefinition } from '@labctl/hyperv/definition';
import { libvirtDefinition } from '@labctl/libvirt/definition';

/**
 * The provider registry: a list of the provider packages' definitions, the first one the default.
 * A provider is made per lab (and per host, when a lab spans several); it never prints and never
 * touches the state file.
 */
const definitions: readonly ProviderDefinition[] = [libvirtDefinition, hypervDefinition];

export type { ProviderContext };

/** The provider a lab uses when neither --provider nor labctl.yaml names one. */
export const DEFAULT_PROVIDER = definitions[0]!.name;

export function definitionFor(name: string): ProviderDefinition {
  const definition = definitions.find((item) => item.name === name);
  if (!definition) {
    throw new UsageError('PROVIDER_UNKNOWN', `unknown provider "${name}"`, {
      hint: `Known providers: ${definitions.map((item) => item.name).join(', ')}.`,
    });
  }
  return definition;
}

export function knownProvider(name: string): boolean {
  return definitions.some((item) => item.name === name);
}

export function macPrefixFor(provider: string): string | undefined {
  return definitions.find((item) => item.name === provider)?.macPrefix;
}

/** The connection named by the provider's environment variable (LIBVIRT_DEFAULT_URI), if any. */
export function connectionFromEnv(provider: string): string | undefined {
  const env = definitionFor(provider).defaultConnection.env;
  return (env && process.env[env]) || undefined;
}

export function makeProvider(name: string, context: ProviderContext): Provider {
  return definitionFor(name).make(context);
}

/** One provider per (provider name, host) for the VMs of a state file. */
export function providerCache(
  context: Omit<ProviderContext, 'connection'>,
): (vm: { provider: string; host: string }) => Provider {
  const made = new Map<string, Provider>();
  return (vm) => {
    const key = `${vm.provider}\0${vm.host}`;
    let provider = made.get(key);
    if (!provider) {
      provider = makeProvider(vm.provider, { ...context, ...(vm.host ? { connection: vm.host } : {}) });
      made.set(key, provider);
    }
    return provider;
  };
}

/**
 * The lab's default connection, asked for lab VMs the state does not know (orphans of a killed
 * run): only when the lab says which provider it uses (labctl.yaml) or already has VMs of it, and
 * through `cache`, so a connection the recorded VMs use is asked once. None when the lab has no
 * default to ask (Hyper-V without hosts:, say).
 */
export function labScanner(
  lab: LoadedLabFile,
  recordedProviders: ReadonlySet<string>,
  cache: (vm: { provider: string; host: string }) => Provider,
): Array<{ provider: Provider; host: string }> {
  const name = lab.spec.provider ?? DEFAULT_PROVIDER;
  if (!lab.spec.provider && !lab.spec.uri && !recordedProviders.has(name)) return [];
  const host = lab.spec.uri ?? (lab.spec.hosts?.length ? undefined : connectionFromEnv(name)) ?? 'local';
  try {
    return [{ provider: cache({ provider: name, host }), host }];
  } catch (error) {
    if (error instanceof LabctlError && error.exitCode === 2) return [];
    throw error;
  }
}
