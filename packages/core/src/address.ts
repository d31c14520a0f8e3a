import { isIPv4, isIPv6 } from 'node:net';

/**
 * Which guest addresses are worth using, and which one is best. Hypervisors report placeholders
 * (0.0.0.0, ::), self-assigned APIPA (169.254/16) and IPv6 link-local (fe80::/10) addresses that are
 * never reachable from outside the guest; those are dropped everywhere in labctl.
 */
export type AddressKind = 'ipv4' | 'ipv6' | 'unusable';

export interface ClassifiedAddress {
  address: string;
  kind: AddressKind;
  /** Why an address is unusable, for "what was seen" explanations. */
  reason?: string;
}

/** Strip a CIDR suffix ("10.0.0.5/24") or an IPv6 zone ("fe80::1%eth0"). */
export function bareAddress(value: string): string {
  return value
    .trim()
    .replace(/\/\d+$/, '')
    .replace(/%.*$/, '');
}

function ipv4Octets(address: string): number[] {
  return address.split('.').map((part) => Number.parseInt(part, 10));
}

function ipv6FirstHextet(address: string): number {
  const head = address.split(':')[0] ?? '';
  return head === '' ? 0 : Number.parseInt(head, 16);
}

export function classifyAddress(value: string): ClassifiedAddress {
  const address = bareAddress(value);
  if (isIPv4(address)) {
    const [a, b] = ipv4Octets(address);
    if (address === '0.0.0.0') return { address, kind: 'unusable', reason: 'unspecified (0.0.0.0)' };
    if (a === 169 && b === 254)
      return { address, kind: 'unusable', reason: 'APIPA self-assigned (169.254/16): no DHCP answer' };
    if (a !== undefined && a >= 224) return { address, kind: 'unusable', reason: 'multicast or reserved' };
    return { address, kind: 'ipv4' };
  }
  if (isIPv6(address)) {
    const first = ipv6FirstHextet(address);
    if (/^[0:]+$/.test(address)) return { address, kind: 'unusable', reason: 'unspecified (::)' };
    if ((first & 0xffc0) === 0xfe80) return { address, kind: 'unusable', reason: 'IPv6 link-local (fe80::/10)' };
    if ((first & 0xff00) === 0xff00) return { address, kind: 'unusable', reason: 'IPv6 multicast' };
    return { address, kind: 'ipv6' };
  }
  return { address, kind: 'unusable', reason: 'not an IP address' };
}

export function isUsableAddress(value: string): boolean {
  return classifyAddress(value).kind !== 'unusable';
}

function isLoopback(address: string): boolean {
  return address === '::1' || address.startsWith('127.');
}

function rank(address: ClassifiedAddress): number {
  const loopback = isLoopback(address.address) ? 2 : 0;
  return (address.kind === 'ipv4' ? 0 : 1) + loopback;
}

/** Usable addresses, best first: routable IPv4, then IPv6, then loopback; original order within a rank. */
export function rankAddresses(values: readonly string[]): string[] {
  const seen = new Set<string>();
  const usable: ClassifiedAddress[] = [];
  for (const value of values) {
    const classified = classifyAddress(value);
    if (classified.kind === 'unusable' || seen.has(classified.address)) continue;
    seen.add(classified.address);
    usable.push(classified);
  }
  return usable
    .map((address, index) => ({ address, index }))
    .sort((x, y) => rank(x.address) - rank(y.address) || x.index - y.index)
    .map(({ address }) => address.address);
}

export function bestAddress(values: readonly string[]): string | undefined {
  return rankAddresses(values)[0];
}
