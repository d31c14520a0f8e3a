import { describe, expect, it } from 'vitest';
import {
  type ComputerObject,
  delegatingFlags,
  diffForApply,
  diffForRemove,
  gapOf,
  parseHostNames,
  targetNames,
  UF_TRUSTED_FOR_DELEGATION,
  UF_TRUSTED_TO_AUTH_FOR_DELEGATION,
  validateServices,
  wantedValues,
} from './mesh.js';

const object = (over: Partial<ComputerObject> = {}): ComputerObject => ({
  short: 'HV01',
  dn: 'CN=HV01,CN=Computers,DC=lab,DC=test',
  dnsHostName: 'hv01.lab.test',
  servicePrincipalNames: [],
  allowedToDelegateTo: [],
  userAccountControl: 0x1000,
  ...over,
});

describe('the mesh', () => {
  it('parses names, dedupes case-insensitively, refuses what is not a host name', () => {
    expect(parseHostNames(['hv01', 'HV02.lab.test', 'HV01', ' '])).toEqual({
      hosts: [
        { given: 'hv01', short: 'HV01' },
        { given: 'HV02.lab.test', short: 'HV02' },
      ],
      duplicates: ['HV01'],
    });
    for (const bad of ['hv01)(cn=*', "hv'01", 'a b', 'hv01..lab', '-hv', 'averyveryverylongname'])
      expect(() => parseHostNames([bad]), bad).toThrow(
        expect.objectContaining({ code: 'DELEGATION_BAD_HOST', exitCode: 2 }),
      );
  });

  it('wants FQDN and short name for each service to every other host, never to itself', () => {
    const targets = [targetNames('HV01', 'lab.test'), targetNames('hv02', 'lab.test', 'HV02.Other.Test')];
    expect(wantedValues('hv01', targets, ['cifs', 'Microsoft Virtual System Migration Service'])).toEqual([
      'cifs/hv02.other.test',
      'cifs/HV02',
      'Microsoft Virtual System Migration Service/hv02.other.test',
      'Microsoft Virtual System Migration Service/HV02',
    ]);
  });

  it('sets protocol transition, clears unconstrained, keeps every other bit', () => {
    expect(delegatingFlags(0x1000 | UF_TRUSTED_FOR_DELEGATION | 0x10000)).toBe(
      0x1000 | 0x10000 | UF_TRUSTED_TO_AUTH_FOR_DELEGATION,
    );
    expect(delegatingFlags(0x1001000)).toBe(0x1001000);
  });

  it('adds only what is missing, comparing case-insensitively, and swaps the flags from the value read', () => {
    const change = diffForApply(object({ allowedToDelegateTo: ['CIFS/hv02', 'HTTP/web'] }), [
      'cifs/HV02',
      'cifs/hv02.lab.test',
      'cifs/HV02.LAB.TEST',
    ]);
    expect(change.add).toEqual(['cifs/hv02.lab.test']);
    expect(change.userAccountControl).toEqual({ from: 0x1000, to: 0x1001000 });
    expect(
      diffForApply(object({ allowedToDelegateTo: ['cifs/HV02'], userAccountControl: 0x1001000 }), ['cifs/hv02']),
    ).toMatchObject({
      add: [],
      userAccountControl: null,
    });
  });

  it('removes exactly its own values as stored, and the bit only when asked', () => {
    const stored = object({
      allowedToDelegateTo: ['CIFS/hv02', 'HTTP/web', 'cifs/HV03'],
      userAccountControl: 0x1001000,
    });
    expect(diffForRemove(stored, ['cifs/HV02'], false)).toMatchObject({
      remove: ['CIFS/hv02'],
      userAccountControl: null,
    });
    expect(diffForRemove(stored, ['cifs/HV02'], true).userAccountControl).toEqual({ from: 0x1001000, to: 0x1000 });
  });

  it('a gap names the missing values and the wrong bits', () => {
    expect(gapOf(object({ userAccountControl: 0x1000 | UF_TRUSTED_FOR_DELEGATION }), ['cifs/HV02'])).toEqual({
      host: 'HV01',
      missingValues: ['cifs/HV02'],
      protocolTransition: false,
      unconstrained: true,
    });
    expect(
      gapOf(object({ allowedToDelegateTo: ['cifs/hv02'], userAccountControl: 0x1001000 }), ['cifs/HV02']),
    ).toBeUndefined();
  });

  it('refuses service classes with a slash or control characters', () => {
    expect(validateServices([' cifs ', 'Microsoft Virtual System Migration Service'])).toEqual([
      'cifs',
      'Microsoft Virtual System Migration Service',
    ]);
    expect(() => validateServices(['cifs/hv01'])).toThrow(expect.objectContaining({ code: 'DELEGATION_BAD_SERVICE' }));
    expect(() => validateServices([''])).toThrow(expect.objectContaining({ code: 'DELEGATION_BAD_SERVICE' }));
  });
});
