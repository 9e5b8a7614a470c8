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
