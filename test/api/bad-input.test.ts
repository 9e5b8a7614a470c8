import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';

interface ErrorBody {
  statusCode: number;
  error: { code: string; message: string };
}

describe('bad input gets a 4xx that names the field, never a 500', () => {
  let c: TestCoordinator;
  beforeAll(async () => {
    c = await startTestCoordinator({ MAX_BODY_BYTES: String(256 * 1024) });
  });
  afterAll(async () => {
    await c?.close();
  });

  const post = (body: unknown) => api<ErrorBody>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body });

  it('names the field of a malformed job spec', async () => {
    const spec = matmulSpec(2, 2, 2);
    const cases: [unknown, string][] = [
      [{ ...spec, kind: 'mine-bitcoin' }, 'kind'],
      [{ ...spec, maxPricePerUnit: 1.5 }, 'maxPricePerUnit'],
      [{ ...spec, redundancy: 9 }, 'redundancy'],
      [{ ...spec, deadlineSeconds: -1 }, 'deadlineSeconds'],
      [
        {
          ...spec,
          inputs: [{ ...(spec.inputs as object[])[0], shape: [2, -2] }, (spec.inputs as object[])[1]],
        },
        'inputs[0].shape',
      ],
      [{ ...spec, requirements: { backends: ['quantum'] } }, 'requirements.backends'],
      [[], 'body: expected a JSON object'],
      ['just text', 'body: expected a JSON object'],
    ];
    for (const [body, field] of cases) {
      const res = await post(body);
      expect(res.status, JSON.stringify(body).slice(0, 80)).toBe(400);
      expect(res.body.error.code).toBe('VALIDATION_FAILED');
      expect(res.body.error.message).toContain(field);
    }
  });

  it('rejects inner dimensions that do not match', async () => {
    const a = matmulSpec(2, 3, 2);
    const b = matmulSpec(4, 4, 2);
    const res = await post({ ...a, inputs: [(a.inputs as object[])[0], (b.inputs as object[])[1]] });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/inner|dimension/i);
  });

  it('answers invalid JSON, wrong content type, oversize body, bad ids and unknown query fields with 4xx', async () => {
    const badJson = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', { key: c.devKey, rawBody: '{"kind":' });
    expect(badJson.status).toBe(400);
    const wrongType = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      rawBody: 'kind=matmul',
      headers: { 'content-type': 'text/plain' },
    });
    expect(wrongType.status).toBe(415);
    const big = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      rawBody: `{"x":"${'a'.repeat(300 * 1024)}"}`,
    });
    expect(big.status).toBe(413);
    const badId = await api<ErrorBody>(c.url, 'GET', '/v1/jobs/not-a-uuid', { key: c.devKey });
    expect(badId.status).toBe(400);
    expect(badId.body.error.message).toContain('id');
    const missing = await api<ErrorBody>(c.url, 'GET', '/v1/jobs/00000000-0000-4000-8000-000000000000', {
      key: c.devKey,
    });
    expect(missing.status).toBe(404);
    const badQuery = await api<ErrorBody>(c.url, 'GET', '/v1/jobs?limit=100000&bogus=1', { key: c.devKey });
    expect(badQuery.status).toBe(400);
    expect(badQuery.body.error.message).toMatch(/limit|bogus/);
    const badCursor = await api<ErrorBody>(c.url, 'GET', '/v1/jobs?cursor=zzzz', { key: c.devKey });
    expect(badCursor.status).toBe(400);
    const badKeyHeader = await api<ErrorBody>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2),
      headers: { 'idempotency-key': 'has spaces in it' },
    });
    expect(badKeyHeader.status).toBe(400);
    expect(badKeyHeader.body.error.message).toContain('Idempotency-Key');
    const unknownRoute = await api<ErrorBody>(c.url, 'GET', '/v1/nothing-here', { key: c.devKey });
    expect(unknownRoute.status).toBe(404);
  });

  it('rejects a model artifact whose manifest does not match its weights', async () => {
    const res = await api<ErrorBody>(c.url, 'POST', '/v1/artifacts', {
      key: c.devKey,
      body: {
        format: 'layers',
        modelJson: {
          modelTopology: {},
          weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [2, 2], dtype: 'float32' }] }],
        },
        weights: Buffer.alloc(8).toString('base64'),
      },
    });
    expect(res.status).toBe(400);
    expect(res.body.error.message).toContain('16 bytes');
  });
});
