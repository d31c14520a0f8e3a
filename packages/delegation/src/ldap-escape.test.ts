import { describe, expect, it } from 'vitest';
import { baseDnFromDomain, escapeDnValue, escapeFilterValue } from './ldap-escape.js';

describe('LDAP escaping', () => {
  it('escapes filter metacharacters and non-ASCII (RFC 4515)', () => {
    expect(escapeFilterValue('HV01$')).toBe('HV01$');
    expect(escapeFilterValue('*)(objectClass=*')).toBe('\\2a\\29\\28objectClass=\\2a');
    expect(escapeFilterValue('a\\b\0c')).toBe('a\\5cb\\00c');
    expect(escapeFilterValue('Ä')).toBe('\\c3\\84');
  });

  it('escapes DN specials, leading space/#, trailing space (RFC 4514)', () => {
    expect(escapeDnValue('lab')).toBe('lab');
    expect(escapeDnValue('a,b+c"d\\e<f>g;h=i')).toBe('a\\,b\\+c\\"d\\\\e\\<f\\>g\\;h\\=i');
    expect(escapeDnValue('#x ')).toBe('\\#x\\ ');
    expect(escapeDnValue(' x')).toBe('\\ x');
  });

  it('derives the base DN from the domain', () => {
    expect(baseDnFromDomain('lab.example.com')).toBe('DC=lab,DC=example,DC=com');
    expect(baseDnFromDomain('a,b.test')).toBe('DC=a\\,b,DC=test');
  });
});
