// The client's retry of 429/503 answers, against a local HTTP server standing in for a busy
// coordinator (the coordinator itself is not the subject: test/clients/sdk.test.ts runs against one).
import { createServer, type Server } from 'node:http';
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
