import { describe, expect, it } from 'vitest';

import { ResultBudgetError, ResultByteBudget } from './result-budget.js';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('ResultByteBudget', () => {
  it('grants within both limits and frees on release (idempotent)', () => {
    const budget = new ResultByteBudget({ perPeerBytes: 100, totalBytes: 150 });
    const a = budget.tryReserve('A', 60);
    const b = budget.tryReserve('A', 40);
    expect(a?.bytes).toBe(60);
    expect(budget.peerBytes('A')).toBe(100);
    expect(budget.tryReserve('A', 1)).toBeUndefined(); // per-peer limit
    const c = budget.tryReserve('B', 50);
    expect(c).toBeDefined();
    expect(budget.tryReserve('C', 1)).toBeUndefined(); // global limit
    a?.release();
    a?.release();
    expect(budget.usedBytes).toBe(90);
    expect(budget.peerBytes('A')).toBe(40);
    b?.release();
    c?.release();
    expect(budget.usedBytes).toBe(0);
    expect(budget.peerBytes('A')).toBe(0);
  });

  it('refuses at once what can never fit, and bad limits', () => {
    const budget = new ResultByteBudget({ perPeerBytes: 100, totalBytes: 100 });
    expect(() => budget.tryReserve('A', 101)).toThrow(ResultBudgetError);
    expect(() => budget.reserve('A', 101)).toThrow(/per-peer budget/);
    expect(() => budget.tryReserve('A', -1)).toThrow(RangeError);
    expect(() => new ResultByteBudget({ perPeerBytes: 100, totalBytes: 50 })).toThrow(RangeError);
    expect(() => new ResultByteBudget({ perPeerBytes: 0, totalBytes: 50 })).toThrow(RangeError);
  });

  it('makes a reservation wait for room, in order', async () => {
    const budget = new ResultByteBudget({ perPeerBytes: 100, totalBytes: 100 });
    const first = await budget.reserve('A', 100);
    const order: string[] = [];
    const second = budget.reserve('B', 70).then((r) => (order.push('B70'), r));
    const third = budget.reserve('C', 30).then((r) => (order.push('C30'), r));
    const fourth = budget.reserve('D', 10).then((r) => (order.push('D10'), r));
    await flush();
    expect(order).toEqual([]);
    expect(budget.waiting).toBe(3);
    first.release();
    await flush();
    // B and C fit together; D waits behind them (the global limit holds it, FIFO)
    expect(order).toEqual(['B70', 'C30']);
    (await third).release();
    await flush();
    expect(order).toEqual(['B70', 'C30', 'D10']);
    (await second).release();
    (await fourth).release();
    expect(budget.usedBytes).toBe(0);
  });

  it('does not let a peer at its own limit hold back other peers', async () => {
    const budget = new ResultByteBudget({ perPeerBytes: 50, totalBytes: 200 });
    const a1 = await budget.reserve('A', 50);
    let a2Granted = false;
    const a2 = budget.reserve('A', 50).then((r) => ((a2Granted = true), r));
    const b = await budget.reserve('B', 50); // not behind A's waiter
    expect(b.bytes).toBe(50);
    expect(budget.tryReserve('A', 1)).toBeUndefined(); // but behind A's own waiter
    a1.release();
    await flush();
    expect(a2Granted).toBe(true);
    (await a2).release();
    b.release();
  });

  it('gives up a wait on timeout or abort, and lets those behind it by', async () => {
    const budget = new ResultByteBudget({ perPeerBytes: 100, totalBytes: 100 });
    const held = await budget.reserve('A', 90);
    const timedOut = budget.reserve('B', 50, { timeoutMs: 20 }).catch((e: unknown) => e);
    const controller = new AbortController();
    const aborted = budget.reserve('C', 50, { signal: controller.signal }).catch((e: unknown) => e);
    const small = budget.reserve('D', 10);
    controller.abort();
    expect(await aborted).toMatchObject({ code: 'ABORTED' });
    expect(await timedOut).toMatchObject({ code: 'TIMEOUT' });
    expect((await small).bytes).toBe(10);
    expect(budget.waiting).toBe(0);
    held.release();
  });

  it('shrinks a reservation and wakes waiters', async () => {
    const budget = new ResultByteBudget({ perPeerBytes: 100, totalBytes: 100 });
    const r = await budget.reserve('A', 100);
    const next = budget.reserve('B', 40);
    r.shrink(60);
    expect(r.bytes).toBe(60);
    expect((await next).bytes).toBe(40);
    r.shrink(80); // never grows
    expect(budget.usedBytes).toBe(100);
    r.release();
    expect(budget.usedBytes).toBe(40);
  });
});
