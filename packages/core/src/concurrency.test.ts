import { describe, expect, it } from 'vitest';
import { mapLimit, Semaphore, sleep } from './concurrency.js';

describe('mapLimit', () => {
  it('never runs more than the limit at once and keeps results in order', async () => {
    let running = 0;
    let peak = 0;
    const results = await mapLimit([5, 1, 4, 2, 3, 1, 1], 3, async (ms) => {
      running++;
      peak = Math.max(peak, running);
      await sleep(ms * 5);
      running--;
      return ms * 10;
    });
    expect(peak).toBe(3);
    expect(results.map((r) => (r.ok ? r.value : null))).toEqual([50, 10, 40, 20, 30, 10, 10]);
  });

  it('a failure on one item does not lose the others', async () => {
    const results = await mapLimit([1, 2, 3], 2, async (n) => {
      if (n === 2) throw new Error('vm 2 failed');
      return n;
    });
    expect(results[0]).toEqual({ ok: true, value: 1 });
    expect(results[1]?.ok).toBe(false);
    expect(results[2]).toEqual({ ok: true, value: 3 });
  });

  it('stops starting new work once aborted', async () => {
    const controller = new AbortController();
    const started: number[] = [];
    const results = await mapLimit(
      [1, 2, 3, 4],
      1,
      async (n) => {
        started.push(n);
        if (n === 2) controller.abort(new Error('interrupted'));
        return n;
      },
      { signal: controller.signal },
    );
    expect(started).toEqual([1, 2]);
    expect(results.filter((r) => !r.ok)).toHaveLength(2);
  });
});

describe('Semaphore', () => {
  it('limits concurrent holders across calls', async () => {
    const semaphore = new Semaphore(2);
    let running = 0;
    let peak = 0;
    await Promise.all(
      Array.from({ length: 6 }, () =>
        semaphore.run(async () => {
          running++;
          peak = Math.max(peak, running);
          await sleep(5);
          running--;
        }),
      ),
    );
    expect(peak).toBe(2);
  });
});
