import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TensorFileWriter } from './tensor-writer.js';

const MIB = 1024 * 1024;

/** Bytes that differ at every position and between seeds (a block written at the wrong place shows). */
function pattern(length: number, seed: number): Uint8Array {
  const data = new Uint8Array(length);
  for (let i = 0; i < length; i++) data[i] = (i * 31 + seed * 17 + (i >> 20)) % 251;
  return data;
}

/** Writes `data` in chunks of the given sizes (cycled) and finishes the file. */
async function writeFile(
  path: string,
  data: Uint8Array,
  chunkSizes: number[],
  directIo: boolean,
): Promise<{ sha256: string; directBytes: number }> {
  const file = new TensorFileWriter(path, { directIo });
  for (let offset = 0, i = 0; offset < data.length; i++) {
    const n = Math.min(chunkSizes[i % chunkSizes.length], data.length - offset);
    await file.append(data.subarray(offset, offset + n));
    offset += n;
  }
  return file.finish();
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

// The writer thread's direct path (O_DIRECT from aligned blocks, the rest through the page cache).
// The temporary directory is on a file system that takes O_DIRECT here (ext4 or tmpfs on Linux ≥ 6.6);
// the first test says so, and fails where that is not true rather than passing on the buffered path.
describe('TensorFileWriter', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tensor-writer-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes full 1 MiB blocks with O_DIRECT and the tail through the page cache, byte-exact', async () => {
    const data = pattern(5 * MIB + 12_345, 1);
    const path = join(dir, 'a');
    const done = await writeFile(path, data, [300_001, 65_536, 1_048_576], true);
    expect(done.sha256).toBe(sha256(data));
    expect(done.directBytes).toBe(5 * MIB);
    expect(Buffer.from(await readFile(path)).equals(Buffer.from(data))).toBe(true);
  });

  it('writes everything through the page cache when asked to', async () => {
    const data = pattern(3 * MIB + 7, 2);
    const path = join(dir, 'b');
    const done = await writeFile(path, data, [MIB], false);
    expect(done).toEqual({ sha256: sha256(data), directBytes: 0, nonFinite: undefined });
    expect(Buffer.from(await readFile(path)).equals(Buffer.from(data))).toBe(true);
  });

  it('writes files of any length and chunking whole (empty, under a block, on a boundary)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.constantFrom(0, 1, MIB - 1, MIB, MIB + 1, 2 * MIB, 3 * MIB - 3),
          fc.integer({ min: 0, max: 3 * MIB }),
        ),
        fc.array(fc.integer({ min: 1, max: 1_500_000 }), { minLength: 1, maxLength: 4 }),
        fc.integer({ min: 0, max: 1000 }),
        async (length, chunkSizes, seed) => {
          const data = pattern(length, seed);
          const path = join(dir, `p-${seed}-${length}`);
          const done = await writeFile(path, data, chunkSizes, true);
          expect(done.sha256).toBe(sha256(data));
          expect(done.directBytes).toBe(Math.floor(length / MIB) * MIB);
          expect(Buffer.from(await readFile(path)).equals(Buffer.from(data))).toBe(true);
          await rm(path);
        },
      ),
      { numRuns: 25 },
    );
  }, 60_000);

  it('writes concurrent files whole when they want more blocks than the thread has', async () => {
    // ten files at once: up to 4 blocks each (3 in flight, 1 filling) against 16 blocks, so some
    // ranges go through the page cache; none may land in another file or at the wrong place
    const datas = Array.from({ length: 10 }, (_, i) => pattern(6 * MIB + i * 1000, 10 + i));
    const dones = await Promise.all(
      datas.map((data, i) => writeFile(join(dir, `c${i}`), data, [MIB / 2 + i], true)),
    );
    for (const [i, data] of datas.entries()) {
      expect(dones[i].sha256).toBe(sha256(data));
      expect(Buffer.from(await readFile(join(dir, `c${i}`))).equals(Buffer.from(data))).toBe(true);
    }
    expect(dones.reduce((n, d) => n + d.directBytes, 0)).toBeGreaterThan(0);
  });

  it('frees the blocks of aborted files: a file after them is written direct again', async () => {
    // sixteen files abandoned after a direct write each (in flight at the abort, or done): blocks
    // kept by an aborted file would leave the next file none
    for (let i = 0; i < 16; i++) {
      const file = new TensorFileWriter(join(dir, `x${i}`), { directIo: true });
      await file.append(pattern(MIB + MIB / 2, i));
      await file.abort();
    }
    const data = pattern(4 * MIB, 99);
    const done = await writeFile(join(dir, 'after'), data, [MIB], true);
    expect(done.directBytes).toBe(4 * MIB);
    expect(Buffer.from(await readFile(join(dir, 'after'))).equals(Buffer.from(data))).toBe(true);
  });

  it('reports a file that cannot be written, and writes the next one', async () => {
    const file = new TensorFileWriter(join(dir, 'missing', 'x'), { directIo: true });
    await file.append(pattern(2 * MIB, 3)).catch(() => undefined);
    await expect(file.finish()).rejects.toThrow(/ENOENT/);
    const data = pattern(2 * MIB, 4);
    expect((await writeFile(join(dir, 'ok'), data, [MIB], true)).sha256).toBe(sha256(data));
  });
});
