import { describe, expect, it } from 'vitest';
import { type ExecuteReport, hostsToSkip } from './service.js';

describe('LDAP first, then only the hosts whose delegation is in place', () => {
  it('skips hosts missing from the directory, ambiguous ones and those whose delegation failed, each with the reason; done hosts are not skipped', () => {
    const report = {
      ok: false,
      missing: ['hv04'],
      ambiguous: ['hv05'],
      outcomes: [
        { host: 'hv01', status: 'changed' },
        { host: 'hv02', status: 'unchanged' },
        { host: 'hv03', status: 'failed', error: 'insufficient access rights' },
      ],
    } as unknown as ExecuteReport;
    const skip = hostsToSkip(report);
    expect([...skip.keys()].sort()).toEqual(['hv03', 'hv04', 'hv05']);
    expect(skip.get('hv03')).toContain('insufficient access rights');
    expect(skip.get('hv04')).toMatch(/not in the directory/);
    expect(skip.get('hv05')).toMatch(/more than one computer object/);
  });
});
