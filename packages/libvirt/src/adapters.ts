import type { AdapterReport } from '@labctl/core/provider';
import type { VmRecord } from '@labctl/core/state';
import { connectError, isLocalUri } from './connect.js';
import { run } from './exec.js';
import { parseDhcpLeases, parseDomifaddr, parseLeaseSeconds, parseNeighbours } from './parse.js';
import type { Virsh } from './virsh.js';
import { networkSource } from './xml.js';

/** Addresses as libvirt sees them, for discovery: leases, then the guest agent, then the neighbour table. */
export class AdapterReader {
  private readonly agentUnavailable = new Set<string>();

  constructor(
    private readonly virsh: Virsh,
    private readonly uri: string,
  ) {}

  /**
   * Addresses as libvirt sees them: DHCP leases of the VM's network (with their age, so stale
   * leases can be told apart), else the guest agent, else this host's neighbour table.
   */
  async read(vms: VmRecord[]): Promise<AdapterReport[]> {
    const reports: AdapterReport[] = [];
    const leasesByNetwork = new Map<
      string,
      { leases: ReturnType<typeof parseDhcpLeases>; leaseSeconds: number } | undefined
    >();
    let neighbours: ReturnType<typeof parseNeighbours> | undefined;
    // One `virsh list` per poll round, not one domstate per VM: discovery polls while the guests boot
    // and every virsh start takes CPU from them (over qemu+ssh, also an SSH connection).
    const running = new Map<string, string | undefined>();
    // A libvirt that cannot be reached is an error, never "no domain": the VMs may be fine.
    let all: Map<string, string>;
    try {
      all = await this.virsh.domainStates();
    } catch (err) {
      throw connectError(this.uri, err);
    }
    for (const vm of vms) running.set(vm.name, all.get(vm.name));
    for (const vm of vms) {
      const state = running.get(vm.name);
      if (state === undefined) {
        reports.push({ vm: vm.name, addresses: [], source: 'libvirt', problem: `no domain ${vm.name} at ${this.uri}` });
        continue;
      }
      if (state !== 'running') {
        reports.push({ vm: vm.name, addresses: [], source: 'libvirt', problem: `domain is ${state}` });
        continue;
      }
      const mac = vm.mac?.toLowerCase();
      const network = String((vm.resources as { network?: string } | undefined)?.network ?? '');
      const source = network ? networkSource(network) : undefined;
      if (source?.type === 'network') {
        if (!leasesByNetwork.has(source.name)) leasesByNetwork.set(source.name, await this.networkLeases(source.name));
        const net = leasesByNetwork.get(source.name);
        const mine = net?.leases.filter((lease) => lease.mac === mac) ?? [];
        if (mine.length > 0) {
          for (const lease of mine) {
            const obtainedAt = Number.isFinite(net!.leaseSeconds)
              ? lease.expiresAt - net!.leaseSeconds * 1000
              : undefined;
            reports.push({
              vm: vm.name,
              mac: lease.mac,
              addresses: [lease.address],
              source: 'lease',
              ...(obtainedAt !== undefined ? { obtainedAt } : {}),
            });
          }
          continue;
        }
      }
      if (!this.agentUnavailable.has(vm.name)) {
        try {
          const agent = parseDomifaddr(
            await this.virsh.text(['domifaddr', vm.name, '--source', 'agent'], { timeoutMs: 10_000 }),
          );
          const adapter = agent.find((a) => a.mac === mac);
          if (adapter) {
            reports.push({
              vm: vm.name,
              adapter: adapter.adapter,
              mac: adapter.mac,
              addresses: adapter.addresses,
              source: 'agent',
            });
            continue;
          }
        } catch {
          // No guest agent in this guest: do not ask again on every poll.
          this.agentUnavailable.add(vm.name);
        }
      }
      if (isLocalUri(this.uri)) {
        neighbours ??= await run('ip', ['neigh', 'show'], { timeoutMs: 10_000 })
          .then((r) => parseNeighbours(r.stdout))
          .catch(() => []);
        const seen = neighbours.filter((entry) => entry.mac === mac);
        if (seen.length > 0) {
          reports.push({ vm: vm.name, mac, addresses: seen.map((entry) => entry.address), source: 'arp' });
          continue;
        }
      }
      reports.push({ vm: vm.name, mac, addresses: [], source: 'lease' });
    }
    return reports;
  }

  private async networkLeases(network: string) {
    try {
      const [leases, xml] = await Promise.all([
        this.virsh.text(['net-dhcp-leases', network]),
        this.virsh.text(['net-dumpxml', network]),
      ]);
      return { leases: parseDhcpLeases(leases), leaseSeconds: parseLeaseSeconds(xml) };
    } catch {
      return undefined;
    }
  }
}
