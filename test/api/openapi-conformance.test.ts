// The checked-in OpenAPI document against a real coordinator: every response of a walk through the
// API (sign-in, keys, account, jobs from submission to result, errors, public and admin reads) has a
// status the document lists for its route and a body that validates against the documented schema,
// with no field the schema does not name (objects are closed for this check).
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { Wallet } from 'ethers';
import { SiweMessage } from 'siwe';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil } from '../helpers/poll.js';
import { matmulSpec } from '../helpers/specs.js';

type Json = Record<string, unknown>;
interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: Json }> }>;
}
interface Document {
  paths: Record<string, Record<string, Operation>>;
  components: Json;
}

/** A copy of `schema` in which every object that lists its properties allows no other. */
function closed(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(closed);
  if (typeof schema !== 'object' || schema === null) return schema;
  const out: Json = {};
  for (const [key, value] of Object.entries(schema as Json)) {
    // example values are data, not schemas
    out[key] = key === 'example' || key === 'default' || key === 'enum' ? value : closed(value);
  }
  if (out.properties && out.additionalProperties === undefined) out.additionalProperties = false;
  return out;
}

describe('the OpenAPI document describes what a running coordinator answers', () => {
  let c: TestCoordinator;
  let agent: FakeAgent | undefined;
  let doc: Document;
  // Formats: date-time checked (every …At property; ISO 8601 with a zone), others taken as documented.
  const ajv = new Ajv2020({ strict: false, allErrors: true });
  ajv.addFormat('date-time', /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  for (const format of [
    'uuid',
    'uri',
    'email',
    'date',
    'int64',
    'int32',
    'double',
    'float',
    'byte',
    'binary',
  ])
    ajv.addFormat(format, true);
  const validators = new Map<string, ValidateFunction>();
  const seen: string[] = [];
  const problems: string[] = [];

  /** One request; its status and body are checked against the document's route `template`. */
  async function call<T = Json>(
    method: string,
    template: string,
    path: string,
    options: { key?: string; body?: unknown; rawBody?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; body: T }> {
    const res = await api<T>(c.url, method, path, options);
    const label = `${method} ${template} ${res.status}`;
    seen.push(label);
    const response = doc.paths[template]?.[method.toLowerCase()]?.responses[String(res.status)];
    if (!response) {
      problems.push(`${label}: not documented (${JSON.stringify(res.body).slice(0, 200)})`);
      return res;
    }
    const schema = response.content?.['application/json']?.schema;
    if (schema) {
      let validate = validators.get(label);
      if (!validate) {
        validate = ajv.compile({ ...(closed(schema) as Json), components: closed(doc.components) });
        validators.set(label, validate);
      }
      if (!validate(res.body)) {
        problems.push(
          `${label}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(res.body).slice(0, 300)}`,
        );
      }
    }
    return res;
  }

  beforeAll(async () => {
    doc = JSON.parse(await readFile(new URL('../../docs/openapi.json', import.meta.url), 'utf8')) as Document;
    c = await startTestCoordinator({ DISPATCH_BACKOFF_MS: '50' });
  });
  afterAll(async () => {
    await agent?.stop();
    await c?.close();
  });

  it('signs in, manages keys and reads the account as documented', async () => {
    const wallet = Wallet.createRandom();
    const nonce = await call<{ nonce: string; domain: string; chainId: number; uri: string }>(
      'GET',
      '/v1/auth/nonce',
      '/v1/auth/nonce',
    );
    const message = new SiweMessage({
      domain: nonce.body.domain,
      address: wallet.address,
      uri: nonce.body.uri,
      version: '1',
      chainId: nonce.body.chainId,
      nonce: nonce.body.nonce,
    }).prepareMessage();
    const session = await call<{ token: string }>('POST', '/v1/auth/siwe', '/v1/auth/siwe', {
      body: { message, signature: await wallet.signMessage(message) },
    });
    expect(session.status).toBe(200);
    await call('POST', '/v1/auth/siwe', '/v1/auth/siwe', {
      body: { message, signature: await wallet.signMessage(message) },
    }); // the nonce is spent: 401
    const key = await call<{ id: string }>('POST', '/v1/auth/api-keys', '/v1/auth/api-keys', {
      key: session.body.token,
      body: { name: 'conformance', scopes: ['jobs:read'] },
    });
    expect(key.status).toBe(201);
    await call('GET', '/v1/auth/api-keys', '/v1/auth/api-keys', { key: session.body.token });
    await call('DELETE', '/v1/auth/api-keys/{id}', `/v1/auth/api-keys/${key.body.id}`, {
      key: session.body.token,
    });
    await call('DELETE', '/v1/auth/api-keys/{id}', `/v1/auth/api-keys/${randomUUID()}`, {
      key: session.body.token,
    });
    await call('GET', '/v1/account', '/v1/account', { key: c.devKey });
    await call('GET', '/v1/account', '/v1/account');
    await call('GET', '/v1/account/verification', '/v1/account/verification', { key: c.devKey });
    await call('PUT', '/v1/account/verification', '/v1/account/verification', {
      key: c.devKey,
      body: { mode: 'none' },
    });
    await call('PUT', '/v1/account/verification', '/v1/account/verification', {
      key: c.devKey,
      rawBody: 'null',
    });
    await call('PUT', '/v1/account/verification', '/v1/account/verification', {
      key: c.devKey,
      body: { mode: 'sometimes' },
    });
    await call('GET', '/v1/account/webhook', '/v1/account/webhook', { key: c.devKey });
    await call('GET', '/v1/account/webhook/deliveries', '/v1/account/webhook/deliveries', {
      key: c.devKey,
    });
    await call('GET', '/v1/artifacts', '/v1/artifacts', { key: c.devKey });
    await call('GET', '/v1/artifacts/{hash}', `/v1/artifacts/${'ab'.repeat(32)}`, { key: c.devKey });
  });

  it('takes a job from submission to its result as documented', async () => {
    const spec = matmulSpec(2, 3, 2, '10');
    await call('POST', '/v1/jobs/dry-run', '/v1/jobs/dry-run', { key: c.devKey, body: spec });
    const waiting = await call<{ id: string }>('POST', '/v1/jobs', '/v1/jobs', {
      key: c.devKey,
      body: { ...spec, verification: { mode: 'none' } },
      headers: { 'idempotency-key': `conformance-${randomUUID()}` },
    });
    expect(waiting.status).toBe(201);
    const id = waiting.body.id;
    await call('GET', '/v1/jobs/{id}/result', `/v1/jobs/${id}/result`, { key: c.devKey }); // 409
    await call('POST', '/v1/jobs/{id}/cancel', `/v1/jobs/${id}/cancel`, { key: c.devKey });
    await call('POST', '/v1/jobs/{id}/cancel', `/v1/jobs/${id}/cancel`, { key: c.devKey }); // 409
    await call('POST', '/v1/jobs/batch', '/v1/jobs/batch', {
      key: c.devKey,
      body: { jobs: [spec, matmulSpec(64, 64, 64, '1000000000000000000')] },
    });
    await call('POST', '/v1/jobs', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(64, 64, 64, '1000000000000000000'),
    });
    await call('POST', '/v1/jobs', '/v1/jobs', { key: c.devKey, body: { ...spec, kind: 'sort' } });
    await call('POST', '/v1/jobs', '/v1/jobs', { key: c.devKey, rawBody: '{"kind":' });
    await call('GET', '/v1/jobs/{id}', `/v1/jobs/${randomUUID()}`, { key: c.devKey });
    await call('GET', '/v1/jobs/{id}', '/v1/jobs/not-a-uuid', { key: c.devKey });
    await call('GET', '/v1/jobs', '/v1/jobs?limit=1000', { key: c.devKey });

    agent = await startFakeAgent(c.url, { pricePerUnit: '2' });
    const job = await call<{ id: string }>('POST', '/v1/jobs', '/v1/jobs', { key: c.devKey, body: spec });
    await pollUntil(
      'the job to complete',
      async () => {
        const res = await api<{ state: string }>(c.url, 'GET', `/v1/jobs/${job.body.id}`, { key: c.devKey });
        return res.body.state === 'COMPLETED' ? true : undefined;
      },
      20_000,
    );
    await call('GET', '/v1/jobs/{id}', `/v1/jobs/${job.body.id}`, { key: c.devKey });
    const result = await call('GET', '/v1/jobs/{id}/result', `/v1/jobs/${job.body.id}/result`, {
      key: c.devKey,
    });
    expect(result.status).toBe(200);
    await call('GET', '/v1/jobs', '/v1/jobs?limit=5', { key: c.devKey });
  });

  it('answers the public and admin reads as documented', async () => {
    const providers = await call<{ peerId: string }[]>('GET', '/v1/providers', '/v1/providers');
    const peerId = providers.body[0]?.peerId ?? agent?.peerId ?? '';
    await call('GET', '/v1/providers/{peerId}/earnings', `/v1/providers/${peerId}/earnings`);
    await call('GET', '/v1/market', '/v1/market');
    await call('GET', '/v1/network', '/v1/network');
    await call('GET', '/health', '/health');
    await call('GET', '/health/live', '/health/live');
    await call('GET', '/v1/rewards/epochs', '/v1/rewards/epochs');
    await call('GET', '/v1/rewards/chain', '/v1/rewards/chain');
    await call('GET', '/v1/rewards/proof/{address}', `/v1/rewards/proof/${Wallet.createRandom().address}`);
    await call('GET', '/v1/evidence/{hash}', `/v1/evidence/0x${'ab'.repeat(32)}`);
    const admin = { key: c.adminKey };
    await call('GET', '/v1/admin/session', '/v1/admin/session', admin);
    await call('GET', '/v1/admin/overview', '/v1/admin/overview', admin);
    await call('GET', '/v1/admin/providers', '/v1/admin/providers', admin);
    await call('GET', '/v1/admin/providers/{peerId}', `/v1/admin/providers/${peerId}`, admin);
    const jobs = await call<{ items: { id: string; accountId: string }[] }>(
      'GET',
      '/v1/admin/jobs',
      '/v1/admin/jobs',
      admin,
    );
    const first = jobs.body.items[0];
    await call('GET', '/v1/admin/jobs/{id}', `/v1/admin/jobs/${first.id}`, admin);
    await call('GET', '/v1/admin/accounts', '/v1/admin/accounts', admin);
    await call('GET', '/v1/admin/accounts/{id}', `/v1/admin/accounts/${first.accountId}`, admin);
    await call('GET', '/v1/admin/slashes', '/v1/admin/slashes', admin);
    await call('GET', '/v1/admin/epochs', '/v1/admin/epochs', admin);
    await call('GET', '/v1/admin/settings', '/v1/admin/settings', admin);
    await call('POST', '/v1/admin/audit', '/v1/admin/audit', admin);
    await call('GET', '/v1/admin/overview', '/v1/admin/overview', { key: c.devKey }); // 403

    expect(problems).toEqual([]);
    // the walk met successes and errors alike
    const statuses = new Set(seen.map((s) => s.split(' ').at(-1)));
    for (const status of ['200', '201', '400', '401', '402', '403', '404', '409']) {
      expect(statuses, `no ${status} in ${seen.join(', ')}`).toContain(status);
    }
  });
});
