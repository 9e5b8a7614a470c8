// The client's retry of 429/503 answers, against a local HTTP server standing in for a busy
// coordinator (the coordinator itself is not the subject: test/clients/sdk.test.ts runs against one).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { GpumeshApiError, GpumeshClient } from './client.js';

let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
  server = undefined;
});

/** A server answering each request with the next of `answers` (status, headers); then 200 {}. */
async function serve(answers: { status: number; headers?: Record<string, string> }[]): Promise<{
  url: string;
  times: number[];
}> {
  const times: number[] = [];
  server = createServer((_req, res) => {
    times.push(Date.now());
    const next = answers.shift() ?? { status: 200 };
    res.writeHead(next.status, { 'content-type': 'application/json', ...next.headers });
    res.end(
      next.status === 200
        ? '{"id":"acct"}'
        : JSON.stringify({ statusCode: next.status, error: { code: 'RATE_LIMITED', message: 'slow down' } }),
    );
  });
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return { url: `http://127.0.0.1:${address.port}`, times };
}

describe('GpumeshClient retries', () => {
  it('retries a 429 after Retry-After seconds and a 503 with backoff', async () => {
    const { url, times } = await serve([{ status: 429, headers: { 'retry-after': '1' } }, { status: 503 }]);
    const client = new GpumeshClient({ baseUrl: url, apiKey: 'k' });
    await expect(client.account()).resolves.toEqual({ id: 'acct' });
    expect(times).toHaveLength(3);
    expect(times[1] - times[0]).toBeGreaterThanOrEqual(950);
    expect(times[2] - times[1]).toBeGreaterThanOrEqual(200);
  });

  it('gives up after maxRetries with the API error', async () => {
    const { url, times } = await serve([{ status: 429 }, { status: 429 }, { status: 429 }]);
    const client = new GpumeshClient({ baseUrl: url, apiKey: 'k', maxRetries: 1 });
    const err = await client.account().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpumeshApiError);
    expect((err as GpumeshApiError).code).toBe('RATE_LIMITED');
    expect(times).toHaveLength(2);
  });
});

/** A server whose handler is `handle`; resolves its URL. */
async function serveWith(handle: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  server = createServer(handle);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return `http://127.0.0.1:${address.port}`;
}

const sse = (id: number, toState: string | null): string =>
  `id: ${id}\nevent: job-event\ndata: ${JSON.stringify({ id: String(id), type: 'state', toState, createdAt: '' })}\n\n`;

describe('GpumeshClient.events and wait', () => {
  it('reconnects after a stream that ends early, with Last-Event-ID, and drops a repeated event', async () => {
    const asked: (string | undefined)[] = [];
    const url = await serveWith((req, res) => {
      asked.push(req.headers['last-event-id'] as string | undefined);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      // The first stream stops after two events; the second repeats the second one (a server may).
      if (asked.length === 1) res.end(`retry: 10\n\n${sse(1, 'QUEUED')}${sse(2, 'RUNNING')}`);
      else res.end(`${sse(2, 'RUNNING')}${sse(3, 'COMPLETED')}`);
    });
    const client = new GpumeshClient({ baseUrl: url, apiKey: 'k' });
    const delays: number[] = [];
    const ids: string[] = [];
    for await (const e of client.events('j', { onReconnect: (_n, ms) => delays.push(ms) })) ids.push(e.id);
    expect(ids).toEqual(['1', '2', '3']);
    expect(asked).toEqual([undefined, '2']);
    expect(delays).toEqual([10]); // the server's retry: hint
  });

  it('gives up after maxReconnects streams without a new event', async () => {
    let streams = 0;
    const url = await serveWith((_req, res) => {
      streams++;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.end('retry: 1\n\n');
    });
    const client = new GpumeshClient({ baseUrl: url, apiKey: 'k' });
    const drain = async (): Promise<void> => {
      for await (const e of client.events('j', { maxReconnects: 2 })) void e;
    };
    await expect(drain()).rejects.toThrow(/dropped 3 times without progress/);
    expect(streams).toBe(3);
  });

  it('times a wait out while the job runs', async () => {
    const url = await serveWith((req, res) => {
      if (req.url?.endsWith('/events')) {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(sse(1, 'RUNNING')); // and nothing more
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ id: 'j', state: 'RUNNING' }));
    });
    const client = new GpumeshClient({ baseUrl: url, apiKey: 'k' });
    const started = Date.now();
    await expect(client.wait('j', { timeoutMs: 300 })).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(Date.now() - started).toBeLessThan(5_000);
    server?.closeAllConnections();
  });
});

describe('GpumeshClient .npy downloads', () => {
  const npy = new Uint8Array(Buffer.concat([Buffer.from('\x93NUMPY'), Buffer.alloc(3 * 1024 * 1024, 5)]));
  /** Answers GET /v1/tensors/:ref with `npy` after the statuses in `first`; records each request's path. */
  async function tensorServer(first: number[], options: { chunked?: boolean } = {}) {
    const seen: string[] = [];
    const url = await serveWith((req, res) => {
      seen.push(`${req.headers.authorization} ${req.url}`);
      const status = first.shift();
      if (status !== undefined) {
        const error = JSON.stringify({ statusCode: status, error: { code: `E${status}`, message: 'no' } });
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': error.length,
          'retry-after': '0',
        });
        res.end(error);
        return;
      }
      res.writeHead(200, {
        'content-type': 'application/x-npy',
        ...(options.chunked ? {} : { 'content-length': npy.byteLength }),
      });
      res.end(npy);
    });
    return { url, seen };
  }

  it('reads a plain-http download from the socket, whole or as a stream', async () => {
    const { url, seen } = await tensorServer([]);
    let fetches = 0;
    const client = new GpumeshClient({ baseUrl: url, apiKey: 'k' });
    expect(Buffer.from(await client.tensorNpy('sha256:ab')).equals(npy)).toBe(true);
    const stream = await client.openTensorNpy('sha256:ab');
    expect(stream.bytes).toBe(npy.byteLength);
    const chunks: Uint8Array[] = [];
    for await (const c of stream.body as AsyncIterable<Uint8Array>) chunks.push(c);
    expect(Buffer.concat(chunks).equals(npy)).toBe(true);
    expect(seen).toEqual(['Bearer k /v1/tensors/sha256%3Aab', 'Bearer k /v1/tensors/sha256%3Aab']);
    // a fetch of the caller's is used for every request
    const withFetch = new GpumeshClient({
      baseUrl: url,
      apiKey: 'k',
      fetch: (input, init) => (fetches++, fetch(input, init)),
    });
    expect(Buffer.from(await withFetch.outputNpy('j', 'c')).equals(npy)).toBe(true);
    expect(fetches).toBe(1);
  });

  it('retries a 503 through fetch, throws the API error of a 404, and takes a chunked answer through fetch', async () => {
    const busy = await tensorServer([503]);
    const client = new GpumeshClient({ baseUrl: busy.url, apiKey: 'k' });
    expect(Buffer.from(await client.tensorNpy('r')).equals(npy)).toBe(true);
    expect(busy.seen).toHaveLength(2);
    server?.close();

    const missing = await tensorServer([404]);
    const err = await new GpumeshClient({ baseUrl: missing.url, apiKey: 'k' })
      .tensorNpy('r')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GpumeshApiError);
    expect((err as GpumeshApiError).code).toBe('E404');
    expect(missing.seen).toHaveLength(1);
    server?.close();

    const chunked = await tensorServer([], { chunked: true });
    const stream = await new GpumeshClient({ baseUrl: chunked.url, apiKey: 'k' }).openTensorNpy('r');
    expect(stream.bytes).toBeNull();
    expect(chunked.seen).toHaveLength(2);
    await stream.body.cancel();
  });
});

describe('GpumeshClient tensor uploads', () => {
  it('sends .npy bytes or a Blob over the socket, and sends them again after a 503', async () => {
    const npy = new Uint8Array(
      Buffer.concat([Buffer.from('\x93NUMPY'), Buffer.alloc(2 * 1024 * 1024 + 1, 9)]),
    );
    const received: { status: number; bytes: number; type?: string }[] = [];
    let busy = 1;
    const url = await serveWith((req, res) => {
      let bytes = 0;
      req.on('data', (d: Buffer) => (bytes += d.byteLength));
      req.on('end', () => {
        const status = busy-- > 0 ? 503 : 201;
        received.push({ status, bytes, type: req.headers['content-type'] });
        const answer = JSON.stringify(
          status === 201
            ? { ref: 'sha256:ab' }
            : { statusCode: 503, error: { code: 'BUSY', message: 'later' } },
        );
        res.writeHead(status, {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(answer),
          'retry-after': '0',
        });
        res.end(answer);
      });
    });
    const client = new GpumeshClient({ baseUrl: url, apiKey: 'k' });
    await expect(client.uploadNpy(npy)).resolves.toEqual({ ref: 'sha256:ab' });
    await expect(client.uploadNpy(new Blob([npy]))).resolves.toEqual({ ref: 'sha256:ab' });
    const sent = { bytes: npy.byteLength, type: 'application/x-npy' };
    expect(received).toEqual([
      { status: 503, ...sent },
      { status: 201, ...sent },
      { status: 201, ...sent },
    ]);
  });
});
