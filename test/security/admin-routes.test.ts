// Every /v1/admin route (from the OpenAPI document, so new ones are covered) refuses anonymous callers
// (401), developer keys and sessions (403), and garbage or revoked credentials (401); a developer key
// cannot open a dashboard session; scoped keys cannot mint broader keys.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { send } from '../fuzz/http.js';

interface ErrorBody {
  error: { code: string; message: string };
}

describe('admin routes are for admins only', () => {
  let c: TestCoordinator;
  let adminRoutes: { method: string; path: string }[];

  beforeAll(async () => {
    c = await startTestCoordinator();
    const doc = (await (await fetch(`${c.url}/docs/json`)).json()) as {
      paths: Record<string, Record<string, unknown>>;
    };
    adminRoutes = Object.entries(doc.paths)
      .filter(([path]) => path.startsWith('/v1/admin'))
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path })))
      // signing in to the dashboard is how an admin gets a session (tested on its own below); signing
      // out only ends the caller's own cookie session, whoever calls it
      .filter((r) => !(r.path === '/v1/admin/session' && r.method !== 'GET'));
  });
  afterAll(async () => {
    await c?.close();
  });

  const concrete = (path: string): string =>
    path
      .replace('{peerId}', '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN')
      .replace('{key}', 'platformFeeBps')
      .replace(/\{\w+\}/g, '00000000-0000-4000-8000-000000000001');

  const call = async (method: string, path: string, headers: Record<string, string>) => {
    const res = await send(c.url, {
      method,
      path: concrete(path),
      headers: {
        ...headers,
        ...(method === 'GET' || method === 'DELETE' ? {} : { 'content-type': 'application/json' }),
      },
      body: method === 'GET' || method === 'DELETE' ? undefined : Buffer.from('{}'),
    });
    let body: ErrorBody | null = null;
    try {
      body = JSON.parse(res.text) as ErrorBody;
    } catch {
      body = null;
    }
    return { status: res.status, body, stream: res.stream };
  };

  it('finds the admin routes', () => {
    expect(adminRoutes.length).toBeGreaterThanOrEqual(15);
    expect(adminRoutes.some((r) => r.method === 'POST')).toBe(true);
    expect(adminRoutes.some((r) => r.method === 'DELETE')).toBe(true);
  });

  it('answers 401 without credentials or with bad ones, and 403 to developers, on every admin route', async () => {
    // a developer session (SIWE) is as unprivileged as a developer key
    const created = await api<{ secret: string; id: string }>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.devKey,
      body: { name: 'to revoke' },
    });
    expect(created.status).toBe(201);
    const revoked = created.body.secret;
    expect(
      (await api(c.url, 'DELETE', `/v1/auth/api-keys/${created.body.id}`, { key: c.devKey })).status,
    ).toBe(200);
    const problems: string[] = [];
    for (const { method, path } of adminRoutes) {
      const cases: [string, Record<string, string>, number[]][] = [
        ['no credentials', {}, [401]],
        ['developer key', { authorization: `Bearer ${c.devKey}` }, [403]],
        ['developer key as x-api-key', { 'x-api-key': c.devKey }, [403]],
        [
          'developer key as the dashboard cookie',
          { cookie: `gpumesh_admin=${c.devKey}`, 'x-gpumesh-csrf': '1' },
          [401, 403],
        ],
        ['revoked key', { authorization: `Bearer ${revoked}` }, [401]],
        ['garbage key', { authorization: 'Bearer gmk_not-a-real-key-at-all' }, [401]],
        ['garbage cookie', { cookie: 'gpumesh_admin=forged', 'x-gpumesh-csrf': '1' }, [401, 403]],
      ];
      for (const [name, headers, expected] of cases) {
        const res = await call(method, path, headers);
        if (!expected.includes(res.status) || res.stream) {
          problems.push(`${method} ${path} with ${name}: ${res.status}`);
        } else if (!res.body?.error?.code || !res.body.error.message) {
          problems.push(`${method} ${path} with ${name}: no error envelope`);
        }
      }
    }
    expect(problems).toEqual([]);
    // the admin key does get in (so the 403s above are about the role, not a broken route)
    const overview = await call('GET', '/v1/admin/overview', { authorization: `Bearer ${c.adminKey}` });
    expect(overview.status).toBe(200);
  }, 60_000);

  it('does not give a developer key a dashboard session', async () => {
    const res = await send(c.url, {
      method: 'POST',
      path: '/v1/admin/session',
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify({ apiKey: c.devKey })),
    });
    expect([401, 403]).toContain(res.status);
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('does not let a scoped key mint a key with more scopes, or a developer mint an admin key', async () => {
    const readOnly = await api<{ secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.devKey,
      body: { name: 'read only', scopes: ['jobs:read'] },
    });
    expect(readOnly.status).toBe(201);
    const broader = await api<ErrorBody>(c.url, 'POST', '/v1/auth/api-keys', {
      key: readOnly.body.secret,
      body: { name: 'escalated', scopes: ['jobs:write'] },
    });
    expect(broader.status).toBe(403);
    expect(broader.body.error.message).toContain('jobs:write');
    const everything = await api<ErrorBody>(c.url, 'POST', '/v1/auth/api-keys', {
      key: readOnly.body.secret,
      body: { name: 'escalated' },
    });
    expect(everything.status).toBe(403);
    const same = await api<{ scopes: string[] }>(c.url, 'POST', '/v1/auth/api-keys', {
      key: readOnly.body.secret,
      body: { name: 'same', scopes: ['jobs:read'] },
    });
    expect(same.status).toBe(201);
    expect(same.body.scopes).toEqual(['jobs:read']);
    const admin = await api<ErrorBody>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.devKey,
      body: { name: 'admin please', role: 'ADMIN' },
    });
    expect(admin.status).toBe(403);
  });
});
