import { describe, expect, it } from 'vitest';
import { parseDhcpLeases, parseDomainList, parseDomifaddr, parseLeaseSeconds, parseNeighbours } from './parse.js';

// Recorded from libvirt 9.0 (Debian 12) in the test bed.
const LEASES = ` Expiry Time           MAC address         Protocol   IP address       Hostname   Client ID or DUID
--------------------------------------------------------------------------------------------------------
 2026-11-22 04:52:57   52:54:00:4c:1b:e1   ipv4       10.81.0.249/24   vm-03      01:52:54:00:4c:1b:e1
 2026-11-22 04:51:59   52:54:00:63:B4:5E   ipv4       10.81.0.172/24   -          01:52:54:00:63:b4:5e
 2026-11-22 04:53:15   52:54:00:d1:5c:bd   ipv6       fd00::5/64       vm-02      00:04:aa
`;

describe('parseDhcpLeases', () => {
  it('reads MAC, address, hostname and expiry (host local time); skips header lines', () => {
    const leases = parseDhcpLeases(LEASES);
    expect(leases).toHaveLength(3);
    expect(leases[0]).toEqual({
      mac: '52:54:00:4c:1b:e1',
      address: '10.81.0.249/24',
      hostname: 'vm-03',
      expiresAt: new Date('2026-11-22T04:52:57').getTime(),
    });
    expect(leases[1]).toMatchObject({ mac: '52:54:00:63:b4:5e', address: '10.81.0.172/24' });
    expect(leases[1]!.hostname).toBeUndefined();
    expect(leases[2]!.address).toBe('fd00::5/64');
  });

  it('an empty network has no leases', () => {
    expect(parseDhcpLeases(LEASES.split('\n').slice(0, 2).join('\n'))).toEqual([]);
    expect(parseDhcpLeases('')).toEqual([]);
  });
});

describe('parseDomifaddr', () => {
  it('lease source: one line per address', () => {
    expect(parseDomifaddr(' vnet0      52:54:00:79:00:01    ipv4         10.79.0.122/24\n')).toEqual([
      { adapter: 'vnet0', mac: '52:54:00:79:00:01', addresses: ['10.79.0.122/24'] },
    ]);
  });

  it('agent source: continuation lines belong to the interface above; lo is listed too', () => {
    const agent = ` Name       MAC address          Protocol     Address
-------------------------------------------------------------------------------
 lo         00:00:00:00:00:00    ipv4         127.0.0.1/8
 -          -                    ipv6         ::1/128
 eth0       52:54:00:aa:bb:cc    ipv4         192.168.122.5/24
 -          -                    ipv6         fe80::5054:ff:feaa:bbcc/64
`;
    const parsed = parseDomifaddr(agent);
    expect(parsed.map((i) => i.adapter)).toEqual(['lo', 'eth0']);
    expect(parsed[1]!.addresses).toEqual(['192.168.122.5/24', 'fe80::5054:ff:feaa:bbcc/64']);
  });
});

describe('parseNeighbours', () => {
  it('keeps entries with a MAC, drops FAILED/INCOMPLETE ones', () => {
    const text = [
      '10.79.0.122 dev labbr0 lladdr 52:54:00:79:00:01 DELAY',
      '10.79.0.9 dev labbr0 lladdr 52:54:00:79:00:09 STALE',
      '10.79.0.7 dev labbr0  FAILED',
      '10.79.0.8 dev labbr0 lladdr 52:54:00:79:00:08 FAILED',
      'fe80::1 dev labbr0 lladdr 52:54:00:79:00:01 router REACHABLE',
    ].join('\n');
    expect(parseNeighbours(text)).toEqual([
      { address: '10.79.0.122', device: 'labbr0', mac: '52:54:00:79:00:01', state: 'DELAY' },
      { address: '10.79.0.9', device: 'labbr0', mac: '52:54:00:79:00:09', state: 'STALE' },
      { address: 'fe80::1', device: 'labbr0', mac: '52:54:00:79:00:01', state: 'REACHABLE' },
    ]);
  });
});

describe('parseLeaseSeconds', () => {
  it("libvirt's default is one hour; <lease> changes it", () => {
    expect(parseLeaseSeconds("<network><ip><dhcp><range start='a' end='b'/></dhcp></ip></network>")).toBe(3600);
    expect(parseLeaseSeconds("<range start='a' end='b'>\n  <lease expiry='30' unit='minutes'/>\n</range>")).toBe(1800);
    expect(parseLeaseSeconds("<range start='a' end='b'><lease expiry='90' unit='seconds'/></range>")).toBe(90);
    expect(parseLeaseSeconds("<range start='a' end='b'><lease expiry='0'/></range>")).toBe(Number.POSITIVE_INFINITY);
  });
});

describe('parseDomainList', () => {
  it('reads every domain with its state, two-word states included; skips the header and rule', () => {
    const text = ` Id   Name    State
------------------------
 3    lc-01   running
 4    lc-02   paused
 -    lc-03   shut off
`;
    expect([...parseDomainList(text)]).toEqual([
      ['lc-01', 'running'],
      ['lc-02', 'paused'],
      ['lc-03', 'shut off'],
    ]);
  });
});
