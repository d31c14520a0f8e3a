import type { VmPlan } from '@labctl/core/provider';
import { GiB, MiB } from './inputs.js';

/**
 * Which host each VM goes to. A VM that already exists somewhere stays there; a VM whose plan names
 * a configured host goes there; the rest go, one by one in plan order, to the host with the most
 * free memory left after what was already placed. A host keeps `reserveBytes` for itself.
 */
export interface HostCapacity {
  name: string;
  freeMemoryBytes: number;
}

export interface PlacementResult {
  /** VM name -> host name. */
  hostOf: Map<string, string>;
  /** Planned memory of new VMs per host, in bytes. */
  plannedBytes: Map<string, number>;
  /** Hosts whose new VMs need more memory than they have free. */
  overcommitted: Array<{ host: string; neededBytes: number; freeBytes: number }>;
}

export const HOST_MEMORY_RESERVE = 2 * GiB;

export function placeVms(
  vms: readonly VmPlan[],
  hosts: readonly HostCapacity[],
  options: { existing?: ReadonlyMap<string, string>; reserveBytes?: number } = {},
): PlacementResult {
  const reserve = options.reserveBytes ?? HOST_MEMORY_RESERVE;
  const hostOf = new Map<string, string>();
  const plannedBytes = new Map(hosts.map((host) => [host.name, 0]));
  const left = new Map(hosts.map((host) => [host.name, host.freeMemoryBytes - reserve]));
  const known = new Set(hosts.map((host) => host.name));
  const take = (vm: VmPlan, host: string) => {
    hostOf.set(vm.name, host);
    const bytes = vm.memoryMiB * MiB;
    plannedBytes.set(host, (plannedBytes.get(host) ?? 0) + bytes);
    left.set(host, (left.get(host) ?? 0) - bytes);
  };
  const floating: VmPlan[] = [];
  for (const vm of vms) {
    const existingHost = options.existing?.get(vm.name);
    if (existingHost) hostOf.set(vm.name, existingHost);
    else if (known.has(vm.host)) take(vm, vm.host);
    else floating.push(vm);
  }
  for (const vm of floating) {
    let best: string | undefined;
    for (const host of hosts)
      if (best === undefined || (left.get(host.name) ?? 0) > (left.get(best) ?? 0)) best = host.name;
    if (best !== undefined) take(vm, best);
  }
  const overcommitted = hosts
    .filter((host) => (left.get(host.name) ?? 0) < 0)
    .map((host) => ({
      host: host.name,
      neededBytes: (plannedBytes.get(host.name) ?? 0) + reserve,
      freeBytes: host.freeMemoryBytes,
    }));
  return { hostOf, plannedBytes, overcommitted };
}

/** Splits a host's VMs into at most `parallel` batches of near-equal size (one script run each). */
export function batches<T>(items: readonly T[], parallel: number): T[][] {
  const count = Math.max(1, Math.min(parallel, items.length));
  const out: T[][] = Array.from({ length: count }, () => []);
  items.forEach((item, index) => {
    out[index % count]?.push(item);
  });
  return out.filter((batch) => batch.length > 0);
}
