import type { EventSink } from '../events.js';
import type { Provider, VmFailure } from '../provider.js';
import type { StateSession, VmRecord } from '../state.js';

/**
 * The flows' view of IP discovery. The implementation lives in @labctl/discovery (which depends on
 * core); the CLI passes it in, tests pass a fake.
 */
export interface VmDiscoveryResult {
  name: string;
  status: 'reachable' | 'addressed' | 'timeout' | 'failed';
  addresses: string[];
  hostKeys: string[];
  detail: string;
  hint?: string;
  /** The hypervisor could not be asked about this VM (not "no address"): its error, typed. */
  failure?: VmFailure;
}

export interface DiscoverOptions {
  timeoutMs: number;
  /** Wait for an SSH handshake too (default true). */
  ssh?: boolean;
  events?: EventSink;
  signal?: AbortSignal;
}

export type Discover = (provider: Provider, vms: VmRecord[], options: DiscoverOptions) => Promise<VmDiscoveryResult[]>;

/** Writes one VM's discovery into its record: addresses, host keys, and the explanation when it failed. */
export function recordDiscovery(session: StateSession, result: VmDiscoveryResult): void {
  const record = session.vm(result.name);
  if (!record) return;
  const ok = result.status === 'reachable' || result.status === 'addressed';
  session.upsertVm({
    name: result.name,
    addresses: result.addresses.length > 0 ? result.addresses : ok ? record.addresses : [],
    ssh: { ...record.ssh, hostKeys: result.hostKeys.length > 0 ? result.hostKeys : record.ssh.hostKeys },
    error: ok
      ? undefined
      : `${result.status === 'timeout' ? 'not reachable in time' : 'unreachable'}: ${result.detail}`,
  });
}
