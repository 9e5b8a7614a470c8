import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

describe('operations endpoints', () => {
  let c: TestCoordinator;
  beforeAll(async () => {
    c = await startTestCoordinator();
  });
  afterAll(async () => {
    await c?.close();
  });

  it('reports PostgreSQL and Redis readiness', async () => {
    const res = await api<{ status: string; checks: Record<string, { status: string }> }>(
      c.url,
      'GET',
      '/health',
    );
    expect(res.status).toBe(200);
    expect(res.body.checks.database.status).toBe('up');
    expect(res.body.checks.redis.status).toBe('up');
  });

  it('serves Prometheus metrics with units in their names', async () => {
    await api(c.url, 'GET', '/health');
    const res = await fetch(`${c.url}/metrics`);
    const text = await res.text();
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(text).toContain('gpumesh_http_request_duration_seconds_bucket');
    expect(text).toContain('gpumesh_queue_jobs');
  });

  it('serves the OpenAPI document and the docs page', async () => {
    const json = await api<{ openapi: string; paths: Record<string, unknown> }>(c.url, 'GET', '/docs/json');
    expect(json.status).toBe(200);
    expect(json.body.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/jobs',
      '/v1/jobs/{id}',
      '/v1/jobs/{id}/cancel',
      '/v1/jobs/{id}/events',
      '/v1/artifacts',
      '/v1/account',
      '/v1/providers',
      '/v1/auth/siwe',
      '/v1/evidence/{hash}',
    ]) {
      expect(Object.keys(json.body.paths)).toContain(path);
    }
    // the checked-in document (npm run openapi, built without servers) is what a running coordinator
    // serves, but for the server it names
    const checkedIn = JSON.parse(
      await readFile(new URL('../../docs/openapi.json', import.meta.url), 'utf8'),
    ) as { servers: unknown };
    expect({ ...json.body, servers: checkedIn.servers }).toEqual(checkedIn);
    expect((json.body as unknown as { servers: { url: string }[] }).servers[0].url).toBe('/');
    const page = await fetch(`${c.url}/docs`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('swagger');
  });

  it('lists providers publicly', async () => {
    const res = await api<unknown[]>(c.url, 'GET', '/v1/providers');
    expect(res.status).toBe(200);
    expect(Array.isArray(res.body)).toBe(true);
  });
});
