import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeNpy } from '@gpumesh/protocol';
import { TensorFiles, TensorUploadError, placeOnly } from './tensor-files.js';

/** `bytes` as a stream of chunks of `size` bytes (a header split across chunks included). */
async function* chunks(bytes: Uint8Array, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

describe('TensorFiles', () => {
  let dir: string;
  let files: TensorFiles;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tensor-files-'));
    files = new TensorFiles(join(dir, 'tensors'));
    await files.init();
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stores a tensor of many background syncs whole, and reads it back in shared memory', async () => {
    // 40 MiB: two background syncs of 16 MiB start while it is written, then the final fsync
    const data = new Uint8Array(40 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4093) data[i] = i % 251;
    const sha = createHash('sha256').update(data).digest('hex');
    const stored = await files.write(
      chunks(data, 256 * 1024),
      { kind: 'raw', dtype: 'int32', shape: [data.length / 4] },
      data.length,
      placeOnly,
    );
    expect(stored).toEqual({
      dtype: 'int32',
      shape: [data.length / 4],
      sha256: sha,
      bytes: data.length,
      finite: null,
    });
    const shared = await files.readShared(sha, data.length);
    expect(shared?.buffer).toBeInstanceOf(SharedArrayBuffer);
    expect(Buffer.compare(Buffer.from(shared as Uint8Array), Buffer.from(data))).toBe(0);
    expect(await files.readShared(sha, data.length - 4)).toBeUndefined(); // not as long as said
    expect(await files.readShared('0'.repeat(64), 4)).toBeUndefined(); // not stored
    expect(await readdir(files.dir)).toEqual([sha]);
  });

  it('writes concurrent uploads whole while their batch buffers are reused, one after an aborted one', async () => {
    // chunks that straddle the 1 MiB batches; the writer thread hands each batch's buffer back, and
    // the next batch (of any upload) is copied into it: a buffer reused too early corrupts a file
    const tensor = (seed: number, mib: number): Uint8Array => {
      const data = new Uint8Array(mib * 1024 * 1024 + 4 * seed);
      for (let i = 0; i < data.length; i += 1) data[i] = (i * seed + (i >> 12)) % 253;
      return data;
    };
    // refused after 3 MiB (bytes over the layout's length), so its half-filled batch is dropped
    const refused = files.write(
      chunks(tensor(2, 4), 65_521),
      { kind: 'raw', dtype: 'int32', shape: [768 * 1024] },
      1 << 30,
      placeOnly,
    );
    await expect(refused).rejects.toThrow('more data than');
    const inputs = [tensor(3, 5), tensor(5, 3), tensor(7, 6)];
    const sizes = [65_521, 1024 * 1024 + 3, 7_777];
    const stored = await Promise.all(
      inputs.map((data, i) =>
        files.write(
          chunks(data, sizes[i]),
          { kind: 'raw', dtype: 'int32', shape: [data.length / 4] },
          1 << 30,
          placeOnly,
        ),
      ),
    );
    for (const [i, data] of inputs.entries()) {
      expect(stored[i].sha256).toBe(createHash('sha256').update(data).digest('hex'));
      expect(Buffer.compare(await files.read(stored[i].sha256), Buffer.from(data))).toBe(0);
    }
    expect((await readdir(files.dir)).sort()).toEqual(stored.map((s) => s.sha256).sort());
  });

  it('stores the element bytes of a .npy under their sha256, whatever the chunking', async () => {
    const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const sha = createHash('sha256').update(data).digest('hex');
    for (const size of [1, 7, 64, 4096]) {
      const stored = await files.write(
        chunks(encodeNpy('float32', [3, 2], data), size),
        { kind: 'npy' },
        1024,
        placeOnly,
      );
      expect(stored).toEqual({ dtype: 'float32', shape: [3, 2], sha256: sha, bytes: 24, finite: true });
    }
    expect(new Uint8Array(await readFile(files.pathOf(sha)))).toEqual(data);
    expect(await readdir(files.dir)).toEqual([sha]); // one file, no temporaries
  });

  it('checks float32 uploads for NaN and Infinity as they are written, across batches and odd chunks', async () => {
    const n = 3 * 256 * 1024; // 3 MiB of float32: three writer batches
    const cases: [string, number | null, number][] = [
      ['finite', null, 0],
      ['NaN in the second batch', 300_001, NaN],
      ['Infinity last', n - 1, Infinity],
      ['-Infinity first', 0, -Infinity],
    ];
    for (const [what, at, value] of cases) {
      const values = Float32Array.from({ length: n }, (_, i) => Math.sin(i) * 1e30);
      if (at !== null) values[at] = value;
      const data = new Uint8Array(values.buffer);
      for (const framing of [
        { kind: 'npy' as const },
        { kind: 'raw' as const, dtype: 'float32' as const, shape: [n] },
      ]) {
        const body = framing.kind === 'npy' ? encodeNpy('float32', [n], data) : data;
        const stored = await files.write(chunks(body, 1_000_003), framing, n * 4, placeOnly);
        expect(stored.finite, `${what}, ${framing.kind}`).toBe(at === null);
        // the event loop's scan (rows stored before this check) agrees
        const scanned = await files.firstNonFiniteFloat32(stored.sha256);
        expect(scanned === null ? null : scanned.index, what).toBe(at);
      }
    }
  });

  it('takes raw bytes with a given layout and refuses a wrong length', async () => {
    const data = new Uint8Array(new Int32Array([7, 8, 9, 10]).buffer);
    const stored = await files.write(
      chunks(data, 5),
      { kind: 'raw', dtype: 'int32', shape: [4] },
      1024,
      placeOnly,
    );
    expect(stored.bytes).toBe(16);
    expect(stored.finite).toBeNull(); // only float32 is checked
    await expect(
      files.write(chunks(data, 5), { kind: 'raw', dtype: 'int32', shape: [5] }, 1024, placeOnly),
    ).rejects.toThrow('needs 20');
    await expect(
      files.write(chunks(data, 5), { kind: 'raw', dtype: 'int32', shape: [3] }, 1024, placeOnly),
    ).rejects.toThrow('more data than int32[3]');
  });

  it('refuses what is not a .npy, a bool byte over 1, and a tensor over the limit, leaving nothing behind', async () => {
    const notNpy = files.write(
      chunks(new TextEncoder().encode('{"a":1}'), 3),
      { kind: 'npy' },
      1024,
      placeOnly,
    );
    await expect(notNpy).rejects.toBeInstanceOf(TensorUploadError);
    const bool = files.write(
      chunks(encodeNpy('bool', [3], Uint8Array.of(0, 2, 1)), 8),
      { kind: 'npy' },
      1024,
      placeOnly,
    );
    await expect(bool).rejects.toThrow('0 or 1');
    const big = encodeNpy('float32', [64, 64], new Uint8Array(64 * 64 * 4));
    await expect(files.write(chunks(big, 1000), { kind: 'npy' }, 1024, placeOnly)).rejects.toMatchObject({
      code: 'TOO_LARGE',
    });
    expect(await readdir(files.dir)).toEqual([]);
  });

  it('removes the temporaries of an interrupted upload at start', async () => {
    await writeFile(join(files.dir, 'abc.tmp'), 'partial');
    expect(await new TensorFiles(files.dir).init()).toBe(1);
    expect(await readdir(files.dir)).toEqual([]);
  });
});
