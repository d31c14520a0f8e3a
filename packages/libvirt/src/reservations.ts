import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { isIPv4 } from 'node:net';
import type { Check } from '@labctl/core/checks';
import { mapLimit } from '@labctl/core/concurrency';
import { describeError } from '@labctl/core/errors';
import type { VmPlan } from '@labctl/core/provider';
import { LibvirtError } from './connect.js';
import type { Virsh } from './virsh.js';
import { escapeXml, networkSource, unescapeXml } from './xml.js';

/**
 * Addresses known before boot on libvirt: DHCP reservations (`net-update add ip-dhcp-host`) for
 * `assign: reservation`, and the checks that no planned address is taken (by another MAC's
 * reservation, or by a machine that already answers on the network).
 */
export interface DhcpHost {
  mac: string;
  ip: string;
  name?: string;
}

/** The `<host>` entries of a network's `<dhcp>`. */
export function parseDhcpHosts(networkXml: string): DhcpHost[] {
  const hosts: DhcpHost[] = [];
  for (const match of networkXml.matchAll(/<host\s([^>]*?)\/?>/g)) {
    const attr = (name: string) => {
      const found = new RegExp(`\\b${name}=(['"])(.*?)\\1`).exec(match[1]!);
      return found ? unescapeXml(found[2]!) : undefined;
    };
    const mac = attr('mac');
    const ip = attr('ip');
    if (mac && ip) hosts.push({ mac: mac.toLowerCase(), ip, ...(attr('name') ? { name: attr('name')! } : {}) });
  }
  return hosts;
}

export function dhcpHostXml(host: DhcpHost): string {
  return `<host mac='${escapeXml(host.mac)}'${host.name ? ` name='${escapeXml(host.name)}'` : ''} ip='${escapeXml(host.ip)}'/>`;
}

async function dhcpHosts(virsh: Virsh, network: string): Promise<DhcpHost[]> {
  return parseDhcpHosts(await virsh.text(['net-dumpxml', network], { timeoutMs: 30_000 }));
}

/** Adds the reservation, or finds it already there (a re-run); another MAC holding the address is an error. */
export async function addReservation(virsh: Virsh, network: string, host: DhcpHost): Promise<'added' | 'present'> {
  const existing = await dhcpHosts(virsh, network);
  if (existing.some((h) => h.mac === host.mac.toLowerCase() && h.ip === host.ip)) return 'present';
  const holder = existing.find((h) => h.ip === host.ip || h.mac === host.mac.toLowerCase());
  if (holder)
    throw new LibvirtError(
      'RESERVATION_TAKEN',
      `network ${network} already reserves ${holder.ip} for ${holder.mac}${holder.name ? ` (${holder.name})` : ''}`,
      {
        hint: 'Give the group another address range, or remove that reservation (virsh net-update ... delete ip-dhcp-host).',
      },
    );
  await updateHost(virsh, network, 'add', host);
  return 'added';
}

/** Removes the reservation only when the network still has exactly it (mac and ip): never another's. */
export async function removeReservation(virsh: Virsh, network: string, host: DhcpHost): Promise<boolean> {
  const existing = await dhcpHosts(virsh, network);
  const own = existing.find((h) => h.mac === host.mac.toLowerCase() && h.ip === host.ip);
  if (!own) return false;
  await updateHost(virsh, network, 'delete', own);
  return true;
}

async function updateHost(virsh: Virsh, network: string, command: 'add' | 'delete', host: DhcpHost): Promise<void> {
  const args = ['net-update', network, command, 'ip-dhcp-host', dhcpHostXml(host), '--live'];
  try {
    await virsh.run([...args, '--config'], { timeoutMs: 30_000 });
  } catch (err) {
    // A transient network has no persistent config to change.
    if (!/transient|persistent/i.test(describeError(err))) throw err;
    await virsh.run(args, { timeoutMs: 30_000 });
  }
}

/** Does a machine answer at `address`? One ping (ICMP echo), then the ARP table (a host that drops ICMP still answers ARP). */
export async function answersOnNetwork(address: string, timeoutMs = 1_000): Promise<boolean> {
  if (!isIPv4(address)) return false;
  const seconds = String(Math.max(1, Math.round(timeoutMs / 1000)));
  for (const [program, args] of [
    ['ping', ['-c', '1', '-n', '-W', seconds, address]],
    ['busybox', ['ping', '-c', '1', '-W', seconds, address]],
  ] as const) {
    const code = await new Promise<number | 'missing'>((resolve) => {
      const child = spawn(program, args, { stdio: 'ignore' });
      child.on('error', () => resolve('missing'));
      child.on('exit', (status) => resolve(status ?? 1));
    });
    if (code === 'missing') continue;
    if (code === 0) return true;
    break;
  }
  const arp = await readFile('/proc/net/arp', 'utf8').catch(() => '');
  return arp.split('\n').some((line) => {
    const [ip, , flags, mac] = line.trim().split(/\s+/);
    return ip === address && flags !== '0x0' && mac !== '00:00:00:00:00:00';
  });
}

/**
 * Before anything is made: reservations need a libvirt network (not a bridge) and an address no other
 * MAC holds there; on a local libvirt, no planned address of a VM still to be made may already answer.
 */
export async function addressChecks(
  virsh: Virsh,
  vms: readonly VmPlan[],
  options: { local: boolean; exists: (name: string) => Promise<boolean> },
): Promise<Check[]> {
  const checks: Check[] = [];
  const withAddress = vms.filter((vm) => vm.address);
  if (withAddress.length === 0) return checks;
  const networks = new Map<string, DhcpHost[] | Error>();
  for (const vm of withAddress.filter((v) => v.address!.assign === 'reservation')) {
    const net = networkSource(vm.network);
    if (net.type !== 'network') {
      checks.push({
        id: 'address.reservation',
        level: 'error',
        subject: vm.name,
        message: `${vm.name}: a DHCP reservation needs a libvirt network, not bridge ${net.name}`,
        hint: 'Use assign: static on a bridge (the address goes into the VM seed).',
      });
      continue;
    }
    if (!networks.has(net.name))
      networks.set(net.name, await dhcpHosts(virsh, net.name).catch((err: unknown) => err as Error));
    const hosts = networks.get(net.name)!;
    if (hosts instanceof Error) {
      checks.push({
        id: 'address.reservation',
        level: 'error',
        subject: net.name,
        message: `cannot read network ${net.name}: ${describeError(hosts)}`,
      });
      continue;
    }
    const holder = hosts.find(
      (h) =>
        (h.ip === vm.address!.address) !== (h.mac === vm.mac.toLowerCase()) &&
        (h.ip === vm.address!.address || h.mac === vm.mac.toLowerCase()),
    );
    if (holder)
      checks.push({
        id: 'address.reservation',
        level: 'error',
        subject: vm.name,
        message: `${vm.name}: network ${net.name} already reserves ${holder.ip} for ${holder.mac}${holder.name ? ` (${holder.name})` : ''}`,
        hint: 'Another lab or VM holds it: give this group another address range.',
      });
  }
  if (!options.local) {
    checks.push({
      id: 'address.free',
      level: 'ok',
      message: 'planned addresses not pinged: labctl is not on the libvirt host (remote URI)',
    });
    return checks;
  }
  const toMake = [];
  for (const vm of withAddress) if (!(await options.exists(vm.name))) toMake.push(vm);
  const answered = await mapLimit(toMake, 16, async (vm) =>
    (await answersOnNetwork(vm.address!.address)) ? vm : undefined,
  );
  for (const result of answered) {
    if (!result.ok || !result.value) continue;
    const vm = result.value;
    checks.push({
      id: 'address.free',
      level: 'error',
      subject: vm.name,
      message: `${vm.name}: ${vm.address!.address} already answers on the network`,
      hint: 'Another machine (or another lab) has that address: give this group another range (network.addresses), or free the address.',
    });
  }
  if (toMake.length > 0 && !checks.some((c) => c.id === 'address.free'))
    checks.push({
      id: 'address.free',
      level: 'ok',
      message: `${toMake.length} planned addresses are free (no answer)`,
    });
  return checks;
}
