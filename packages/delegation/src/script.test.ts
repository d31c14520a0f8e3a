import { powershellSyntaxProblems } from '@labctl/core/testing/powershell-syntax';
import { describe, expect, it } from 'vitest';
import { parseHostNames } from './mesh.js';
import { delegationScript, psQuote } from './script.js';

describe('PowerShell script', () => {
  const hosts = parseHostNames(['hv01', 'hv02.lab.test', 'HV03']).hosts;

  it('apply and remove scripts parse with tree-sitter-powershell', async () => {
    for (const mode of ['apply', 'remove'] as const) {
      const script = delegationScript({
        hosts,
        domain: 'lab.test',
        services: ['Microsoft Virtual System Migration Service', 'cifs'],
        mode,
      });
      expect(await powershellSyntaxProblems(script), mode).toEqual([]);
      expect(script).toContain("[string[]]$HyperVHosts = @('HV01', 'HV02', 'HV03'),");
      expect(script).toMatch(/^\$ErrorActionPreference = 'Stop'$/m);
    }
  });

  it('is idempotent by construction: adds only values not present, flags only when wrong', () => {
    const script = delegationScript({ hosts, domain: 'lab.test', services: ['cifs'], mode: 'apply' });
    expect(script).toContain('Where-Object { $present -notcontains $_ }');
    expect(script).toContain('if ($missing.Count -gt 0)');
    expect(script).toContain('if ($computer.TrustedForDelegation -or -not $computer.TrustedToAuthForDelegation)');
  });

  it('quotes every value as a literal, typographic quotes included', async () => {
    expect(psQuote("it's")).toBe("'it''s'");
    expect(psQuote('a\u2019b')).toBe("'a\u2019\u2019b'");
    expect(psQuote('$(Remove-Item C:\\ -Recurse) `n "x"')).toBe('\'$(Remove-Item C:\\ -Recurse) `n "x"\'');
    const evil = "x'; Remove-Item -Recurse C:\\; '\u2018";
    const script = delegationScript({ hosts, domain: 'lab.test', services: [evil], mode: 'apply' });
    expect(script).toContain("[string[]]$Services = @('x''; Remove-Item -Recurse C:\\; ''\u2018\u2018')");
    expect(await powershellSyntaxProblems(script)).toEqual([]);
  });
});
