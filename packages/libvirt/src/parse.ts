import { normalizeMac } from '@labctl/core/plan';

/** Parsers for virsh's and iproute2's table output. Header and separator lines are skipped. */

export interface DhcpLease {
  mac: string;
  address: string;
  hostname?: string;
  /** Lease expiry (epoch ms), as libvirt's dnsmasq recorded it (local time of the host). */
  expiresAt: number;
}

const MAC_RE = /^[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}$/;

/**
 * `virsh net-dhcp-leases NETWORK`:
 * ` 2026-11-22 04:43:57   52:54:00:79:00:01   ipv4   10.79.0.122/24   t1   01:52:...`
 */
export function parseDhcpLeases(text: string): DhcpLease[] {
  const leases: DhcpLease[] = [];
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length < 5 || !/^\d{4}-\d{2}-\d{2}$/.test(fields[0]!) || !MAC_RE.test(fields[2]!)) continue;
    const expiresAt = new Date(`${fields[0]}T${fields[1]}`).getTime();
    if (Number.isNaN(expiresAt)) continue;
    const hostname = fields[5] && fields[5] !== '-' ? fields[5] : undefined;
    leases.push({ mac: normalizeMac(fields[2]!), address: fields[4]!, ...(hostname ? { hostname } : {}), expiresAt });
  }
  return leases;
}

export interface InterfaceAddresses {
  adapter: string;
  mac: string;
  addresses: string[];
}

/**
 * `virsh domifaddr NAME [--source lease|agent]`. An interface with several addresses prints its
 * name and MAC only on the first line; the agent source also lists `lo`.
 */
export function parseDomifaddr(text: string): InterfaceAddresses[] {
  const out: InterfaceAddresses[] = [];
  let current: InterfaceAddresses | undefined;
  for (const line of text.split('\n')) {
    const fields = line.trim().split(/\s+/);
    if (fields.length === 4 && MAC_RE.test(fields[1]!)) {
      current = { adapter: fields[0]!, mac: normalizeMac(fields[1]!), addresses: [fields[3]!] };
      out.push(current);
    } else if (fields[0] === '-' && current && fields.length >= 3) {
      current.addresses.push(fields.at(-1)!);
    } else if (fields.length === 2 && current && /^ipv[46]$/.test(fields[0]!)) {
      current.addresses.push(fields[1]!);
    }
  }
  return out;
}

export interface NeighbourEntry {
  address: string;
  mac: string;
  device: string;
  state: string;
}

/** `ip neigh show`: `10.79.0.122 dev labbr0 lladdr 52:54:00:79:00:01 REACHABLE`. FAILED/INCOMPLETE have no MAC. */
export function parseNeighbours(text: string): NeighbourEntry[] {
  const out: NeighbourEntry[] = [];
  for (const line of text.split('\n')) {
    const match = /^(\S+) dev (\S+) lladdr ([0-9a-fA-F:]{17})(?: router)?(?: proxy)? ?(\S*)/.exec(line.trim());
    if (!match) continue;
    const state = match[4] || 'UNKNOWN';
    if (state === 'FAILED' || state === 'INCOMPLETE') continue;
    out.push({ address: match[1]!, device: match[2]!, mac: normalizeMac(match[3]!), state });
  }
  return out;
}

/** Lease time of a libvirt network from `net-dumpxml` (`<lease expiry='N' unit='...'/>`); libvirt's default is 1 hour. */
export function parseLeaseSeconds(networkXml: string): number {
  const match = /<range\b[^>]*>\s*<lease\s+expiry=['"](\d+)['"](?:\s+unit=['"](\w+)['"])?/.exec(networkXml);
  if (!match) return 3600;
  const amount = Number(match[1]);
  if (amount === 0) return Number.POSITIVE_INFINITY;
  const unit = match[2] ?? 'minutes';
  return amount * ({ seconds: 1, minutes: 60, hours: 3600 }[unit] ?? 60);
}

/** `virsh list --all`: domain name -> state as domstate spells it ("running", "shut off", "paused"). */
export function parseDomainList(text: string): Map<string, string> {
  const states = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^\s*(\S+)\s+(\S+)\s+(.+?)\s*$/.exec(line);
    if (m && m[1] !== 'Id') states.set(m[2]!, m[3]!);
  }
  return states;
}
