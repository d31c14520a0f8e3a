import { describe, expect, it } from 'vitest';
import { bestAddress, classifyAddress, rankAddresses } from './address.js';

describe('addresses', () => {
  it('drops placeholders, APIPA and link-local, with the reason', () => {
    expect(classifyAddress('0.0.0.0').reason).toMatch(/unspecified/);
    expect(classifyAddress('169.254.10.3').reason).toMatch(/APIPA/);
    expect(classifyAddress('fe80::215:5dff:fe00:1%eth0').reason).toMatch(/link-local/);
    expect(classifyAddress('febf::1').kind).toBe('unusable');
    expect(classifyAddress('::').kind).toBe('unusable');
    expect(classifyAddress('not-an-ip').kind).toBe('unusable');
  });

  it('prefers routable IPv4, then IPv6, then loopback', () => {
    expect(rankAddresses(['fe80::1', '2001:db8::5', '0.0.0.0', '127.0.0.1', '10.0.0.7/24', '169.254.1.1'])).toEqual([
      '10.0.0.7',
      '2001:db8::5',
      '127.0.0.1',
    ]);
    expect(bestAddress(['fd00::2', '192.168.5.4'])).toBe('192.168.5.4');
    expect(bestAddress(['fe80::1', '169.254.0.9'])).toBeUndefined();
  });

  it('removes duplicates', () => {
    expect(rankAddresses(['10.0.0.1', '10.0.0.1/24'])).toEqual(['10.0.0.1']);
  });
});
