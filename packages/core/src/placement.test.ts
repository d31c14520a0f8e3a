import { describe, expect, it } from 'vitest';
import { evacuationTargets } from './flows/migrate.js';
import { placeVms } from './placement.js';
import type { VmRecord } from './state.js';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const vm = (name: string, memoryMiB = 1024, host = 'local') => ({ name, host, memoryMiB });

describe('placement over several hosts (one rule for libvirt and Hyper-V)', () => {
  it('fills the host with the most memory left; between equals, the one with fewer VMs', () => {
    const result = placeVms(
      [vm('a'), vm('b'), vm('c'), vm('d')],
      [
        { name: 'h1', freeMemoryBytes: 20 * GiB, vmCount: 3 },
        { name: 'h2', freeMemoryBytes: 20 * GiB, vmCount: 1 },
      ],
      { reserveBytes: 0 },
    );
    // h2 first (fewer VMs), then alternating as memory left evens out.
    expect(Object.fromEntries(result.hostOf)).toEqual({ a: 'h2', b: 'h1', c: 'h2', d: 'h1' });
  });

  it('never places more than a host’s memoryLimit there, and says which host is over', () => {
    const spread = placeVms(
      [vm('a', 2048), vm('b', 2048), vm('c', 2048), vm('d', 2048)],
      [
        { name: 'big', freeMemoryBytes: 64 * GiB, limitBytes: 2 * GiB },
        { name: 'small', freeMemoryBytes: 8 * GiB },
      ],
      { reserveBytes: 0 },
    );
    // small has 8 GiB, big may take 2 GiB however much it has free: three go to small, one to big.
    expect(Object.fromEntries(spread.hostOf)).toEqual({ a: 'small', b: 'small', c: 'small', d: 'big' });
    expect(spread.overcommitted).toEqual([]);
    const over = placeVms([vm('a', 4096, 'big')], [{ name: 'big', freeMemoryBytes: 64 * GiB, limitBytes: 2 * GiB }], {
      reserveBytes: 0,
    });
    expect(over.overcommitted).toEqual([{ host: 'big', neededBytes: 4 * GiB, freeBytes: 2 * GiB }]);
  });

  it('evacuation sends each VM to the target with the most memory left, by its recorded memory', () => {
    const records = [
      { name: 'a', resources: { memoryMiB: 6144 } },
      { name: 'b', resources: { memoryMiB: 1024 } },
      { name: 'c' },
    ] as unknown as VmRecord[];
    const targets = evacuationTargets(records, [
      { name: 'h2', freeMemoryBytes: 8 * GiB + 512 * MiB },
      { name: 'h3', freeMemoryBytes: 4 * GiB + 512 * MiB },
    ]);
    expect(Object.fromEntries(targets)).toEqual({ a: 'h2', b: 'h3', c: 'h3' });
  });
});
