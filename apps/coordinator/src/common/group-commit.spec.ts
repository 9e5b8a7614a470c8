import { describe, expect, it } from 'vitest';
import { GroupCommit } from './group-commit.js';

interface Req {
  key: string;
  value: number;
  urgent?: boolean;
  fail?: boolean;
}

function committer(options: { lingerMs?: number } = {}) {
  const batches: number[][] = [];
  const commit = new GroupCommit<Req, number>({
    commit: async (batch) => {
      await new Promise((r) => setTimeout(r, 5));
      if (batch.some((r) => r.fail)) throw new Error('bad request in batch');
      batches.push(batch.map((r) => r.value));
      return batch.map((r) => r.value * 10);
    },
    key: (r) => r.key,
    maxBatch: 4,
    maxInFlight: 1,
    lingerMs: options.lingerMs,
    mayLinger: (r) => !r.urgent,
  });
  return { commit, batches };
}

describe('GroupCommit', () => {
  it('commits the requests of one turn together, at most maxBatch at a time, each answered in order', async () => {
    const { commit, batches } = committer();
    const results = await Promise.all([1, 2, 3, 4, 5, 6].map((value) => commit.submit({ key: 'a', value })));
    expect(results).toEqual([10, 20, 30, 40, 50, 60]);
    expect(batches).toEqual([
      [1, 2, 3, 4],
      [5, 6],
    ]);
  });

  it('retries a failed batch one request at a time, so only the bad request fails', async () => {
    const { commit, batches } = committer();
    const outcomes = await Promise.allSettled([
      commit.submit({ key: 'a', value: 1 }),
      commit.submit({ key: 'b', value: 2, fail: true }),
      commit.submit({ key: 'a', value: 3 }),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(batches).toEqual([[1], [3]]);
  });

  it('with retryAlone false, fails every request of a failed batch with its error and runs none again', async () => {
    const batches: number[][] = [];
    const commit = new GroupCommit<Req, number>({
      commit: async (batch) => {
        batches.push(batch.map((r) => r.value));
        await new Promise((r) => setTimeout(r, 5));
        if (batch.some((r) => r.fail)) throw new Error('connection lost');
        return batch.map((r) => r.value * 10);
      },
      maxBatch: 4,
      maxInFlight: 1,
      retryAlone: false,
    });
    const outcomes = await Promise.allSettled([
      commit.submit({ key: 'a', value: 1 }),
      commit.submit({ key: 'b', value: 2, fail: true }),
      commit.submit({ key: 'a', value: 3 }),
    ]);
    expect(outcomes.map((o) => (o.status === 'rejected' ? (o.reason as Error).message : o.value))).toEqual([
      'connection lost',
      'connection lost',
      'connection lost',
    ]);
    expect(batches).toEqual([[1, 2, 3]]);
    expect(await commit.submit({ key: 'a', value: 4 })).toBe(40);
  });

  it('lets routine requests wait for company, sends them along with an urgent one, and drains at shutdown', async () => {
    const { commit, batches } = committer({ lingerMs: 10_000 });
    const first = commit.submit({ key: 'a', value: 1 });
    await new Promise((r) => setTimeout(r, 30));
    expect(batches).toEqual([]); // still waiting for company
    const second = commit.submit({ key: 'b', value: 2 });
    const urgent = commit.submit({ key: 'c', value: 3, urgent: true });
    expect(await Promise.all([first, second, urgent])).toEqual([10, 20, 30]);
    expect(batches).toEqual([[1, 2, 3]]);

    const late = commit.submit({ key: 'a', value: 4 });
    await commit.drain();
    expect(await late).toBe(40);
    expect(batches).toEqual([[1, 2, 3], [4]]);
  });
});
