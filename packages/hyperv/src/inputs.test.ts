import { describe, expect, it } from 'vitest';
import { generationOf, hypervOptions, secureBootOf } from './inputs.js';
import { vmPlan } from './testing/plans.js';

describe('hypervOptions: the VM settings only Hyper-V reads, typed at its boundary', () => {
  it('reads generation, Secure Boot and VLAN; defaults come from the golden disk and Linux', () => {
    expect(
      hypervOptions({ name: 'a', options: { generation: 1, secureBoot: 'off', vlan: 12, firmware: 'uefi' } }),
    ).toEqual({ generation: 1, secureBoot: 'off', vlan: 12 });
    expect(generationOf({ ...vmPlan('a', { golden: 'D:\\g.vhd' }), options: {} })).toBe(1);
    expect(generationOf({ ...vmPlan('a', { golden: 'D:\\g.vhdx' }), options: {} })).toBe(2);
    expect(secureBootOf({ ...vmPlan('a'), options: {} })).toBe('linux');
  });

  it('a wrong value is a usage error (exit 2) naming the VM', () => {
    expect(() => hypervOptions({ name: 'web-01', options: { generation: 3 } })).toThrow(
      expect.objectContaining({ code: 'HYPERV_OPTION', exitCode: 2 }),
    );
    expect(() => hypervOptions({ name: 'web-01', options: { secureBoot: 'on' } })).toThrow(
      /web-01: secureBoot must be off, linux or windows/,
    );
    expect(() => hypervOptions({ name: 'web-01', options: { vlan: 5000 } })).toThrow(/vlan must be a VLAN id 1-4094/);
  });
});
