// Sessions end when their authority ends (issue 24, part 3): revoking an API key ends the dashboard
// sessions opened with it and every live stream opened with either, within a second; so does
// signing out. Revocations made by another process of the same marketplace reach this one's streams
// through the credential sweep (CREDENTIAL_RECHECK_MS).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  api,
  startCoordinatorOn,
  startTestCoordinator,
  type TestCoordinator,
} from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';

const CSRF = { 'x-gpumesh-csrf': '1' };

let c: TestCoordinator;

beforeAll(async () => {
  // nothing takes jobs here: a job's event stream stays open until something ends it
  c = await startTestCoordinator();
});
afterAll(async () => {
  await c?.close();
});

/** A new admin key (id and secret), made with the dev admin key. */
async function adminKey(name: string): Promise<{ id: string; secret: string }> {
  const res = await api<{ id: string; secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
    key: c.adminKey,
    body: { name, role: 'ADMIN' },
  });
  expect(res.status).toBe(201);
  return res.body;
}

async function dashboardCookie(secret: string): Promise<string> {
  const res = await api(c.url, 'POST', '/v1/admin/session', { body: { apiKey: secret }, headers: CSRF });
  expect(res.status).toBe(200);
  return (res.headers.get('set-cookie') ?? '').split(';')[0]!;
}

/** Opens an SSE stream; `ended` resolves with the time the server closed it. */
async function openStream(url: string, headers: Record<string, string>): Promise<{ ended: Promise<number> }> {
  const res = await fetch(url, { headers: { accept: 'text/event-stream', ...headers } });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  const ended = (async () => {
    for (;;) {
      const { done } = await reader.read();
      if (done) return performance.now();
    }
  })();
  return { ended };
}

/** The stream ends within `ms` of `revoke` resolving; returns how long it took. */
async function endsWithin(
  stream: { ended: Promise<number> },
  revoke: () => Promise<unknown>,
  ms: number,
): Promise<number> {
  const stillOpen = Symbol('open');
  // the stream is open before the revocation
  expect(await Promise.race([stream.ended, new Promise((r) => setTimeout(() => r(stillOpen), 300))])).toBe(
    stillOpen,
  );
  await revoke();
  const revokedAt = performance.now();
  const end = await Promise.race([
    stream.ended,
    new Promise<number>((r) => setTimeout(() => r(Infinity), ms + 2_000)),
  ]);
  const took = end - revokedAt;
  expect(took).toBeLessThan(ms);
  return took;
}

describe('sessions and streams end with their authority', () => {
  it('revoking an admin key ends the dashboard sessions opened with it and their live streams', async () => {
    const key = await adminKey('ops laptop');
    const cookie = await dashboardCookie(key.secret);
    expect((await api(c.url, 'GET', '/v1/admin/overview', { headers: { cookie } })).status).toBe(200);
    const overview = await openStream(`${c.url}/v1/admin/stream`, { cookie });
    const byKey = await openStream(`${c.url}/v1/admin/stream`, { authorization: `Bearer ${key.secret}` });
    const byKeyEnded = byKey.ended;
    await endsWithin(
      overview,
      async () => {
        const revoked = await api(c.url, 'DELETE', `/v1/admin/api-keys/${key.id}`, {
          key: c.adminKey,
          body: { reason: 'laptop stolen' },
        });
        expect(revoked.status).toBe(200);
      },
      1_000,
    );
    await expect(
      Promise.race([byKeyEnded, new Promise((r) => setTimeout(() => r('open'), 1_000))]),
    ).resolves.not.toBe('open');
    const after = await api<{ error: { message: string } }>(c.url, 'GET', '/v1/admin/overview', {
      headers: { cookie },
    });
    expect(after.status).toBe(401);
    expect(after.body.error.message).toMatch(/revoked|signed out/);
    // the revoking admin's own sessions are untouched
    const mine = await dashboardCookie(c.adminKey);
    expect((await api(c.url, 'GET', '/v1/admin/overview', { headers: { cookie: mine } })).status).toBe(200);
  });

  it('signing out ends the live streams of that session', async () => {
    const cookie = await dashboardCookie(c.adminKey);
    const other = await dashboardCookie(c.adminKey); // another tab's session stays
    const overview = await openStream(`${c.url}/v1/admin/stream`, { cookie });
    const otherStream = await openStream(`${c.url}/v1/admin/stream`, { cookie: other });
    await endsWithin(
      overview,
      async () => {
        const out = await api(c.url, 'DELETE', '/v1/admin/session', { headers: { cookie, ...CSRF } });
        expect(out.status).toBe(200);
      },
      1_000,
    );
    expect(
      await Promise.race([otherStream.ended, new Promise((r) => setTimeout(() => r('open'), 800))]),
    ).toBe('open');
    await api(c.url, 'DELETE', '/v1/admin/session', { headers: { cookie: other, ...CSRF } });
    await otherStream.ended;
  });

  it('revoking a developer key ends its job event streams', async () => {
    const created = await api<{ id: string; secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.devKey,
      body: { name: 'ci runner' },
    });
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: created.body.secret,
      body: matmulSpec(2, 2, 2),
    });
    expect(job.status).toBe(201);
    const events = await openStream(`${c.url}/v1/jobs/${job.body.id}/events`, {
      authorization: `Bearer ${created.body.secret}`,
    });
    await endsWithin(
      events,
      async () => {
        const revoked = await api(c.url, 'DELETE', `/v1/auth/api-keys/${created.body.id}`, { key: c.devKey });
        expect(revoked.status).toBe(200);
      },
      1_000,
    );
  });

  it('a revocation made by another process of the marketplace ends the streams here too', async () => {
    const key = await adminKey('second process');
    const cookie = await dashboardCookie(key.secret);
    const overview = await openStream(`${c.url}/v1/admin/stream`, { cookie });
    const peer = await startCoordinatorOn(c.databaseUrl, {
      QUEUE_PREFIX: c.config.QUEUE_PREFIX,
      ROLE: 'api',
    });
    try {
      const took = await endsWithin(
        overview,
        async () => {
          const revoked = await api(peer.url, 'DELETE', `/v1/admin/api-keys/${key.id}`, {
            key: c.adminKey,
            body: { reason: 'revoked elsewhere' },
          });
          expect(revoked.status).toBe(200);
        },
        1_000,
      );
      expect(took).toBeGreaterThan(0);
    } finally {
      await peer.close();
    }
  });
});
