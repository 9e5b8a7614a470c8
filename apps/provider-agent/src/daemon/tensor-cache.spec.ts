import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, readdir, rm, stat, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { TensorCache, type WantedTensor } from './tensor-cache.js';

function tensor(bytes: number, seed = bytes): { want: WantedTensor; data: Uint8Array } {
  const data = new Uint8Array(bytes);
  for (let i = 0; i < bytes; i++) data[i] = (i * 31 + seed * 7) & 0xff;
  return { want: { sha256: createHash('sha256').update(data).digest('hex'), bytes }, data };
}

/**
 * The network side of the cache: hands out fresh copies of the tensors it knows (as fetchTensor
 * does), counting the fetches; `gate` holds them until released.
 */
class Origin {
  fetches = 0;
  signals: AbortSignal[] = [];
  private gate: Promise<void> = Promise.resolve();
  private release: () => void = () => undefined;
  failNext: Error | undefined;

  constructor(private readonly known: Map<string, Uint8Array>) {}

  static of(...tensors: { want: WantedTensor; data: Uint8Array }[]): Origin {
    return new Origin(new Map(tensors.map((t) => [t.want.sha256, t.data])));
  }

  hold(): void {
    this.gate = new Promise((resolve) => (this.release = resolve));
  }

  open(): void {
    this.release();
  }

  fetcher(want: WantedTensor): (signal: AbortSignal) => Promise<Uint8Array> {
    return async (signal) => {
      this.fetches += 1;
      this.signals.push(signal);
      const failure = this.failNext;
      this.failNext = undefined;
      await Promise.race([
        this.gate,
        new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
      ]);
      if (failure) throw failure;
      const data = this.known.get(want.sha256);
      if (!data) throw new Error('not found');
      return data.slice();
    };
  }
}

describe('TensorCache', () => {
  let dir = '';
  let opened: TensorCache[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tensor-cache-'));
  });
  afterEach(async () => {
    await Promise.all(opened.map((cache) => cache.settled()));
    opened = [];
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (budgetBytes: number): Promise<TensorCache> => {
    const cache = await TensorCache.open({ dir, budgetBytes });
    opened.push(cache);
    return cache;
  };
  /** The directory's files once `cache` committed what it keeps (writes finish after the jobs got their bytes). */
  const files = async (cache?: TensorCache): Promise<string[]> => {
    await cache?.settled();
    return (await readdir(dir)).sort();
  };

  it('fetches on a miss, keeps the bytes under their sha256, and serves the next job from disk', async () => {
    const a = tensor(1000);
    const origin = Origin.of(a);
    const cache = await open(10_000);
    expect(await cache.getOrFetch(a.want, origin.fetcher(a.want))).toEqual(a.data);
    expect(await files(cache)).toEqual([a.want.sha256]);
    expect(new Uint8Array(await readFile(join(dir, a.want.sha256)))).toEqual(a.data);
    const again = await cache.getOrFetch(a.want, origin.fetcher(a.want));
    expect(again).toEqual(a.data);
    expect(origin.fetches).toBe(1);
    expect(cache.stats()).toMatchObject({
      hits: 1,
      misses: 1,
      sharedFetches: 0,
      bytesSaved: 1000,
      entries: 1,
      bytes: 1000,
      budgetBytes: 10_000,
    });
  });

  it('hands the fetched bytes over before the write is synced, and a job right after waits for it', async () => {
    const a = tensor(256 * 1024, 9);
    const origin = Origin.of(a);
    const cache = await open(1 << 20);
    await cache.getOrFetch(a.want, origin.fetcher(a.want));
    const next = await cache.getOrFetch(a.want, origin.fetcher(a.want));
    expect(Buffer.from(next).equals(a.data)).toBe(true);
    expect(origin.fetches).toBe(1);
    expect(cache.stats()).toMatchObject({ hits: 1, misses: 1, writeErrors: 0 });
  });

  it('evicts the least recently used tensor to make room, file and all', async () => {
    const [a, b, c] = [tensor(400, 1), tensor(400, 2), tensor(400, 3)];
    const origin = Origin.of(a, b, c);
    const cache = await open(1000);
    await cache.getOrFetch(a.want, origin.fetcher(a.want));
    await cache.getOrFetch(b.want, origin.fetcher(b.want));
    await cache.getOrFetch(a.want, origin.fetcher(a.want)); // a is now the most recent
    await cache.getOrFetch(c.want, origin.fetcher(c.want));
    expect(await files(cache)).toEqual([a.want.sha256, c.want.sha256].sort());
    expect(cache.list().map((e) => e.sha256)).toEqual([a.want.sha256, c.want.sha256]);
    expect(cache.stats()).toMatchObject({ evictions: 1, entries: 2, bytes: 800, misses: 3, hits: 1 });
    await cache.getOrFetch(b.want, origin.fetcher(b.want));
    expect(origin.fetches).toBe(4); // b was evicted: fetched again
  });

  it('never holds more bytes on disk than its budget, whatever jobs ask for (property)', async () => {
    const pool = Array.from({ length: 6 }, (_, i) => tensor(50 + i * 97, i));
    const origin = Origin.of(...pool);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 1200 }),
        fc.array(fc.array(fc.integer({ min: 0, max: pool.length - 1 }), { minLength: 1, maxLength: 3 }), {
          maxLength: 12,
        }),
        async (budget, rounds) => {
          await rm(dir, { recursive: true, force: true });
          const cache = await open(budget);
          for (const round of rounds) {
            // the jobs of a round run concurrently
            const got = await Promise.all(
              round.map((i) => cache.getOrFetch(pool[i].want, origin.fetcher(pool[i].want))),
            );
            got.forEach((bytes, j) => expect(bytes).toEqual(pool[round[j]].data));
            const names = await files(cache);
            const onDisk = (await Promise.all(names.map((n) => stat(join(dir, n))))).reduce(
              (n, s) => n + s.size,
              0,
            );
            expect(onDisk).toBeLessThanOrEqual(budget);
            expect(names).toEqual(
              cache
                .list()
                .map((e) => e.sha256)
                .sort(),
            );
            expect(cache.stats().bytes).toBe(onDisk);
          }
        },
      ),
      { numRuns: 40 },
    );
  });

  it('drops an entry whose bytes do not hash to its name (or are cut short) and fetches it again', async () => {
    const a = tensor(4096, 1);
    const b = tensor(4096, 2);
    const origin = Origin.of(a, b);
    const cache = await open(100_000);
    await cache.getOrFetch(a.want, origin.fetcher(a.want));
    await cache.getOrFetch(b.want, origin.fetcher(b.want));
    await cache.settled();
    // one flipped bit in a, b cut short
    const path = join(dir, a.want.sha256);
    const bad = new Uint8Array(await readFile(path));
    bad[1234] ^= 0x10;
    await writeFile(path, bad);
    await truncate(join(dir, b.want.sha256), 4000);

    expect(await cache.getOrFetch(a.want, origin.fetcher(a.want))).toEqual(a.data);
    expect(await cache.getOrFetch(b.want, origin.fetcher(b.want))).toEqual(b.data);
    expect(origin.fetches).toBe(4);
    expect(cache.stats()).toMatchObject({ dropped: 2, hits: 0, misses: 4, entries: 2 });
    // the refetched bytes replaced the bad files
    await cache.settled();
    expect(new Uint8Array(await readFile(path))).toEqual(a.data);
    expect(await cache.getOrFetch(a.want, origin.fetcher(a.want))).toEqual(a.data);
    expect(cache.stats().hits).toBe(1);
  });

  it('survives a restart: entries and their recency order come back from disk, crash leftovers go', async () => {
    const [a, b, c] = [tensor(400, 1), tensor(400, 2), tensor(400, 3)];
    const origin = Origin.of(a, b, c);
    const first = await open(1000);
    await first.getOrFetch(a.want, origin.fetcher(a.want));
    await first.getOrFetch(b.want, origin.fetcher(b.want));
    await first.settled();
    // a written a minute before b, then used again: its hit makes it the newest (by mtime) again
    const minuteAgo = new Date(Date.now() - 60_000);
    await utimes(join(dir, a.want.sha256), minuteAgo, minuteAgo);
    await first.getOrFetch(a.want, origin.fetcher(a.want));
    await first.settled();
    // what a crash mid-write leaves: a temporary file, and a stray file the cache does not own
    await writeFile(join(dir, `.tmp-${c.want.sha256}-0000`), c.data.subarray(0, 100));
    await writeFile(join(dir, 'README'), 'not an entry');

    const second = await open(1000);
    expect(second.list().map((e) => e.sha256)).toEqual([b.want.sha256, a.want.sha256]);
    expect(await files(second)).toEqual(['README', a.want.sha256, b.want.sha256].sort());
    expect(await second.getOrFetch(a.want, origin.fetcher(a.want))).toEqual(a.data);
    expect(origin.fetches).toBe(2);
    await second.getOrFetch(c.want, origin.fetcher(c.want)); // evicts b, the least recently used
    expect(second.list().map((e) => e.sha256)).toEqual([a.want.sha256, c.want.sha256]);

    await second.settled();
    // reopened with a smaller budget: the oldest go; with 0: all go
    const third = await open(500);
    expect(third.list().map((e) => e.sha256)).toEqual([c.want.sha256]);
    const off = await open(0);
    expect(off.stats()).toMatchObject({ budgetBytes: 0, entries: 0 });
    expect(await files()).toEqual(['README']);
  });

  it('keeps no tensor larger than its budget (still returning it) and none at budget 0', async () => {
    const big = tensor(2000);
    const origin = Origin.of(big);
    const cache = await open(1000);
    expect(await cache.getOrFetch(big.want, origin.fetcher(big.want))).toEqual(big.data);
    expect(await cache.getOrFetch(big.want, origin.fetcher(big.want))).toEqual(big.data);
    expect(origin.fetches).toBe(2);
    expect(await files(cache)).toEqual([]);
    const off = await open(0);
    await off.getOrFetch(big.want, origin.fetcher(big.want));
    await off.getOrFetch(big.want, origin.fetcher(big.want));
    expect(origin.fetches).toBe(4);
    expect(off.stats()).toMatchObject({ hits: 0, misses: 2, entries: 0 });
  });

  it('lets concurrent jobs share one fetch, each with a buffer of its own', async () => {
    const a = tensor(64 * 1024, 5);
    const origin = Origin.of(a);
    const cache = await open(1 << 20);
    origin.hold();
    const jobs = Array.from({ length: 5 }, () => cache.getOrFetch(a.want, origin.fetcher(a.want)));
    await new Promise((r) => setTimeout(r, 20));
    origin.open();
    const got = await Promise.all(jobs);
    expect(origin.fetches).toBe(1);
    for (const bytes of got) expect(Buffer.from(bytes).equals(a.data)).toBe(true);
    expect(new Set(got.map((b) => b.buffer)).size).toBe(5);
    expect(cache.stats()).toMatchObject({ misses: 1, sharedFetches: 4, bytesSaved: 4 * 64 * 1024 });
  });

  it('keeps a shared fetch going while one job waits for it, and aborts it when the last gives up', async () => {
    const a = tensor(1000, 6);
    const origin = Origin.of(a);
    const cache = await open(1 << 20);
    origin.hold();
    const [first, second] = [new AbortController(), new AbortController()];
    const starter = cache.getOrFetch(a.want, origin.fetcher(a.want), first.signal);
    const joiner = cache.getOrFetch(a.want, origin.fetcher(a.want), second.signal);
    await new Promise((r) => setTimeout(r, 10));
    first.abort(new Error('job 1 cancelled'));
    await expect(starter).rejects.toThrow('job 1 cancelled');
    expect(origin.signals[0].aborted).toBe(false);
    origin.open();
    expect(await joiner).toEqual(a.data);
    expect(origin.fetches).toBe(1);

    const b = tensor(1000, 7);
    const originB = Origin.of(b);
    originB.hold();
    const third = new AbortController();
    const lone = cache.getOrFetch(b.want, originB.fetcher(b.want), third.signal);
    await new Promise((r) => setTimeout(r, 10));
    third.abort(new Error('job 3 cancelled'));
    await expect(lone).rejects.toThrow('job 3 cancelled');
    expect(originB.signals[0].aborted).toBe(true);
    await cache.settled();
    expect(await files()).toEqual([a.want.sha256]);
  });

  it("fetches with a job's own offer when the fetch it joined failed", async () => {
    const a = tensor(1000, 8);
    const origin = Origin.of(a);
    const cache = await open(1 << 20);
    origin.hold();
    origin.failNext = new Error('FORBIDDEN: the offer closed');
    const starter = cache.getOrFetch(a.want, origin.fetcher(a.want));
    const joiner = cache.getOrFetch(a.want, origin.fetcher(a.want));
    await new Promise((r) => setTimeout(r, 10));
    origin.open();
    await expect(starter).rejects.toThrow('FORBIDDEN');
    expect(await joiner).toEqual(a.data);
    expect(origin.fetches).toBe(2);
    expect(cache.stats()).toMatchObject({ misses: 2, sharedFetches: 0, entries: 1 });
  });

  it('refuses a key that is not a sha256 (it names a file)', async () => {
    const cache = await open(1000);
    const fetch = (): Promise<Uint8Array> => Promise.resolve(randomBytes(4));
    await expect(cache.getOrFetch({ sha256: '../../etc/passwd', bytes: 4 }, fetch)).rejects.toThrow(
      'not a sha256',
    );
  });
});
