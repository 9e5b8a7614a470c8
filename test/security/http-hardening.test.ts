// Rate limits, CORS, security headers, oversize bodies and slow clients, against a real coordinator
// over plain HTTP (fetch and raw sockets).
import { connect, type Socket } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_REDIS_URL, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';

interface ErrorBody {
  statusCode: number;
  error: { code: string; message: string; details?: Record<string, unknown> };
}

async function call(
  base: string,
  path: string,
  init: RequestInit & { key?: string } = {},
): Promise<{ status: number; headers: Headers; body: unknown; text: string }> {
  const headers = new Headers(init.headers);
  if (init.key) headers.set('authorization', `Bearer ${init.key}`);
  const res = await fetch(`${base}${path}`, { ...init, headers });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: res.status, headers: res.headers, body, text };
}

/** Opens a raw TCP connection to the coordinator. */
function rawSocket(base: string): Promise<Socket> {
  const { hostname, port } = new URL(base);
  return new Promise((resolve, reject) => {
    const socket = connect(Number(port), hostname, () => resolve(socket));
    socket.once('error', reject);
  });
}

/** Writes `head`, then one byte of `trickle` every `everyMs`; resolves what the server sent and when it closed. */
function trickle(
  socket: Socket,
  head: string,
  trickleText: string,
  everyMs: number,
): Promise<{ closedAfterMs: number; response: string }> {
  const started = Date.now();
  let response = '';
  socket.on('data', (d: Buffer) => (response += d.toString('latin1')));
  socket.write(head);
  let i = 0;
  const timer = setInterval(() => {
    if (socket.destroyed || socket.writableEnded) return;
    socket.write(trickleText[i % trickleText.length]);
    i += 1;
  }, everyMs);
  return new Promise((resolve) => {
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearInterval(timer);
      resolve({ closedAfterMs: Date.now() - started, response });
    });
  });
}

describe('rate limits per API key and per IP', () => {
  let c: TestCoordinator;
  const PER_IP = 40;
  const PER_KEY = 15;
  beforeAll(async () => {
    c = await startTestCoordinator({
      RATE_LIMIT_PER_IP: String(PER_IP),
      RATE_LIMIT_PER_KEY: String(PER_KEY),
    });
  });
  afterAll(async () => {
    await c?.close();
  });

  it('answers 429 with Retry-After and the error envelope, per key first, then per IP', async () => {
    // the dev key alone: PER_KEY requests pass, the next is limited by key
    for (let i = 0; i < PER_KEY; i++) {
      const res = await call(c.url, '/v1/account', { key: c.devKey });
      expect(res.status, `request ${i + 1}`).toBe(200);
      expect(res.headers.get('x-ratelimit-limit')).toBe(String(PER_KEY));
    }
    const limited = await call(c.url, '/v1/account', { key: c.devKey });
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = limited.body as ErrorBody;
    expect(body.error.code).toBe('RATE_LIMITED');
    expect(body.error.message).toMatch(/API key.*15 a minute.*retry in \d+ s/);
    expect(body.error.details).toMatchObject({ scope: 'key', limit: PER_KEY });
    // security headers on a 429 too
    expect(limited.headers.get('x-content-type-options')).toBe('nosniff');
    // "bearer <key>" in another spelling and x-api-key are the same credential
    expect(
      (await call(c.url, '/v1/account', { headers: { authorization: `bearer  ${c.devKey}` } })).status,
    ).toBe(429);
    expect((await call(c.url, '/v1/account', { headers: { 'x-api-key': c.devKey } })).status).toBe(429);
    // a POST over the limit is refused before its body is read or validated
    const post = await call(c.url, '/v1/jobs', {
      key: c.devKey,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(matmulSpec(2, 2, 2)),
    });
    expect(post.status).toBe(429);

    // another key still has its own budget; the IP budget (PER_IP) is shared by everything from here
    let sent = PER_KEY + 4;
    const admin = await call(c.url, '/v1/account', { key: c.adminKey });
    expect(admin.status).toBe(200);
    sent += 1;
    while (sent < PER_IP) {
      const res = await call(c.url, '/health');
      expect(res.status).toBeLessThan(429);
      sent += 1;
    }
    const byIp = await call(c.url, '/health');
    expect(byIp.status).toBe(429);
    expect((byIp.body as ErrorBody).error.message).toContain('IP address');
    expect(Number(byIp.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    // X-Forwarded-For is not believed by default (TRUST_PROXY=false): no way around the IP limit
    const spoofed = await call(c.url, '/health', { headers: { 'x-forwarded-for': '203.0.113.9' } });
    expect(spoofed.status).toBe(429);
  });

  it('keeps its counters in Redis under the queue prefix, holding no credential', async () => {
    const redis = new Redis(TEST_REDIS_URL);
    try {
      const keys = await redis.keys(`${c.config.QUEUE_PREFIX}:rl:*`);
      expect(keys.length).toBeGreaterThanOrEqual(2);
      expect(keys.some((k) => k.includes('ip:'))).toBe(true);
      expect(keys.some((k) => k.includes('key:'))).toBe(true);
      for (const k of keys) {
        expect(k).not.toContain(c.devKey);
        expect(k).not.toContain(c.devKey.slice(4, 20));
      }
    } finally {
      redis.disconnect();
    }
  });
});

describe('CORS, security headers, oversize bodies and slow clients', () => {
  let c: TestCoordinator;
  let closed: TestCoordinator;
  const ALLOWED = 'https://app.example.com';
  beforeAll(async () => {
    [c, closed] = await Promise.all([
      startTestCoordinator({
        CORS_ORIGINS: `${ALLOWED}, https://other.example.org/`,
        MAX_BODY_BYTES: String(64 * 1024),
        HTTP_HEADERS_TIMEOUT_MS: '1000',
        HTTP_REQUEST_TIMEOUT_MS: '2000',
        HTTP_KEEP_ALIVE_TIMEOUT_MS: '1000',
      }),
      startTestCoordinator(),
    ]);
  });
  afterAll(async () => {
    await Promise.all([c?.close(), closed?.close()]);
  });

  it('allows only the configured origins, without credentials', async () => {
    const preflight = await call(c.url, '/v1/jobs', {
      method: 'OPTIONS',
      headers: {
        origin: ALLOWED,
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type,idempotency-key',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    expect(preflight.headers.get('access-control-allow-credentials')).toBeNull();
    const get = await call(c.url, '/v1/account', { key: c.devKey, headers: { origin: ALLOWED } });
    expect(get.headers.get('access-control-allow-origin')).toBe(ALLOWED);
    expect(get.headers.get('access-control-expose-headers')).toContain('retry-after');
    const other = await call(c.url, '/v1/account', {
      key: c.devKey,
      headers: { origin: 'https://other.example.org' },
    });
    expect(other.headers.get('access-control-allow-origin')).toBe('https://other.example.org');

    const evil = await call(c.url, '/v1/account', {
      key: c.devKey,
      headers: { origin: 'https://evil.example' },
    });
    expect(evil.headers.get('access-control-allow-origin')).toBeNull();
    const evilPreflight = await call(c.url, '/v1/jobs', {
      method: 'OPTIONS',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(evilPreflight.headers.get('access-control-allow-origin')).toBeNull();

    // the default (CORS_ORIGINS unset): no origin is allowed, not even the allowlisted one above
    for (const origin of [ALLOWED, 'https://evil.example', 'null']) {
      const res = await call(closed.url, '/v1/account', { key: closed.devKey, headers: { origin } });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBeNull();
      const pre = await call(closed.url, '/v1/jobs', {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST' },
      });
      expect(pre.status).toBeLessThan(500);
      expect(pre.headers.get('access-control-allow-origin')).toBeNull();
    }
  });

  it('sends the security headers on API, error, docs and dashboard responses', async () => {
    const responses = {
      api: await call(c.url, '/v1/account', { key: c.devKey }),
      unauthenticated: await call(c.url, '/v1/account'),
      notFound: await call(c.url, '/v1/no-such-route'),
      unsupportedType: await call(c.url, '/v1/jobs', {
        method: 'POST',
        key: c.devKey,
        headers: { 'content-type': 'text/plain' },
        body: 'x',
      }),
      health: await call(c.url, '/health'),
      docs: await call(c.url, '/docs'),
      docsJson: await call(c.url, '/docs/json'),
      dashboard: await call(c.url, '/dashboard/'),
    };
    expect(responses.api.status).toBe(200);
    expect(responses.unauthenticated.status).toBe(401);
    expect(responses.notFound.status).toBe(404);
    expect(responses.unsupportedType.status).toBe(415);
    expect(responses.docs.status).toBe(200);
    expect(responses.docsJson.status).toBe(200);
    expect(responses.dashboard.status, 'the dashboard is built by npm run build').toBe(200);
    for (const [name, res] of Object.entries(responses)) {
      const h = res.headers;
      expect(h.get('content-security-policy'), name).toContain("default-src 'self'");
      expect(h.get('content-security-policy'), name).toContain("frame-ancestors 'none'");
      expect(h.get('content-security-policy'), name).toContain("object-src 'none'");
      // plain http (no https PUBLIC_URL): no HSTS and no forced upgrade, or a LAN browser gets a blank page
      expect(h.get('strict-transport-security'), name).toBeNull();
      expect(h.get('content-security-policy'), name).not.toContain('upgrade-insecure-requests');
      expect(h.get('x-content-type-options'), name).toBe('nosniff');
      expect(h.get('x-frame-options'), name).toBe('SAMEORIGIN');
      expect(h.get('referrer-policy'), name).toBe('no-referrer');
      expect(h.get('cross-origin-opener-policy'), name).toBe('same-origin');
      expect(h.get('x-powered-by'), name).toBeNull();
    }
  });

  it('cuts off an oversize body with 413 and a message', async () => {
    const big = await call(c.url, '/v1/jobs', {
      key: c.devKey,
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ ...matmulSpec(2, 2, 2), pad: 'a'.repeat(100 * 1024) }),
    });
    expect(big.status).toBe(413);
    expect((big.body as ErrorBody).error).toEqual({
      code: 'PAYLOAD_TOO_LARGE',
      message: expect.stringMatching(/larger than the limit/),
    });

    // a client that announces 1 GiB gets its 413 at once, without the server reading the body
    const socket = await rawSocket(c.url);
    const started = Date.now();
    const answer = new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (d: Buffer) => {
        text += d.toString('latin1');
        if (text.includes('\r\n\r\n') && /"statusCode":413/.test(text)) resolve(text);
      });
    });
    socket.write(
      `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.devKey}\r\nContent-Type: application/json\r\nContent-Length: ${2 ** 30}\r\n\r\n{"a":`,
    );
    const text = await answer;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(text).toMatch(/^HTTP\/1\.1 413/);
    socket.destroy();

    // a chunked body is counted as it arrives and cut at the limit
    const chunked = await rawSocket(c.url);
    const result = trickle(
      chunked,
      `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.devKey}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10000\r\n${'a'.repeat(0x10000)}\r\n10000\r\n${'a'.repeat(0x10000)}\r\n`,
      'a',
      50,
    );
    const { response } = await result;
    expect(response).toMatch(/^HTTP\/1\.1 413/);
  });

  it('closes the connection of a client that trickles its headers', async () => {
    const socket = await rawSocket(c.url);
    const { closedAfterMs, response } = await trickle(
      socket,
      `GET /v1/account HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.devKey}\r\nX-Slow: `,
      'abcdefgh',
      100,
    );
    // HTTP_HEADERS_TIMEOUT_MS=1000, checked every second
    expect(closedAfterMs).toBeGreaterThanOrEqual(900);
    expect(closedAfterMs).toBeLessThan(4000);
    expect(response).not.toMatch(/^HTTP\/1\.1 200/);
    expect((await call(c.url, '/v1/account', { key: c.devKey })).status).toBe(200);
  });

  it('answers 408 and closes the connection of a client that trickles its body', async () => {
    const socket = await rawSocket(c.url);
    const { closedAfterMs, response } = await trickle(
      socket,
      `POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${c.devKey}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{"kind":"`,
      'mmmm',
      100,
    );
    // HTTP_REQUEST_TIMEOUT_MS=2000, checked every second
    expect(closedAfterMs).toBeGreaterThanOrEqual(1900);
    expect(closedAfterMs).toBeLessThan(5000);
    expect(response).toMatch(/^HTTP\/1\.1 408/);
    expect((await call(c.url, '/health')).status).toBe(200);
  });

  it('closes idle keep-alive connections', async () => {
    const socket = await rawSocket(c.url);
    const started = Date.now();
    const closedAfterMs = await new Promise<number>((resolve) => {
      socket.on('data', () => undefined);
      socket.once('close', () => resolve(Date.now() - started));
      socket.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    expect(closedAfterMs).toBeLessThan(4000);
  });
});
