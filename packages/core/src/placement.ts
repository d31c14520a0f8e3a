import type { VmPlan } from './provider.js';

/**
 * Which host each VM goes to, the one rule of every provider that spans hosts (Hyper-V `hosts:`,
 * libvirt `hosts:` with a URI each). A VM that already exists somewhere stays there; a VM whose plan
 * names a configured host goes there; the rest go, one by one in plan order, to the host with the
 * most memory left after what was already placed (ties: the host with fewer VMs, then file order).
 * A host keeps `reserveBytes` for itself; a host's `limitBytes` caps what the lab may place on it.
 */
export interface HostCapacity {
  name: string;
  freeMemoryBytes: number;
  /** VMs the host runs already (any lab): the tie-break between hosts with as much memory left. */
  vmCount?: number;
  /** The lab file's memory limit for the host: new VMs placed there never add up to more. */
  limitBytes?: number;
}

export interface PlacementResult {
  /** VM name -> host name. */
  hostOf: Map<string, string>;
  /** Planned memory of new VMs per host, in bytes. */
  plannedBytes: Map<string, number>;
  /** Hosts whose new VMs need more memory than they have free (or than their limit). */
  overcommitted: Array<{ host: string; neededBytes: number; freeBytes: number }>;
}

const MiB = 1024 * 1024;
export const HOST_MEMORY_RESERVE = 2 * 1024 * MiB;

/** What placement reads of a VM: its name, the host its plan names (a pin), its memory. */
export type PlacedVm = Pick<VmPlan, 'name' | 'host' | 'memoryMiB'>;

export function placeVms(
  vms: readonly PlacedVm[],
  hosts: readonly HostCapacity[],
  options: { existing?: ReadonlyMap<string, string>; reserveBytes?: number } = {},
): PlacementResult {
  const reserve = options.reserveBytes ?? HOST_MEMORY_RESERVE;
  const hostOf = new Map<string, string>();
  const plannedBytes = new Map(hosts.map((host) => [host.name, 0]));
  const available = (host: HostCapacity) =>
    Math.min(host.freeMemoryBytes - reserve, host.limitBytes ?? Number.POSITIVE_INFINITY);
  const left = new Map(hosts.map((host) => [host.name, available(host)]));
  const count = new Map(hosts.map((host) => [host.name, host.vmCount ?? 0]));
  const known = new Set(hosts.map((host) => host.name));
  const take = (vm: PlacedVm, host: string) => {
    hostOf.set(vm.name, host);
    const bytes = vm.memoryMiB * MiB;
    plannedBytes.set(host, (plannedBytes.get(host) ?? 0) + bytes);
    left.set(host, (left.get(host) ?? 0) - bytes);
    count.set(host, (count.get(host) ?? 0) + 1);
  };
  const floating: PlacedVm[] = [];
  for (const vm of vms) {
    const existingHost = options.existing?.get(vm.name);
    if (existingHost) hostOf.set(vm.name, existingHost);
    else if (known.has(vm.host)) take(vm, vm.host);
    else floating.push(vm);
  }
  for (const vm of floating) {
    let best: string | undefined;
    for (const host of hosts) {
      if (best === undefined) {
        best = host.name;
        continue;
      }
      const room = left.get(host.name) ?? 0;
      const bestRoom = left.get(best) ?? 0;
      if (room > bestRoom || (room === bestRoom && (count.get(host.name) ?? 0) < (count.get(best) ?? 0)))
        best = host.name;
    }
    if (best !== undefined) take(vm, best);
  }
  const overcommitted = hosts
    .filter((host) => (left.get(host.name) ?? 0) < 0)
    .map((host) => ({
      host: host.name,
      neededBytes: (plannedBytes.get(host.name) ?? 0) + reserve,
      freeBytes: Math.min(host.freeMemoryBytes, (host.limitBytes ?? Number.POSITIVE_INFINITY) + reserve),
    }));
  return { hostOf, plannedBytes, overcommitted };
}

/** Splits a host's VMs into at most `parallel` batches of near-equal size (one provider call each). */
export function batches<T>(items: readonly T[], parallel: number): T[][] {
  const count = Math.max(1, Math.min(parallel, items.length));
  const out: T[][] = Array.from({ length: count }, () => []);
  items.forEach((item, index) => {
    out[index % count]?.push(item);
  });
  return out.filter((batch) => batch.length > 0);
}
