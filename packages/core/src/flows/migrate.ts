import { UsageError } from '../errors.js';
import { type HostCapacity, placeVms } from '../placement.js';
import type { EventSink } from '../events.js';
import type { MigrateFacts, MigrateRequest, Provider, VmResult } from '../provider.js';
import type { LabSpec } from '../spec.js';
import type { VmRecord } from '../state.js';

/**
 * What `labctl migrate` and `labctl evacuate` share: the lab's host names (refused before anything
 * when a flag names another), where an evacuated host's VMs go (core's placement rule, as for
 * create), and one provider call per batch with each VM's destination.
 */
export function labHostNames(spec: LabSpec, command: string): string[] {
  const names = (spec.hosts ?? []).map((host) => host.name);
  if (names.length < 2)
    throw new UsageError(
      'HOSTS_NEEDED',
      `${command} moves VMs between hosts, and this lab has ${names.length === 0 ? 'no hosts:' : 'one host'}`,
      {
        hint: 'List two or more hosts under hosts: in labctl.yaml (a uri: each for libvirt).',
      },
    );
  return names;
}

export function checkHostName(names: readonly string[], name: string, flag: string): void {
  if (!names.includes(name))
    throw new UsageError('HOST_UNKNOWN', `${flag} ${JSON.stringify(name)} is not a host of this lab`, {
      hint: `Hosts: ${names.join(', ')}.`,
    });
}

/** MiB a VM needs on its new host: what its provider recorded, else 1 GiB. */
function memoryOf(vm: VmRecord): number {
  const recorded = (vm.resources as { memoryMiB?: unknown } | undefined)?.memoryMiB;
  return typeof recorded === 'number' && recorded > 0 ? recorded : 1024;
}

/** Where each VM of an evacuated host goes: the target host with the most memory left, in turn. */
export function evacuationTargets(vms: readonly VmRecord[], targets: readonly HostCapacity[]): Map<string, string> {
  const placement = placeVms(
    vms.map((vm) => ({ name: vm.name, host: '', memoryMiB: memoryOf(vm) })),
    targets,
    { reserveBytes: 512 * 1024 * 1024 },
  );
  return placement.hostOf;
}

/** One provider call per destination for a batch of VMs on one provider. */
export async function migrateBatch(
  provider: Provider,
  vms: VmRecord[],
  destination: (vm: VmRecord) => string,
  request: Omit<MigrateRequest, 'to'>,
  events: EventSink,
): Promise<Array<VmResult<MigrateFacts>>> {
  if (!provider.migrate)
    throw new UsageError('MIGRATE_UNSUPPORTED', `the ${provider.name} provider does not migrate VMs yet`, {
      hint: 'labctl migrate is built for libvirt hosts; on Hyper-V use Move-VM for now.',
    });
  const byDestination = new Map<string, VmRecord[]>();
  for (const vm of vms) byDestination.set(destination(vm), [...(byDestination.get(destination(vm)) ?? []), vm]);
  const results = await Promise.all(
    [...byDestination].map(([to, share]) => provider.migrate!(share, { ...request, to }, events)),
  );
  return results.flat();
}
