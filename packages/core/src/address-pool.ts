import { isIPv4 } from 'node:net';
import { UsageError } from './errors.js';

/**
 * Static addresses from the lab file (`network.addresses`): a list of single addresses and ranges
 * ("10.0.0.10-10.0.0.29", or "10.0.0.10-29" within the last octet), handed to a group's VMs in order,
 * so web-03 always gets the third. Checked where they enter: each address inside `prefix` with the
 * gateway, neither the subnet's network nor its broadcast address.
 */
export const MAX_POOL_ADDRESSES = 65_536;

export function ipv4ToNumber(address: string): number {
  return address.split('.').reduce((sum, part) => sum * 256 + Number.parseInt(part, 10), 0);
}

export function numberToIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function entryAddresses(entry: string, where: string): string[] {
  const text = entry.trim();
  const range = /^([0-9.]+)\s*-\s*([0-9.]+)$/.exec(text);
  if (!range) {
    if (!isIPv4(text)) throw new UsageError('ADDRESS_INVALID', `${where}: "${text}" is not an IPv4 address or range`);
    return [text];
  }
  const first = range[1]!;
  const lastText = range[2]!.includes('.') ? range[2]! : first.replace(/\d+$/, range[2]!);
  if (!isIPv4(first) || !isIPv4(lastText))
    throw new UsageError('ADDRESS_INVALID', `${where}: "${text}" is not an IPv4 range`, {
      hint: 'Write 10.0.0.10-10.0.0.29 or 10.0.0.10-29.',
    });
  const [from, to] = [ipv4ToNumber(first), ipv4ToNumber(lastText)];
  if (to < from) throw new UsageError('ADDRESS_INVALID', `${where}: range "${text}" ends before it starts`);
  if (to - from + 1 > MAX_POOL_ADDRESSES)
    throw new UsageError('ADDRESS_INVALID', `${where}: range "${text}" has more than ${MAX_POOL_ADDRESSES} addresses`);
  return Array.from({ length: to - from + 1 }, (_, i) => numberToIpv4(from + i));
}

/** Every address of the pool, in order, each once. */
export function poolAddresses(entries: string | readonly string[], where: string): string[] {
  const list = typeof entries === 'string' ? entries.split(',') : entries;
  const out: string[] = [];
  const seen = new Set<string>();
  for (const entry of list) {
    for (const address of entryAddresses(entry, where)) {
      if (seen.has(address)) throw new UsageError('ADDRESS_CLASH', `${where}: ${address} is listed twice`);
      seen.add(address);
      out.push(address);
    }
  }
  return out;
}

/** Why `address` cannot be a host address in `prefix` next to `gateway`, or undefined. */
export function subnetProblem(address: string, prefix: number, gateway?: string): string | undefined {
  const size = 2 ** (32 - prefix);
  const value = ipv4ToNumber(address);
  const network = value - (value % size);
  if (prefix <= 30 && (value === network || value === network + size - 1))
    return `${address} is the ${value === network ? 'network' : 'broadcast'} address of ${numberToIpv4(network)}/${prefix}`;
  if (gateway !== undefined) {
    if (!isIPv4(gateway)) return `gateway "${gateway}" is not an IPv4 address`;
    const gw = ipv4ToNumber(gateway);
    if (gw - (gw % size) !== network)
      return `gateway ${gateway} is not in ${numberToIpv4(network)}/${prefix} with ${address}`;
    if (gw === value) return `${address} is the gateway`;
  }
  return undefined;
}
