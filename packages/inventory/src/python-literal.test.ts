import { describe, expect, it } from 'vitest';
import { expandHostRange, parseHostPattern } from './parse.js';
import { iniValue, isBareIniString, pythonLiteral, shlexQuote, shlexSplit } from './python-literal.js';
import { TRICKY } from './testing/tricky.js';

/** The INI building blocks without Ansible (the *.ansible.test.ts files check them against the real thing). */
describe('INI values: Python literals and shlex', () => {
  it('every tricky value survives literal + shlex quoting + splitting + literal_eval', () => {
    for (const [key, value] of Object.entries(TRICKY)) {
      const word = shlexQuote(typeof value === 'string' && isBareIniString(value) ? value : pythonLiteral(value));
      const tokens = shlexSplit(`host ${key}=${word} # comment`);
      expect(tokens).toHaveLength(2);
      expect(iniValue((tokens[1] as string).slice(key.length + 1))).toEqual(value);
    }
  });

  it('reads values the way literal_eval does, and falls back to the text', () => {
    expect(iniValue('5')).toBe(5);
    expect(iniValue('-1.5e3')).toBe(-1500);
    expect(iniValue('0x1F')).toBe(31);
    expect(iniValue('1_000')).toBe(1000);
    expect(iniValue('True')).toBe(true);
    expect(iniValue('true')).toBe('true');
    expect(iniValue('None')).toBeNull();
    expect(iniValue("'it''s'")).toBe('its');
    expect(iniValue("['a', (1, 2), {'k': None}]")).toEqual(['a', [1, 2], { k: null }]);
    expect(iniValue('(7)')).toBe(7);
    expect(iniValue('0777')).toBe('0777');
    expect(iniValue('10-5')).toBe('10-5');
    expect(iniValue('1.2.3')).toBe('1.2.3');
    expect(iniValue('hello # c')).toBe('hello # c');
    expect(iniValue('5 # c')).toBe(5);
    expect(iniValue('"unterminated')).toBe('"unterminated');
  });

  it('writes bare only what reads back as the same string', () => {
    for (const bare of ['web', '10.0.0.5', '2001:db8::1', '/opt/app', 'a-b.c', '0777'])
      expect(isBareIniString(bare)).toBe(true);
    for (const quoted of ['True', 'None', '1e3', '12', 'a b', 'x#y', 'True,False', ''])
      expect(isBareIniString(quoted)).toBe(false);
  });

  it('shlex: quotes, escapes and comments as Python shlex.split(posix, comments=True)', () => {
    expect(shlexSplit(`a b='c d' e="f \\"g\\" \\n" h\\ i #j k`)).toEqual(['a', 'b=c d', 'e=f "g" \\n', 'h i']);
    expect(() => shlexSplit("a 'b")).toThrow(/No closing quotation/);
  });
});

describe('host patterns', () => {
  it('expands ranges like Ansible', () => {
    expect(expandHostRange('web[01:03]')).toEqual(['web01', 'web02', 'web03']);
    expect(expandHostRange('db-[a:c]-x')).toEqual(['db-a-x', 'db-b-x', 'db-c-x']);
    expect(expandHostRange('h[1:10:4]')).toEqual(['h1', 'h5', 'h9']);
    expect(expandHostRange('r[1:2]u[1:2]')).toEqual(['r1u1', 'r1u2', 'r2u1', 'r2u2']);
    expect(() => expandHostRange('w[01:100]')).toThrow(/equal-length/);
    expect(() => expandHostRange('w[1]')).toThrow(/begin:end/);
  });

  it('splits a port off, but not off a bare IPv6 address', () => {
    expect(parseHostPattern('web:2222')).toEqual({ hosts: ['web'], port: 2222 });
    expect(parseHostPattern('[2001:db8::2]:2222')).toEqual({ hosts: ['2001:db8::2'], port: 2222 });
    expect(parseHostPattern('2001:db8::1')).toEqual({ hosts: ['2001:db8::1'], port: undefined });
    expect(parseHostPattern('web[1:2]:22')).toEqual({ hosts: ['web1', 'web2'], port: 22 });
  });
});
