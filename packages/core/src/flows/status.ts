import type { Provider } from '../provider.js';
import { emptyState, type LabState, type StateStore, type VmRecord, type VmState } from '../state.js';

/**
 * `labctl list` (live by default): the state file next to what the hypervisor says now, and where
 * they differ. Read-only: nothing is locked or written. A provider that cannot be asked makes its
 * VMs' live state "unknown" with the reason, never "gone".
 */
export type Drift =
  /** The hypervisor's state differs from the recorded one (powered off by hand, crashed). */
  | 'state'
  /** Recorded, but the hypervisor has no such VM of this lab. */
  | 'gone'
  /** On the hypervisor, made by labctl for this lab, but not in the state (an interrupted run). */
  | 'unrecorded';

export interface VmStatus {
  name: string;
  group: string;
  provider: string;
  host: string;
  /** What the state file says. */
  recorded: VmState | 'absent';
  /** What the hypervisor says now; "unknown" when it could not be asked or labctl has no provider for it. */
  live: VmState | 'gone' | 'unknown';
  drift?: Drift;
  /** Why `live` is unknown. */
  problem?: string;
  record?: VmRecord;
}

export interface StatusSummary {
  lab: string;
  vms: VmStatus[];
  /** Providers (by name and host) that could not be asked, with the error. */
  unreachable: Array<{ provider: string; host: string; error: string }>;
}

export interface StatusOptions {
  lab: string;
  store: StateStore;
  /** The provider for a recorded VM; undefined for VMs labctl cannot manage (provider "manual"). */
  provider: (vm: { provider: string; host: string }) => Provider | undefined;
  /** Providers also asked for lab VMs the state does not know (the lab's default connection). */
  scan?: Array<{ provider: Provider; host: string }>;
  /** The state when the caller has read it already (read once per command). */
  state?: LabState;
}

/** A recorded VM whose live state nobody has asked for yet (or could not be asked: --offline). */
export function unknownStatus(vm: VmRecord): VmStatus {
  return {
    name: vm.name,
    group: vm.group,
    provider: vm.provider,
    host: vm.host,
    recorded: vm.state,
    live: 'unknown',
    record: vm,
  };
}

export async function labStatus(options: StatusOptions): Promise<StatusSummary> {
  const state = options.state ?? (await options.store.read()) ?? emptyState(options.lab);
  const statuses = new Map<string, VmStatus>();
  const asked = new Map<Provider, { host: string; names: string[] }>();
  for (const vm of state.vms) {
    const status = unknownStatus(vm);
    statuses.set(vm.name, status);
    const provider = options.provider(vm);
    if (!provider) {
      status.problem = `labctl has no provider "${vm.provider}": not asked`;
      continue;
    }
    const entry = asked.get(provider) ?? { host: vm.host, names: [] };
    entry.names.push(vm.name);
    asked.set(provider, entry);
  }
  for (const { provider, host } of options.scan ?? [])
    if (!asked.has(provider)) asked.set(provider, { host, names: [] });
  const unreachable: StatusSummary['unreachable'] = [];
  await Promise.all(
    [...asked].map(async ([provider, { host, names }]) => {
      let live: VmRecord[];
      try {
        live = await provider.list(state.lab);
      } catch (err) {
        const error = (err as Error).message;
        unreachable.push({ provider: provider.name, host, error });
        for (const name of names) statuses.get(name)!.problem = error;
        return;
      }
      const found = new Map(live.map((vm) => [vm.name, vm]));
      for (const name of names) {
        const status = statuses.get(name)!;
        const vm = found.get(name);
        status.live = vm ? vm.state : 'gone';
        if (!vm) status.drift = status.recorded === 'destroying' || status.recorded === 'creating' ? undefined : 'gone';
        else if (comparable(status.recorded) !== comparable(vm.state)) status.drift = 'state';
      }
      for (const vm of live) {
        if (statuses.has(vm.name)) continue;
        statuses.set(vm.name, {
          name: vm.name,
          group: vm.group,
          provider: vm.provider,
          host: vm.host,
          recorded: 'absent',
          live: vm.state,
          drift: 'unrecorded',
        });
      }
    }),
  );
  return { lab: state.lab, vms: [...statuses.values()], unreachable };
}

/** States that mean the same on a hypervisor: "created" is a defined VM that is not running. */
function comparable(state: VmState | 'absent'): string {
  if (state === 'created' || state === 'stopped') return 'stopped';
  if (state === 'starting') return 'running';
  return state;
}
