import type { Check } from '@labctl/core/checks';
import { Semaphore } from '@labctl/core/concurrency';
import { describeError } from '@labctl/core/errors';
import type { EventSink } from '@labctl/core/events';
import { type HostCapacity, placeVms } from '@labctl/core/placement';
import {
  type AdapterReport,
  type DestroyFacts,
  type DestroyOptions,
  type DiskExportFacts,
  type DiskExportRequest,
  failed,
  type HostReport,
  type MigrateFacts,
  type MigrateRequest,
  type Plan,
  type PreflightOptions,
  type PreflightResult,
  type Provider,
  resultsFor,
  type SnapshotFacts,
  type SnapshotRequest,
  type StartFacts,
  type StopFacts,
  type StopOptions,
  type VmExportFacts,
  type VmFailure,
  type VmPlan,
  type VmResult,
} from '@labctl/core/provider';
import type { VmRecord } from '@labctl/core/state';
import type { LibvirtHost } from './hosts.js';
import type { LibvirtHostFacts, LibvirtProvider } from './provider.js';

const MiB = 1024 * 1024;

/**
 * A lab over several libvirt hosts (`hosts:` with a URI each): one LibvirtProvider per host, made
 * once and reused for every call of the run. Placement is core's rule (the one Hyper-V uses): a VM
 * that exists stays where it is, a VM pinned to a host (`--host`, or where the state last saw it)
 * goes there, the rest go to the reachable host with the most memory left. A host that cannot be
 * reached fails only its own VMs, each with the cause; the other hosts' VMs are made.
 */
export class LibvirtHostsProvider implements Provider {
  readonly name = 'libvirt';
  readonly seeds = true;
  private readonly limits = new Map<string, Semaphore>();
  /** Hosts that could not be reached in this run, with the error. */
  private readonly unreachable = new Map<string, unknown>();
  /** The last `list`: each reachable host's VMs of the lab. */
  private listed: { lab: string; byHost: Map<string, VmRecord[]> } | undefined;

  constructor(
    private readonly hosts: readonly LibvirtHost[],
    private readonly providers: ReadonlyMap<string, LibvirtProvider>,
  ) {}

  private provider(host: string): LibvirtProvider | undefined {
    return this.providers.get(host);
  }

  private limit(host: string, fallback: number): Semaphore {
    let semaphore = this.limits.get(host);
    if (!semaphore) {
      semaphore = new Semaphore(this.hosts.find((item) => item.name === host)?.concurrency ?? fallback);
      this.limits.set(host, semaphore);
    }
    return semaphore;
  }

  async preflight(plan: Plan, options: PreflightOptions = {}): Promise<PreflightResult> {
    const facts = new Map<string, LibvirtHostFacts>();
    await Promise.all(
      this.hosts.map(async (host) => {
        try {
          facts.set(host.name, await this.provider(host.name)!.hostFacts());
          this.unreachable.delete(host.name);
        } catch (err) {
          this.unreachable.set(host.name, err);
        }
      }),
    );
    const existing = new Map<string, string>();
    await Promise.all(
      [...facts.keys()].map(async (host) => {
        // The create flow has just listed every host (`list`): its answer is reused, not asked again.
        const records = this.listed?.lab === plan.lab ? this.listed.byHost.get(host) : undefined;
        for (const vm of records ??
          (await this.provider(host)!
            .list(plan.lab)
            .catch(() => [])))
          existing.set(vm.name, host);
      }),
    );
    const capacities: HostCapacity[] = this.hosts
      .filter((host) => facts.has(host.name))
      .map((host) => ({
        name: host.name,
        freeMemoryBytes: facts.get(host.name)!.freeMemoryBytes,
        vmCount: facts.get(host.name)!.domains,
        ...(host.memoryLimitMiB ? { limitBytes: host.memoryLimitMiB * MiB } : {}),
      }));
    // A VM pinned to a host that is down stays pinned there: it fails with that host's cause, and a
    // re-run makes it there once the host is back (`--replace` re-places it instead).
    const pinnedToDown = plan.vms.filter((vm) => this.unreachable.has(vm.host) && !existing.has(vm.name));
    const placement = placeVms(
      plan.vms.filter((vm) => !pinnedToDown.includes(vm)),
      capacities,
      { existing, reserveBytes: 512 * MiB },
    );
    for (const vm of pinnedToDown) placement.hostOf.set(vm.name, vm.host);

    const checks: Check[] = [];
    const unplaced = plan.vms.filter((vm) => !placement.hostOf.has(vm.name));
    if (unplaced.length > 0)
      checks.push({
        id: 'hosts.none',
        level: 'error',
        message: `no host of the lab can be reached to place ${unplaced.map((vm) => vm.name).join(', ')}: ${[...this.unreachable.values()].map(describeError).join('; ')}`,
        hint: 'Is libvirtd running on the hosts, and can this machine reach their URIs (virsh -c URI uri)?',
      });
    for (const [host, err] of this.unreachable) {
      const lost = plan.vms.filter((vm) => placement.hostOf.get(vm.name) === host).map((vm) => vm.name);
      checks.push({
        id: 'hosts.unreachable',
        level: 'warning',
        subject: host,
        message: `host ${host} cannot be reached (${describeError(err)})${lost.length ? `: ${lost.join(', ')} will fail` : '; its share goes to the other hosts'}`,
        hint: 'A re-run once the host is back makes its VMs there; --replace places them on the other hosts.',
      });
    }
    for (const over of placement.overcommitted)
      checks.push({
        id: 'hosts.memory',
        level: 'error',
        subject: over.host,
        message: `host ${over.host}: the VMs placed there need ${Math.round(over.neededBytes / MiB)} MiB with the host's reserve, and it has ${Math.round(over.freeBytes / MiB)} MiB`,
        hint: 'Add a host, lower memory:, or raise the host’s memoryLimit.',
      });

    const byHost = new Map<string, VmPlan[]>();
    for (const vm of plan.vms) {
      const host = placement.hostOf.get(vm.name);
      if (host) byHost.set(host, [...(byHost.get(host) ?? []), { ...vm, host }]);
    }
    const placedVms: VmPlan[] = [];
    const perHost: string[][][] = [];
    for (const [host, vms] of byHost) {
      placedVms.push(...vms);
      const provider = this.provider(host);
      if (!provider || this.unreachable.has(host)) {
        perHost.push(vms.map((vm) => [vm.name]));
        continue;
      }
      const result = await provider.preflight({ ...plan, vms }, options);
      const several = this.hosts.length > 1;
      for (const check of result.checks)
        checks.push(several ? { ...check, message: `host ${host}: ${check.message}` } : check);
      perHost.push(result.placed.batches);
    }
    // Batches interleaved across hosts, so the run's concurrency is shared by every host from the start.
    const batches: string[][] = [];
    for (let i = 0; perHost.some((host) => i < host.length); i++)
      for (const host of perHost) if (i < host.length) batches.push(host[i]!);
    const order = new Map(plan.vms.map((vm, index) => [vm.name, index]));
    placedVms.sort((a, b) => order.get(a.name)! - order.get(b.name)!);
    return { checks, placed: { ...plan, vms: placedVms, batches } };
  }

  /**
   * Each host's share of a call, to that host's provider, bounded by the host's concurrency; a VM
   * whose host is not in the lab, or was found unreachable, fails with that cause.
   */
  private async route<V extends { name: string; host: string }, F>(
    vms: readonly V[],
    call: (provider: LibvirtProvider, vms: V[]) => Promise<Array<VmResult<F>>>,
  ): Promise<Array<VmResult<F>>> {
    const byHost = new Map<string, V[]>();
    for (const vm of vms) byHost.set(vm.host, [...(byHost.get(vm.host) ?? []), vm]);
    const results: Array<VmResult<F>> = [];
    await Promise.all(
      [...byHost].map(async ([host, share]) => {
        const provider = this.provider(host);
        const down = this.unreachable.get(host);
        if (!provider || down !== undefined) {
          const error = provider
            ? this.downFailure(host, down)
            : {
                code: 'HOST_UNKNOWN',
                message: `${host} is not a host of this lab`,
                hint: `Hosts: ${this.hosts.map((item) => item.name).join(', ')}.`,
              };
          for (const vm of share) results.push(failed(vm.name, error));
          return;
        }
        const outcome = await this.limit(host, 64).run(() =>
          resultsFor(
            share.map((vm) => vm.name),
            () => call(provider, share),
          ),
        );
        results.push(...outcome.values());
      }),
    );
    return results;
  }

  create(vms: VmPlan[], events: EventSink): Promise<Array<VmResult<VmRecord>>> {
    return this.route(vms, (provider, share) => provider.create(share, events));
  }

  start(vms: VmRecord[], events: EventSink): Promise<Array<VmResult<StartFacts>>> {
    return this.route(vms, (provider, share) => provider.start(share, events));
  }

  stop(vms: VmRecord[], options: StopOptions, events: EventSink): Promise<Array<VmResult<StopFacts>>> {
    return this.route(vms, (provider, share) => provider.stop(share, options, events));
  }

  snapshot(vms: VmRecord[], request: SnapshotRequest, events: EventSink): Promise<Array<VmResult<SnapshotFacts>>> {
    return this.route(vms, (provider, share) => provider.snapshot(share, request, events));
  }

  destroy(vms: VmRecord[], options: DestroyOptions, events: EventSink): Promise<Array<VmResult<DestroyFacts>>> {
    return this.route(vms, (provider, share) => provider.destroy(share, options, events));
  }

  migrate(vms: VmRecord[], request: MigrateRequest, events: EventSink): Promise<Array<VmResult<MigrateFacts>>> {
    return this.route(vms, (provider, share) => provider.migrate(share, request, events));
  }

  async exportDisk(vm: VmRecord, request: DiskExportRequest, events: EventSink): Promise<VmResult<DiskExportFacts>> {
    const [result] = await this.route([vm], async (provider) => [await provider.exportDisk(vm, request, events)]);
    return result!;
  }

  async exportVm(
    vm: VmRecord,
    request: { dir: string; format: 'bundle' | 'ova' },
    events: EventSink,
  ): Promise<VmResult<VmExportFacts>> {
    const [result] = await this.route([vm], async (provider) => [await provider.exportVm(vm, request, events)]);
    return result!;
  }

  cloneBasePath(source: VmRecord, name: string): string {
    const provider = this.provider(source.host);
    if (!provider) throw new Error(`${source.host} is not a host of this lab`);
    return provider.cloneBasePath(source, name);
  }

  async adapters(vms: VmRecord[]): Promise<AdapterReport[]> {
    const byHost = new Map<string, VmRecord[]>();
    for (const vm of vms) byHost.set(vm.host, [...(byHost.get(vm.host) ?? []), vm]);
    const reports = await Promise.all(
      [...byHost].map(async ([host, share]) => {
        const provider = this.provider(host);
        if (!provider)
          return share.map((vm) => ({
            vm: vm.name,
            addresses: [],
            source: 'libvirt',
            problem: `${host} is not a host of this lab`,
          }));
        return provider.adapters(share);
      }),
    );
    return reports.flat();
  }

  /**
   * Every reachable host's VMs of the lab. A host that cannot be reached is left out (and remembered:
   * its VMs fail with the cause); only when no host answers is that an error.
   */
  async list(lab: string): Promise<VmRecord[]> {
    const byHost = new Map<string, VmRecord[]>();
    this.listed = { lab, byHost };
    const outcomes = await Promise.all(
      this.hosts.map(async (host) => {
        try {
          const records = await this.provider(host.name)!.list(lab);
          this.unreachable.delete(host.name);
          byHost.set(host.name, records);
          return records;
        } catch (err) {
          this.unreachable.set(host.name, err);
          return undefined;
        }
      }),
    );
    if (outcomes.every((outcome) => outcome === undefined) && this.hosts.length > 0)
      throw this.unreachable.get(this.hosts[0]!.name);
    return outcomes.flatMap((outcome) => outcome ?? []);
  }

  unreachableHosts(): ReadonlyMap<string, VmFailure> {
    return new Map([...this.unreachable].map(([host, err]) => [host, this.downFailure(host, err)]));
  }

  private downFailure(host: string, err: unknown): VmFailure {
    const hint = (err as { hint?: string }).hint;
    return {
      code: 'HOST_UNREACHABLE',
      message: `host ${host} cannot be reached: ${describeError(err)}`,
      hint: `A re-run once the host is back finishes it; --replace places a failed VM on another host.${hint ? ` ${hint}` : ''}`,
    };
  }

  hostReports(): Promise<HostReport[]> {
    return Promise.all(this.hosts.map((host) => this.provider(host.name)!.hostReport()));
  }
}
