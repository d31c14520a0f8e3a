import type { ProviderDefinition } from '@labctl/core/provider';
import { emitDryRun } from './emit.js';
import { hyperVProvider } from './factory.js';
import { HyperVProvider } from './provider.js';

/**
 * The Hyper-V provider as the registry knows it: hosts from `hosts:`; a connection (--host, or a VM
 * record's host) narrows to that one host; `local` is this machine (no SSH).
 */
export const hypervDefinition: ProviderDefinition = {
  name: 'hyperv',
  macPrefix: HyperVProvider.macPrefix,
  defaultConnection: { value: 'hosts' },
  make: ({ lab, labDir, connection }) => hyperVProvider({ lab, labDir, ...(connection ? { host: connection } : {}) }),
  emitDryRun: ({ lab, labDir, connection }, plan, dir) =>
    emitDryRun(hyperVProvider({ lab, labDir, ...(connection ? { host: connection } : {}) }), plan, dir),
};
