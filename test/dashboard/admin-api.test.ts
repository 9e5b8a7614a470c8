import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

const CSRF = { 'x-gpumesh-csrf': '1' };
/** Every admin action takes a reason (it goes to the audit log). */
const WHY = { reason: 'admin-api test' };

describe('admin API: cookie sessions, CSRF and roles', () => {
  let c: TestCoordinator;
  let cookie: string;

  beforeAll(async () => {
    c = await startTestCoordinator();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('signs in with an admin key only, setting an httpOnly SameSite=Strict cookie', async () => {
    const noCsrf = await api(c.url, 'POST', '/v1/admin/session', { body: { apiKey: c.adminKey } });
    expect(noCsrf.status).toBe(403);
    const bad = await api(c.url, 'POST', '/v1/admin/session', {
      body: { apiKey: 'gmk_nope1234' },
      headers: CSRF,
    });
    expect(bad.status).toBe(401);
    const dev = await api(c.url, 'POST', '/v1/admin/session', { body: { apiKey: c.devKey }, headers: CSRF });
    expect(dev.status).toBe(403);
    const ok = await api<{ canAct: boolean; address: string }>(c.url, 'POST', '/v1/admin/session', {
      body: { apiKey: c.adminKey },
      headers: CSRF,
    });
    expect(ok.status).toBe(200);
    expect(ok.body.canAct).toBe(true);
    expect(JSON.stringify(ok.body)).not.toContain('gms_'); // the token travels only in the cookie
    const setCookie = ok.headers.get('set-cookie') ?? '';
    expect(setCookie).toMatch(/^gpumesh_admin=gms_[\w-]+;/);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/v1/admin');
    cookie = setCookie.split(';')[0];
  });

  it('reads with the cookie; changes need the CSRF header and a same-origin Origin', async () => {
    expect((await api(c.url, 'GET', '/v1/admin/overview')).status).toBe(401);
    expect((await api(c.url, 'GET', '/v1/admin/overview', { key: c.devKey })).status).toBe(403);
    const overview = await api<{ providersOnline: number }>(c.url, 'GET', '/v1/admin/overview', {
      headers: { cookie },
    });
    expect(overview.status).toBe(200);
    expect(overview.body.providersOnline).toBe(0);
    const peer = '12D3KooWDwmwa9u6nmh3ordN2cM1pGNyHTeFjJ9Xzt6BhBZPHihK';
    expect(
      (await api(c.url, 'POST', `/v1/admin/providers/${peer}/ban`, { headers: { cookie }, body: WHY }))
        .status,
    ).toBe(403);
    const crossSite = await api(c.url, 'POST', `/v1/admin/providers/${peer}/ban`, {
      headers: { cookie, ...CSRF, origin: 'https://evil.example' },
      body: WHY,
    });
    expect(crossSite.status).toBe(403);
    const sameSite = await api(c.url, 'POST', `/v1/admin/providers/${peer}/ban`, {
      headers: { cookie, ...CSRF, origin: c.url },
      body: WHY,
    });
    expect(sameSite.status).toBe(404); // authorised; that provider does not exist
    // a bearer admin key needs no CSRF header (it is not ambient)
    expect(
      (await api(c.url, 'POST', `/v1/admin/providers/${peer}/ban`, { key: c.adminKey, body: WHY })).status,
    ).toBe(404);
    expect((await api(c.url, 'POST', '/v1/admin/audit', { key: c.adminKey })).body).toMatchObject({
      ok: true,
    });
  });

  it('gives a read-only admin key reads but no actions and no dashboard session', async () => {
    const created = await api<{ secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.adminKey,
      body: { name: 'viewer', role: 'ADMIN', scopes: ['jobs:read', 'account:read'] },
    });
    expect(created.status).toBe(201);
    const viewer = created.body.secret;
    expect((await api(c.url, 'GET', '/v1/admin/accounts', { key: viewer })).status).toBe(200);
    const session = await api<{ canAct: boolean }>(c.url, 'GET', '/v1/admin/session', { key: viewer });
    expect(session.body.canAct).toBe(false);
    expect((await api(c.url, 'POST', '/v1/admin/audit', { key: viewer })).status).toBe(403);
    const signIn = await api(c.url, 'POST', '/v1/admin/session', { body: { apiKey: viewer }, headers: CSRF });
    expect(signIn.status).toBe(403);
  });

  it('changes run-time settings: admin scope, CSRF with the cookie, validated, resettable', async () => {
    const path = '/v1/admin/settings/epochSeconds';
    expect((await api(c.url, 'PUT', path, { headers: { cookie }, body: { value: 30, ...WHY } })).status).toBe(
      403,
    );
    const viewer = await api<{ secret: string }>(c.url, 'POST', '/v1/auth/api-keys', {
      key: c.adminKey,
      body: { name: 'settings viewer', role: 'ADMIN', scopes: ['jobs:read'] },
    });
    expect(
      (await api(c.url, 'PUT', path, { key: viewer.body.secret, body: { value: 30, ...WHY } })).status,
    ).toBe(403);
    const bad = await api<{ error: { message: string } }>(c.url, 'PUT', path, {
      headers: { cookie, ...CSRF },
      body: { value: 0, ...WHY },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toBe('epochSeconds: expected at least 1 second');
    const unknown = await api(c.url, 'PUT', '/v1/admin/settings/nope', {
      key: c.adminKey,
      body: { value: 1, ...WHY },
    });
    expect(unknown.status).toBe(404);
    const policy = await api<{ error: { message: string } }>(
      c.url,
      'PUT',
      '/v1/admin/settings/verification',
      {
        key: c.adminKey,
        body: { value: { mode: 'redundant', k: 4 }, ...WHY },
      },
    );
    expect(policy.status).toBe(400);
    expect(policy.body.error.message).toBe('verification.k: expected 2..3');
    const ok = await api<{ current: number; overridden: boolean; value: string }>(c.url, 'PUT', path, {
      headers: { cookie, ...CSRF, origin: c.url },
      body: { value: 30, ...WHY },
    });
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ current: 30, overridden: true, value: '30 s' });
    const reset = await api<{ overridden: boolean }>(c.url, 'PUT', path, {
      key: c.adminKey,
      body: { value: null, ...WHY },
    });
    expect(reset.body.overridden).toBe(false);
  });

  it('streams live stats as server-sent events', async () => {
    const controller = new AbortController();
    const res = await fetch(`${c.url}/v1/admin/stream`, { headers: { cookie }, signal: controller.signal });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body?.getReader();
    let text = '';
    while (reader && !text.includes('\n\n')) {
      const chunk = await reader.read();
      if (chunk.done) break;
      text += new TextDecoder().decode(chunk.value);
    }
    controller.abort();
    expect(text).toContain('event: stats');
    expect(text).toContain('"providersOnline":0');
  });

  it('serves the dashboard at /dashboard/ under the CSP', async () => {
    const res = await fetch(`${c.url}/dashboard/`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
    expect(await res.text()).toContain('<div id="root">');
    expect((await fetch(`${c.url}/dashboard`, { redirect: 'manual' })).status).toBe(301);
  });

  it('signs out: the session is revoked at once', async () => {
    const out = await api(c.url, 'DELETE', '/v1/admin/session', { headers: { cookie, ...CSRF } });
    expect(out.status).toBe(200);
    expect(out.headers.get('set-cookie')).toContain('Max-Age=0');
    expect((await api(c.url, 'GET', '/v1/admin/overview', { headers: { cookie } })).status).toBe(401);
  });
});
