import { LabctlError } from '../errors.js';
import { type EventSink, silentSink } from '../events.js';
import type { Provider } from '../provider.js';
import type { StateStore, VmRecord } from '../state.js';
import { type Discover, recordDiscovery, type VmDiscoveryResult } from './discovery.js';

/**
 * `labctl ip`: ask the hypervisor for the VMs' addresses now (one poll), or with `wait` until each VM
 * answers SSH or the deadline passes. Addresses and newly seen host keys go into the state; host keys
 * already recorded are checked, never replaced.
 */
export interface AddressesFlowOptions {
  lab: string;
  store: StateStore;
  provider: (vm: VmRecord) => Provider;
  discover: Discover;
  names?: string[];
  wait?: boolean;
  timeoutMs: number;
  events?: EventSink;
  signal?: AbortSignal;
}

export interface AddressesSummary {
  lab: string;
  vms: Array<VmDiscoveryResult & { address: string | null }>;
  /** Names asked for that the lab does not have. */
  unknown: string[];
}

export async function refreshAddresses(options: AddressesFlowOptions): Promise<AddressesSummary> {
  return options.store.withLock(options.lab, 'labctl ip', async (session) => {
    const wanted = options.names && options.names.length > 0 ? new Set(options.names) : undefined;
    const vms = session.state.vms.filter((vm) => !wanted || wanted.has(vm.name));
    const unknown = [...(wanted ?? [])].filter((name) => !session.vm(name));
    // One provider per (provider, host): a lab may span several libvirt hosts.
    const byProvider = new Map<Provider, VmRecord[]>();
    for (const vm of vms) {
      const provider = options.provider(vm);
      byProvider.set(provider, [...(byProvider.get(provider) ?? []), vm]);
    }
    const results: VmDiscoveryResult[] = [];
    await Promise.all(
      [...byProvider].map(async ([provider, group]) => {
        const found = await options.discover(provider, group, {
          timeoutMs: options.wait ? options.timeoutMs : 0,
          ssh: options.wait ?? false,
          events: options.events ?? silentSink,
          ...(options.signal ? { signal: options.signal } : {}),
        });
        results.push(...found);
      }),
    );
    // A hypervisor that could not be asked at all is the command's error (exit 1, with its hint), not
    // a row per VM that reads like "no address": nothing is recorded from such a look.
    const unreachable = results.find((result) => result.failure);
    if (unreachable?.failure && results.every((result) => result.failure)) {
      throw new LabctlError(unreachable.failure.code, unreachable.failure.message, {
        ...(unreachable.failure.hint ? { hint: unreachable.failure.hint } : {}),
      });
    }
    // A one-shot look records what it saw; only a wait that ran out says a VM failed.
    for (const result of results) if (options.wait || result.status === 'addressed') recordDiscovery(session, result);
    await session.save();
    const order = new Map(vms.map((vm, i) => [vm.name, i]));
    results.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
    return {
      lab: session.state.lab,
      vms: results.map((result) => ({ ...result, address: result.addresses[0] ?? null })),
      unknown,
    };
  });
}
