// /metrics is not public: with METRICS_TOKEN a scraper must send it as a bearer token; without it
// only direct connections from the coordinator's own host are answered (see SECURITY.md).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

const TOKEN = 'scrape-me-0123456789abcdef';

describe('/metrics access', () => {
  let plain: TestCoordinator;
  let tokened: TestCoordinator;
  beforeAll(async () => {
    plain = await startTestCoordinator();
    tokened = await startTestCoordinator({ METRICS_TOKEN: TOKEN });
  }, 120_000);
  afterAll(async () => {
    await plain?.close();
    await tokened?.close();
  });

  it('without METRICS_TOKEN serves this host and refuses a request relayed by a proxy', async () => {
    const local = await fetch(`${plain.url}/metrics`);
    expect(local.status).toBe(200);
    expect(await local.text()).toContain('gpumesh_http_request_duration_seconds');
    const relayed = await api<{ error: { code: string; message: string } }>(plain.url, 'GET', '/metrics', {
      headers: { 'x-forwarded-for': '203.0.113.9' },
    });
    expect(relayed.status).toBe(403);
    expect(relayed.body.error).toMatchObject({ code: 'FORBIDDEN' });
    expect(relayed.body.error.message).toMatch(/METRICS_TOKEN/);
  });

  it('with METRICS_TOKEN wants the bearer token, and an API key is no substitute', async () => {
    const none = await api<{ error: { code: string; message: string } }>(tokened.url, 'GET', '/metrics');
    expect(none.status).toBe(401);
    expect(none.body.error.message).toMatch(/Bearer <METRICS_TOKEN>/);
    expect((await api(tokened.url, 'GET', '/metrics', { key: 'gmk_not_the_token_at_all' })).status).toBe(401);
    const ok = await fetch(`${tokened.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(ok.status).toBe(200);
    expect(ok.headers.get('content-type')).toContain('text/plain');
    expect(await ok.text()).toContain('gpumesh_queue_jobs');
  });
});
