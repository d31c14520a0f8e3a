import { describe, expect, it } from 'vitest';
import { parseSnapshotList } from './day2.js';

describe('virsh snapshot-list --parent, as the stack labctl shows', () => {
  it('reads names, times, states and parents, oldest first whatever order virsh lists them in', () => {
    const out = [
      ' snap-10   2026-11-30 10:12:00 +0000   running    snap-2',
      ' before    2026-11-30 09:00:00 +0100   shutoff    ',
      ' snap-2    2026-11-30 10:11:24 +0000   running    before',
      ' garbage line',
    ].join('\n');
    expect(parseSnapshotList(out)).toEqual([
      { name: 'before', created: '2026-11-30T08:00:00.000Z', vmState: 'shutoff' },
      { name: 'snap-2', created: '2026-11-30T10:11:24.000Z', vmState: 'running', parent: 'before' },
      { name: 'snap-10', created: '2026-11-30T10:12:00.000Z', vmState: 'running', parent: 'snap-2' },
    ]);
    expect(parseSnapshotList('')).toEqual([]);
  });
});
