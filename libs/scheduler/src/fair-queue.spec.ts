import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FairQueue, type FairQueueItem } from './fair-queue.js';
import type { PriorityClass } from './types.js';

const item = (jobId: string, accountId: string, priority: PriorityClass = 'normal'): FairQueueItem => ({
  jobId,
  accountId,
  priority,
});

describe('FairQueue', () => {
  it('is FIFO within one flow', () => {
    const q = new FairQueue();
    for (let i = 0; i < 5; i++) q.enqueue(item(`j${i}`, 'a'));
    expect(Array.from({ length: 5 }, () => q.dequeue()?.jobId)).toEqual(['j0', 'j1', 'j2', 'j3', 'j4']);
    expect(q.dequeue()).toBeUndefined();
  });

  it("one account's flood does not starve another", () => {
    const q = new FairQueue();
    for (let i = 0; i < 10_000; i++) q.enqueue(item(`flood${i}`, 'big'));
    for (let i = 0; i < 5; i++) q.enqueue(item(`small${i}`, 'small'));
    const first = Array.from({ length: 10 }, () => q.dequeue()?.accountId);
    expect(first.filter((a) => a === 'small')).toHaveLength(5);
  });

  it('a late arrival is served promptly, without credit for its idle time', () => {
    const q = new FairQueue();
    for (let i = 0; i < 100; i++) q.enqueue(item(`a${i}`, 'a'));
    for (let i = 0; i < 50; i++) q.dequeue();
    for (let i = 0; i < 10; i++) q.enqueue(item(`b${i}`, 'b'));
    const next = Array.from({ length: 10 }, () => q.dequeue()?.accountId);
    const bs = next.filter((a) => a === 'b').length;
    expect(bs).toBeGreaterThanOrEqual(4);
    expect(bs).toBeLessThanOrEqual(6);
  });

  it('priority classes share by weight (high 4 : normal 2 : low 1)', () => {
    const q = new FairQueue();
    for (let i = 0; i < 700; i++) {
      q.enqueue(item(`h${i}`, 'x', 'high'));
      q.enqueue(item(`n${i}`, 'x', 'normal'));
      q.enqueue(item(`l${i}`, 'x', 'low'));
    }
    const served = { high: 0, normal: 0, low: 0 };
    for (let i = 0; i < 700; i++) served[(q.dequeue() as FairQueueItem).priority]++;
    expect(served).toEqual({ high: 400, normal: 200, low: 100 });
  });

  it('remove, peek, has, sizes; duplicate ids are refused', () => {
    const q = new FairQueue();
    q.enqueue(item('a', 'x'));
    q.enqueue(item('b', 'x'));
    expect(() => q.enqueue(item('a', 'y'))).toThrow();
    expect(q.remove('a')).toBe(true);
    expect(q.remove('a')).toBe(false);
    expect(q.has('b')).toBe(true);
    expect(q.peek()?.jobId).toBe('b');
    expect(q.size).toBe(1);
    expect(q.sizeOf('x', 'normal')).toBe(1);
    expect(q.dequeue()?.jobId).toBe('b');
    expect(q.size).toBe(0);
  });

  it('property: backlogged flows stay within one job per weight of each other', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            weight: fc.integer({ min: 1, max: 8 }),
            backlog: fc.integer({ min: 1, max: 200 }),
          }),
          { minLength: 2, maxLength: 6 },
        ),
        (flows) => {
          const q = new FairQueue({ accountWeight: (a) => flows[Number(a)].weight });
          // Skewed arrival: each flow's whole backlog at once, the biggest first.
          flows.forEach((f, a) => {
            for (let i = 0; i < f.backlog; i++) q.enqueue(item(`${a}-${i}`, String(a)));
          });
          const served = flows.map(() => 0);
          const total = flows.reduce((n, f) => n + f.backlog, 0);
          let worst = 0;
          for (let n = 0; n < total; n++) {
            const it = q.dequeue() as FairQueueItem;
            served[Number(it.accountId)]++;
            for (let i = 0; i < flows.length; i++) {
              for (let j = 0; j < flows.length; j++) {
                if (served[i] >= flows[i].backlog || served[j] >= flows[j].backlog) continue;
                const gap = Math.abs(served[i] / flows[i].weight - served[j] / flows[j].weight);
                // The WFQ bound: at most one job's cost per weight of each flow.
                worst = Math.max(worst, gap - (1 / flows[i].weight + 1 / flows[j].weight));
              }
            }
          }
          expect(worst).toBeLessThanOrEqual(1e-9);
          expect(q.size).toBe(0);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('property: interleaved arrivals, a flood cannot delay a light flow by more than its share', () => {
    fc.assert(
      fc.property(fc.integer({ min: 50, max: 500 }), fc.integer({ min: 1, max: 20 }), (flood, light) => {
        const q = new FairQueue();
        for (let i = 0; i < flood; i++) q.enqueue(item(`f${i}`, 'flood'));
        let position = 0;
        let lastLight = 0;
        for (let i = 0; i < light; i++) {
          q.enqueue(item(`l${i}`, 'light'));
          // The light flow submits one job per two dequeues.
          for (let d = 0; d < 2; d++) {
            const it = q.dequeue();
            position++;
            if (it?.accountId === 'light') lastLight = position;
          }
        }
        while (q.size > 0) {
          position++;
          if (q.dequeue()?.accountId === 'light') lastLight = position;
        }
        // Every light job leaves within two dequeues of its arrival.
        expect(lastLight).toBeLessThanOrEqual(2 * light + 1);
      }),
      { numRuns: 100 },
    );
  });
});
