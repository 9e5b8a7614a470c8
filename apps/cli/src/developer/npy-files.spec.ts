import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { encodeNpy } from '@gpumesh/protocol';
import { GpumeshApiError, GpumeshClient } from '@gpumesh/sdk';
import { CommandError, UsageError } from './command.js';
import { openNpyFile, saveNpy, uploadNpyFile } from './npy-files.js';

/** A stream of `bytes` cut into chunks of the given sizes (the rest in one last chunk). */
function streamOf(bytes: Uint8Array, cuts: number[] = []): ReadableStream<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let at = 0;
  for (const n of cuts) {
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  if (at < bytes.length) chunks.push(bytes.subarray(at));
  return new ReadableStream({
    pull(controller) {
      const next = chunks.shift();
      if (next) controller.enqueue(next);
      else controller.close();
    },
  });
}

const float32Npy = (rows: number, cols: number): { npy: Uint8Array; data: Uint8Array } => {
  const values = Float32Array.from({ length: rows * cols }, (_, i) => Math.sin(i));
  const data = new Uint8Array(values.buffer);
  return { npy: encodeNpy('float32', [rows, cols], data), data };
};
const refOf = (data: Uint8Array): string => `sha256:${createHash('sha256').update(data).digest('hex')}`;

describe('.npy files of the developer CLI', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-npy-files-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('opens a .npy to upload only when its header and length agree, naming the file otherwise', async () => {
    const { npy } = float32Npy(30, 7);
    const good = join(dir, 'good.npy');
    await writeFile(good, npy);
    const opened = await openNpyFile(good);
    expect(opened).toEqual({ path: good, dtype: 'float32', shape: [30, 7], bytes: npy.length });

    const short = join(dir, 'short.npy');
    await writeFile(short, npy.subarray(0, npy.length - 4));
    await expect(openNpyFile(short)).rejects.toThrow(
      new UsageError(
        `${short}: its header announces float32[30,7] (${npy.length} bytes with the header) but the file has ${npy.length - 4}`,
      ),
    );
    const text = join(dir, 'text.npy');
    await writeFile(text, 'a,b\n1,2\n');
    await expect(openNpyFile(text)).rejects.toThrow(/text\.npy: not a \.npy file/);
    const halfHeader = join(dir, 'half.npy');
    await writeFile(halfHeader, npy.subarray(0, 20));
    await expect(openNpyFile(halfHeader)).rejects.toThrow(
      /half\.npy: \.npy file is truncated inside its header/,
    );
    await expect(openNpyFile(join(dir, 'missing.npy'))).rejects.toThrow(
      /cannot read .*missing\.npy \(ENOENT/,
    );
  });

  it('writes a download as it arrives, its header split across chunks, and checks it against its ref', async () => {
    const { npy, data } = float32Npy(64, 33);
    const path = join(dir, 'out.npy');
    const saved = await saveNpy({ body: streamOf(npy, [3, 5, 61, 1000]), bytes: npy.length }, path, {
      ref: refOf(data),
    });
    expect(saved).toMatchObject({ dtype: 'float32', shape: [64, 33], bytes: npy.length });
    expect(`sha256:${saved.sha256}`).toBe(refOf(data));
    expect(Buffer.from(await readFile(path)).equals(Buffer.from(npy))).toBe(true);
    expect(await readdir(dir)).toEqual(['out.npy']);
  });

  it('writes nothing, and keeps what was there, when the bytes do not match the ref', async () => {
    const { npy, data } = float32Npy(16, 16);
    const path = join(dir, 'out.npy');
    await writeFile(path, 'an older result');
    const tampered = Uint8Array.from(npy);
    tampered[tampered.length - 1] ^= 1;
    const err = await saveNpy({ body: streamOf(tampered, [100]), bytes: npy.length }, path, {
      ref: refOf(data),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CommandError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `the bytes received hash to sha256:[0-9a-f]{64}, not ${refOf(data)}: .*out\\.npy not written`,
      ),
    );
    expect(await readFile(path, 'utf8')).toBe('an older result');
    expect(await readdir(dir)).toEqual(['out.npy']);
  });

  it('fails a download cut short or that is not a .npy, leaving no file', async () => {
    const { npy } = float32Npy(16, 16);
    const path = join(dir, 'out.npy');
    await expect(
      saveNpy({ body: streamOf(npy.subarray(0, npy.length - 8)), bytes: npy.length }, path),
    ).rejects.toThrow(/the download has \d+ bytes; its header announces \d+/);
    await expect(
      saveNpy({ body: streamOf(new TextEncoder().encode('<html>oops</html>')), bytes: 17 }, path),
    ).rejects.toThrow(/the download is not a \.npy file/);
    await expect(saveNpy({ body: streamOf(npy.subarray(0, 9)), bytes: 9 }, path)).rejects.toThrow(
      /the download ended inside the \.npy header/,
    );
    expect(await readdir(dir)).toEqual([]);
  });

  it('leaves no temporary file behind a download that fails at its first bytes, however often', async () => {
    // The failure comes before the file could be opened by a stream left to open it itself (a CI run
    // found the file created after the clean-up, and the next download refused with EEXIST).
    const path = join(dir, 'out.npy');
    for (let i = 0; i < 50; i++) {
      await expect(
        saveNpy({ body: streamOf(new TextEncoder().encode('<html>oops</html>')), bytes: 17 }, path),
      ).rejects.toThrow(/the download is not a \.npy file/);
      expect(await readdir(dir)).toEqual([]);
    }
  });

  it('reports the progress of a large download about every tenth', async () => {
    const rows = 17 * 1024; // 17 × 4 MiB of float32 rows of 1024: 68 MiB
    const data = new Uint8Array(rows * 1024 * 4);
    const npy = encodeNpy('float32', [rows, 1024], data);
    const lines: string[] = [];
    const path = join(dir, 'big.npy');
    await saveNpy(
      {
        body: streamOf(
          npy,
          Array.from({ length: 68 }, () => 1024 * 1024),
        ),
        bytes: npy.length,
      },
      path,
      { ref: refOf(data), progress: (line) => lines.push(line) },
    );
    expect(lines.length).toBeGreaterThanOrEqual(9);
    expect(lines.length).toBeLessThanOrEqual(10);
    expect(lines.at(-1)).toBe(`${path}: 68 of 68 MiB`);
    const small: string[] = [];
    await saveNpy({ body: streamOf(float32Npy(4, 4).npy), bytes: null }, join(dir, 'small.npy'), {
      progress: (line) => small.push(line),
    });
    expect(small).toEqual([]);
  });

  it('uploads a file streamed from disk, tries again after a 429, and reports the API error otherwise', async () => {
    const { npy } = float32Npy(300, 300);
    const path = join(dir, 'a.npy');
    await writeFile(path, npy);
    const seen: { auth?: string; type?: string; length?: string; body: Buffer }[] = [];
    let answers: ((res: ServerResponse) => void)[] = [];
    const server = createServer((req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        seen.push({
          auth: req.headers.authorization,
          type: req.headers['content-type'],
          length: req.headers['content-length'],
          body: Buffer.concat(chunks),
        });
        answers.shift()?.(res);
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const { port } = server.address() as AddressInfo;
      const client = new GpumeshClient({ baseUrl: `http://127.0.0.1:${port}/`, apiKey: 'gmk_test' });
      const file = await openNpyFile(path);
      // answers with their length, as the coordinator gives them (a chunked one would be left to
      // fetch, and the upload sent again)
      const json = (res: ServerResponse, status: number, body: unknown, headers = {}): void => {
        const text = JSON.stringify(body);
        res
          .writeHead(status, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(text),
            ...headers,
          })
          .end(text);
      };
      answers = [
        (res) => json(res, 429, {}, { 'retry-after': '0' }),
        (res) => json(res, 201, { ref: 'sha256:ab' }),
      ];
      expect(await uploadNpyFile(client, file)).toEqual({ ref: 'sha256:ab' });
      expect(seen).toHaveLength(2);
      for (const s of seen) {
        expect(s).toMatchObject({
          auth: 'Bearer gmk_test',
          type: 'application/x-npy',
          length: String(npy.length),
        });
        expect(s.body.equals(Buffer.from(npy))).toBe(true);
      }
      answers = [
        (res) =>
          json(res, 413, { statusCode: 413, error: { code: 'PAYLOAD_TOO_LARGE', message: 'over 1 MiB' } }),
      ];
      const err = await uploadNpyFile(client, file).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(GpumeshApiError);
      expect((err as GpumeshApiError).code).toBe('PAYLOAD_TOO_LARGE');
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});
