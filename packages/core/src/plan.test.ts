import { describe, expect, it } from 'vitest';
import { deterministicMac, normalizeMac, planNames, vmName } from './plan.js';

describe('plan', () => {
  it('expands name patterns', () => {
    expect(planNames('{group}-{nn}', 'web', 3)).toEqual(['web-01', 'web-02', 'web-03']);
    expect(vmName('lab{nnn}', 'x', 7)).toBe('lab007');
    expect(vmName('{group}{n}', 'db', 12)).toBe('db12');
  });

  it('refuses patterns without a number or with unknown placeholders', () => {
    expect(() => planNames('web', 'web', 2)).toThrow(/no number placeholder/);
    expect(() => planNames('{host}-{nn}', 'web', 2)).toThrow(/unknown placeholder/);
    expect(() => planNames('web {nn}', 'web', 2)).toThrow(/characters/);
  });

  it('gives the same MAC for the same lab and name, different otherwise, locally administered', () => {
    const a = deterministicMac('demo', 'web-01');
    expect(deterministicMac('demo', 'web-01')).toBe(a);
    expect(deterministicMac('demo', 'web-02')).not.toBe(a);
    expect(deterministicMac('other', 'web-01')).not.toBe(a);
    expect(a).toMatch(/^02:1a:b0(:[0-9a-f]{2}){3}$/);
    expect(Number.parseInt(a.slice(0, 2), 16) & 0b10).toBe(0b10);
    expect(deterministicMac('demo', 'web-01', '00:15:5D')).toMatch(/^00:15:5d:/);
  });

  it('normalises MAC spellings', () => {
    expect(normalizeMac('00-15-5D-0A-0B-0C')).toBe('00:15:5d:0a:0b:0c');
    expect(normalizeMac('00155D0A0B0C')).toBe('00:15:5d:0a:0b:0c');
    expect(() => normalizeMac('00:15')).toThrow(/not a MAC/);
  });
});
