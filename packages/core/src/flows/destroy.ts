import { mapLimit } from '../concurrency.js';
import { type EventSink, silentSink } from '../events.js';
import { checkName } from '../names.js';
import { type Provider, resultsFor, type VmFailure } from '../provider.js';
import type { StateStore, VmRecord } from '../state.js';
import { serialSaver } from './save.js';

/**
 * `labctl destroy`: removes VMs and their own disks, never the golden image. The record is marked
 * 'destroying' before the provider is called and removed right after each VM, so an
 * interrupted destroy is finished by the next one. Destroying what is already gone is not an error.
 */
export interface DestroyFlowOptions {
  lab: string;
  /** Providers by name; each VM goes to the provider that made it. */
  provider: (vm: VmRecord) => Provider;
  /** Providers to ask for this lab's VMs that the state does not know (orphans of a killed run). */
  scan?: Provider[];
  store: StateStore;
  names?: string[];
  all?: boolean;
  keepDisks?: boolean;
  events?: EventSink;
  signal?: AbortSignal;
  command?: string;
  /** VMs destroyed at the same time (default 4). */
  concurrency?: number;
}

export interface DestroyVmSummary {
  name: string;
  result: 'destroyed' | 'absent' | 'failed';
  error?: string;
  failure?: VmFailure;
  /** Files the state or the hypervisor named that labctl did not remove, and why. */
  warnings?: string[];
}

export interface DestroySummary {
  lab: string;
  vms: DestroyVmSummary[];
  keptDisks: boolean;
  interrupted: boolean;
}

export async function destroyLab(options: DestroyFlowOptions): Promise<DestroySummary> {
  const events = options.events ?? silentSink;
  for (const name of options.names ?? []) checkName('vm', name, 'destroy');
  return options.store.withLock(options.lab, options.command ?? 'labctl destroy', async (session) => {
    const save = serialSaver(session);
    const targets = new Map<string, VmRecord>();
    const wanted = options.names && options.names.length > 0 ? new Set(options.names) : undefined;
    for (const vm of session.state.vms) if (options.all || wanted?.has(vm.name)) targets.set(vm.name, vm);
    for (const provider of options.scan ?? []) {
      for (const vm of await provider.list(options.lab)) {
        if (targets.has(vm.name) || !(options.all || wanted?.has(vm.name))) continue;
        targets.set(vm.name, session.vm(vm.name) ? { ...vm, ...session.vm(vm.name) } : vm);
      }
    }
    const results: DestroyVmSummary[] = [];
    for (const name of wanted ?? []) if (!targets.has(name)) results.push({ name, result: 'absent' });
    // One provider call per batch of VMs that share a provider (and so a host): Hyper-V removes a
    // batch in one remove_vms run, libvirt several domains at once inside the call. Batches of
    // DESTROY_BATCH keep an interrupt from waiting for a whole lab.
    const byProvider = new Map<Provider, VmRecord[]>();
    for (const vm of targets.values()) {
      const provider = options.provider(vm);
      byProvider.set(provider, [...(byProvider.get(provider) ?? []), vm]);
    }
    const calls = [...byProvider].flatMap(([provider, vms]) =>
      chunk(vms, DESTROY_BATCH).map((batch) => ({ provider, batch })),
    );
    await mapLimit(
      calls,
      options.concurrency ?? 4,
      async ({ provider, batch }) => {
        for (const vm of batch) if (session.vm(vm.name)) session.upsertVm({ name: vm.name, state: 'destroying' });
        await save();
        const outcome = await resultsFor(
          batch.map((vm) => vm.name),
          () => provider.destroy(batch, { keepDisks: options.keepDisks ?? false }, events),
        );
        for (const vm of batch) {
          const result = outcome.get(vm.name)!;
          if (result.ok) {
            session.removeVm(vm.name);
            const left = result.facts.leftAlone.map((file) => `left alone: ${file}`);
            results.push({ name: vm.name, result: 'destroyed', ...(left.length ? { warnings: left } : {}) });
          } else {
            session.upsertVm({
              ...vm,
              state: 'failed',
              error: `destroy failed: ${result.error.message}`,
              errorCode: result.error.code,
            });
            results.push({ name: vm.name, result: 'failed', error: result.error.message, failure: result.error });
          }
        }
        await save();
      },
      { signal: options.signal },
    );
    const interrupted = options.signal?.aborted ?? false;
    const order = new Map([...(wanted ?? []), ...targets.keys()].map((name, i) => [name, i]));
    results.sort((a, b) => (order.get(a.name) ?? 0) - (order.get(b.name) ?? 0));
    return { lab: session.state.lab, vms: results, keptDisks: options.keepDisks ?? false, interrupted };
  });
}

/** VMs per destroy call: one Hyper-V run removes this many; an interrupt waits for at most one batch. */
export const DESTROY_BATCH = 10;

function chunk<T>(items: readonly T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}
