import { mkdtemp, readFile, readdir, rm, stat, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { hashArtifact, type ModelArtifact } from '@gpumesh/p2p';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ArtifactCache, type ArtifactLease } from './artifact-cache.js';

interface TestArtifact {
  readonly hash: string;
  readonly artifact: ModelArtifact;
  /** What its two files take on disk. */
  readonly bytes: number;
}

/** A layers model of `weightBytes` bytes of weights; `seed` makes it (and its hash) distinct. */
function model(weightBytes: number, seed: number): TestArtifact {
  const weights = new Uint8Array(weightBytes);
  for (let i = 0; i < weightBytes; i++) weights[i] = (i * 13 + seed * 7) & 0xff;
  const modelJson = {
    modelTopology: { class_name: 'Sequential', config: { name: `model-${seed}` } },
    weightsManifest: [
      {
        paths: ['group1-shard1of1.bin'],
        weights: [{ name: 'w', shape: [weightBytes / 4], dtype: 'float32' }],
      },
    ],
  };
  const artifact: ModelArtifact = { format: 'layers', modelJson, weights };
  // the files as the unbounded cache wrote them too: `<hash>.json` and `<hash>.bin`
  const bytes = Buffer.byteLength(JSON.stringify({ format: 'layers', modelJson })) + weightBytes;
  return { hash: hashArtifact(modelJson, weights), artifact, bytes };
}

/** The coordinator's side: fresh copies of the artifacts it knows, counted. */
class Origin {
  fetches = 0;
  constructor(private readonly known: readonly TestArtifact[]) {}

  fetcher(hash: string): () => Promise<ModelArtifact> {
    return () => {
      this.fetches += 1;
      const found = this.known.find((a) => a.hash === hash);
      if (!found) return Promise.reject(new Error('not found'));
      return Promise.resolve({ ...found.artifact, weights: found.artifact.weights.slice() });
    };
  }
}

describe('ArtifactCache', () => {
  let dir = '';
  let opened: ArtifactCache[] = [];
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'artifact-cache-'));
  });
  afterEach(async () => {
    await Promise.all(opened.map((cache) => cache.settled()));
    opened = [];
    await rm(dir, { recursive: true, force: true });
  });

  const open = async (budgetBytes: number): Promise<ArtifactCache> => {
    const cache = await ArtifactCache.open({ dir, budgetBytes });
    opened.push(cache);
    return cache;
  };
  /** The directory's files once `cache` committed what it keeps. */
  const files = async (cache?: ArtifactCache): Promise<string[]> => {
    await cache?.settled();
    return (await readdir(dir)).sort();
  };
  const entryFiles = (...artifacts: TestArtifact[]): string[] =>
    artifacts.flatMap((a) => [`${a.hash}.bin`, `${a.hash}.json`]).sort();
  const bytesOnDisk = async (): Promise<number> =>
    (await Promise.all((await readdir(dir)).map((n) => stat(join(dir, n))))).reduce((n, s) => n + s.size, 0);
  /** Runs one job on `a`: acquire, check, release. */
  const use = async (cache: ArtifactCache, origin: Origin, a: TestArtifact): Promise<void> => {
    const lease = await cache.acquire(a.hash, origin.fetcher(a.hash));
    expect(lease.artifact).toEqual(a.artifact);
    lease.release();
  };

  it('fetches on a miss, keeps both files under the hash, and serves the next job from disk', async () => {
    const a = model(4096, 1);
    const origin = new Origin([a]);
    const cache = await open(1 << 20);
    await use(cache, origin, a);
    expect(await files(cache)).toEqual(entryFiles(a));
    expect(new Uint8Array(await readFile(join(dir, `${a.hash}.bin`)))).toEqual(a.artifact.weights);
    await use(cache, origin, a);
    expect(origin.fetches).toBe(1);
    expect(cache.stats()).toEqual({
      budgetBytes: 1 << 20,
      entries: 1,
      bytes: a.bytes,
      hits: 1,
      misses: 1,
      bytesSaved: a.bytes,
      evictions: 0,
      dropped: 0,
      writeErrors: 0,
    });
    expect(await bytesOnDisk()).toBe(a.bytes);
  });

  it('keeps several artifacts within its budget, counting both files, the least recently used out first', async () => {
    const [a, b, c, d] = [model(4000, 1), model(4000, 2), model(4000, 3), model(4000, 4)];
    const origin = new Origin([a, b, c, d]);
    // room for three: the json files tip a fourth over the budget even though the weights alone fit
    const cache = await open(a.bytes + b.bytes + c.bytes + 100);
    for (const x of [a, b, c]) await use(cache, origin, x);
    await use(cache, origin, a); // a is now the most recent: b is the least recently used
    await use(cache, origin, d);
    expect(await files(cache)).toEqual(entryFiles(a, c, d));
    expect(cache.list().map((e) => e.sha256)).toEqual([c.hash, a.hash, d.hash]);
    expect(await bytesOnDisk()).toBeLessThanOrEqual(cache.stats().budgetBytes);
    expect(cache.stats()).toMatchObject({ evictions: 1, entries: 3, hits: 1, misses: 4 });
    await use(cache, origin, b); // evicted: fetched again, and c (now the oldest) goes
    expect(origin.fetches).toBe(5);
    expect(await files(cache)).toEqual(entryFiles(a, d, b));
  });

  it('never evicts an artifact a running job holds; one that fits only by evicting it is used but not kept', async () => {
    const [a, b, c, d] = [model(4000, 1), model(4000, 2), model(4000, 3), model(8000, 4)];
    const origin = new Origin([a, b, c, d]);
    const cache = await open(a.bytes + b.bytes + 100);
    const running = await cache.acquire(a.hash, origin.fetcher(a.hash));
    await use(cache, origin, b);
    await use(cache, origin, c); // a is the least recently used, but in use: b goes
    expect(await files(cache)).toEqual(entryFiles(a, c));
    // d fits the budget only without a
    const big = await cache.acquire(d.hash, origin.fetcher(d.hash));
    expect(big.artifact).toEqual(d.artifact);
    big.release();
    expect(await files(cache)).toEqual(entryFiles(a, c));
    expect(running.artifact).toEqual(a.artifact);
    running.release();
    running.release(); // a second release is a no-op, not someone else's pin
    await use(cache, origin, d); // now a and c make room
    expect(await files(cache)).toEqual(entryFiles(d));
    expect(cache.stats()).toMatchObject({ evictions: 3, entries: 1 });
  });

  it('holds a pin per job: the entry stays until the last job on it ended', async () => {
    const [a, b, c] = [model(4000, 1), model(4000, 2), model(4000, 3)];
    const origin = new Origin([a, b, c]);
    const cache = await open(a.bytes + b.bytes + 100);
    const first = await cache.acquire(a.hash, origin.fetcher(a.hash));
    const second = await cache.acquire(a.hash, origin.fetcher(a.hash));
    first.release();
    await use(cache, origin, b);
    await use(cache, origin, c);
    expect(await files(cache)).toEqual(entryFiles(a, c));
    second.release();
    await use(cache, origin, b);
    expect(await files(cache)).toEqual(entryFiles(c, b));
  });

  it('never holds more on disk than its budget, whatever jobs run at the same time (property)', async () => {
    const pool = Array.from({ length: 5 }, (_, i) => model(400 + i * 400, i));
    const origin = new Origin(pool);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 6000 }),
        fc.array(fc.array(fc.integer({ min: 0, max: pool.length - 1 }), { minLength: 1, maxLength: 3 }), {
          maxLength: 10,
        }),
        async (budget, rounds) => {
          await rm(dir, { recursive: true, force: true });
          const cache = await open(budget);
          let held: ArtifactLease[] = [];
          for (const round of rounds) {
            // the jobs of a round run together, and the previous round's are still running
            const leases = await Promise.all(
              round.map((i) => cache.acquire(pool[i].hash, origin.fetcher(pool[i].hash))),
            );
            leases.forEach((lease, j) => expect(lease.artifact).toEqual(pool[round[j]].artifact));
            for (const lease of held) lease.release();
            held = leases;
            await cache.settled();
            expect(await bytesOnDisk()).toBeLessThanOrEqual(budget);
            expect(await files()).toEqual(
              entryFiles(...cache.list().map((e) => pool.find((p) => p.hash === e.sha256) as TestArtifact)),
            );
            expect(cache.stats().bytes).toBe(await bytesOnDisk());
          }
          for (const lease of held) lease.release();
        },
      ),
      { numRuns: 30 },
    );
  });

  it('indexes the entries on disk at start with their recency, and shrinks to a lower budget', async () => {
    const [a, b, c] = [model(4000, 1), model(4000, 2), model(4000, 3)];
    const origin = new Origin([a, b, c]);
    // what the unbounded cache left: entries in the same two files, and its crash leftovers
    for (const [x, minutesAgo] of [
      [a, 3],
      [b, 1],
      [c, 2],
    ] as const) {
      await writeFile(join(dir, `${x.hash}.bin`), x.artifact.weights);
      await writeFile(
        join(dir, `${x.hash}.json`),
        JSON.stringify({ format: 'layers', modelJson: x.artifact.modelJson }),
      );
      const at = new Date(Date.now() - minutesAgo * 60_000);
      for (const ext of ['bin', 'json']) await utimes(join(dir, `${x.hash}.${ext}`), at, at);
    }
    await writeFile(join(dir, `.${c.hash}.4242.bin`), c.artifact.weights.subarray(0, 100));
    await writeFile(join(dir, `.tmp-${c.hash}.json-00ff00ff`), '{"format":');
    await writeFile(join(dir, 'README'), 'not an entry');

    const upgraded = await open(1 << 20);
    expect(upgraded.list().map((e) => e.sha256)).toEqual([a.hash, c.hash, b.hash]);
    expect(upgraded.stats()).toMatchObject({ entries: 3, bytes: a.bytes + b.bytes + c.bytes });
    expect(await files()).toEqual(['README', ...entryFiles(a, b, c)].sort());
    await use(upgraded, origin, a); // served from the files found: a is the most recent now
    expect(origin.fetches).toBe(0);
    await upgraded.settled();

    // restarted with room for two: the least recently used (c) goes at once
    const smaller = await open(a.bytes + b.bytes + 100);
    expect(smaller.list().map((e) => e.sha256)).toEqual([b.hash, a.hash]);
    expect(smaller.stats()).toMatchObject({ entries: 2, evictions: 1 });
    expect(await files()).toEqual(['README', ...entryFiles(a, b)].sort());
    await use(smaller, origin, b);
    expect(origin.fetches).toBe(0);
  });

  it('keeps nothing at budget 0, and removes what an earlier run kept', async () => {
    const a = model(4000, 1);
    const origin = new Origin([a]);
    const first = await open(1 << 20);
    await use(first, origin, a);
    await first.settled();
    const off = await open(0);
    expect(await files()).toEqual([]);
    await use(off, origin, a);
    await use(off, origin, a);
    expect(origin.fetches).toBe(3);
    expect(await files(off)).toEqual([]);
    expect(off.stats()).toMatchObject({ budgetBytes: 0, entries: 0, bytes: 0, hits: 0, misses: 2 });
  });

  it('removes corrupt entries and fetches them again: a flipped byte, a missing file, a bad format', async () => {
    const [a, b, c, d] = [model(4000, 1), model(4000, 2), model(4000, 3), model(4000, 4)];
    const origin = new Origin([a, b, c, d]);
    const cache = await open(1 << 20);
    for (const x of [a, b, c, d]) await use(cache, origin, x);
    await cache.settled();
    const flipped = new Uint8Array(await readFile(join(dir, `${a.hash}.bin`)));
    flipped[123] ^= 0x01;
    await writeFile(join(dir, `${a.hash}.bin`), flipped);
    await unlink(join(dir, `${b.hash}.bin`));
    // the format is not part of the hash: a json file that lost it is no entry
    await writeFile(
      join(dir, `${c.hash}.json`),
      JSON.stringify({ format: 'graph-ish', modelJson: c.artifact.modelJson }),
    );

    for (const x of [a, b, c]) await use(cache, origin, x);
    expect(origin.fetches).toBe(7);
    expect(cache.stats()).toMatchObject({ dropped: 3, hits: 0, entries: 4 });
    // the fetched artifacts replaced the bad files
    expect(await files(cache)).toEqual(entryFiles(a, b, c, d));
    expect(new Uint8Array(await readFile(join(dir, `${a.hash}.bin`)))).toEqual(a.artifact.weights);
    await use(cache, origin, a);
    expect(cache.stats().hits).toBe(1);

    // half an entry found at start (a crash between its two renames) is removed, not indexed
    await unlink(join(dir, `${d.hash}.json`));
    const reopened = await open(1 << 20);
    expect(
      reopened
        .list()
        .map((e) => e.sha256)
        .sort(),
    ).toEqual([a.hash, b.hash, c.hash].sort());
    expect(reopened.stats().dropped).toBe(1);
    expect(await files()).toEqual(entryFiles(a, b, c));
    await use(reopened, origin, d);
    expect(origin.fetches).toBe(8);
  });

  it('refuses a name that is not a hash, and an artifact the fetch got wrong, leaving no pin', async () => {
    const [a, b] = [model(4000, 1), model(4000, 2)];
    const origin = new Origin([a, b]);
    const cache = await open(a.bytes + 100);
    await expect(cache.acquire('../keystore', () => Promise.resolve(a.artifact))).rejects.toThrow(
      'not an artifact hash',
    );
    await expect(cache.acquire(a.hash, () => Promise.resolve(b.artifact))).rejects.toThrow('hash mismatch');
    expect(await files(cache)).toEqual([]);
    // the failed job's pin went with it: a is evicted for b like any entry no job uses
    await use(cache, origin, a);
    await use(cache, origin, b);
    expect(await files(cache)).toEqual(entryFiles(b));
  });
});
