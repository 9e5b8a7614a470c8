// Property-based fuzzing of every REST route of a real coordinator with plain HTTP (node:http, not
// our client): random methods, paths, params, headers, JSON and non-JSON bodies, wrong content types,
// huge numbers, deep nesting, unicode, prototype-pollution keys, bad credentials, bad cursors and ids,
// authenticated and not. Routes come from the OpenAPI document, so new routes are fuzzed too.
//
// Asserts: no response >= 500, the server keeps answering, every 4xx carries the error envelope
// `{ statusCode, error: { code, message } }`, and every status a request shaped as its route documents
// (its method, its path, a body only where it takes one) is one the document lists for that route. FUZZ_RUNS (default 300) and FUZZ_SEED reproduce or
// extend a run: `FUZZ_RUNS=5000 npx vitest run test/fuzz/rest.test.ts`.
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { NoResponse, envelopeProblem, send, type RawRequest } from './http.js';

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);
const SEED = Number(process.env.FUZZ_SEED ?? 20_261_108);
const CONCURRENCY = 4;

interface Route {
  method: string;
  /** OpenAPI template, e.g. /v1/jobs/{id} */
  path: string;
  query: string[];
  headers: string[];
  body: boolean;
  /** The statuses the document lists for the route (none for the undocumented ones). */
  statuses: string[];
}

/** A request, and the route's documented statuses when it is shaped as its route documents. */
type FuzzRequest = RawRequest & { documented: { operation: string; statuses: string[] } | null };

/** Routes the OpenAPI document leaves out (HTML, metrics, static files, the SIWE nonce). */
const UNDOCUMENTED: Route[] = [
  { method: 'GET', path: '/metrics', query: [], headers: [], body: false, statuses: [] },
  { method: 'GET', path: '/docs', query: [], headers: [], body: false, statuses: [] },
  { method: 'GET', path: '/docs/json', query: [], headers: [], body: false, statuses: [] },
  { method: 'GET', path: '/dashboard', query: [], headers: [], body: false, statuses: [] },
  { method: 'GET', path: '/dashboard/{file}', query: [], headers: [], body: false, statuses: [] },
];

interface OpenApiOperation {
  parameters?: { in: string; name: string }[];
  requestBody?: unknown;
  responses?: Record<string, unknown>;
}

async function loadRoutes(base: string): Promise<Route[]> {
  const doc = (await (await fetch(`${base}/docs/json`)).json()) as {
    paths: Record<string, Record<string, OpenApiOperation>>;
  };
  const routes: Route[] = [];
  for (const [path, operations] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(operations)) {
      const params = op.parameters ?? [];
      routes.push({
        method: method.toUpperCase(),
        path,
        query: params.filter((p) => p.in === 'query').map((p) => p.name),
        headers: params.filter((p) => p.in === 'header').map((p) => p.name),
        body: op.requestBody !== undefined,
        statuses: Object.keys(op.responses ?? {}),
      });
    }
  }
  return [...routes, ...UNDOCUMENTED];
}

// ---------------------------------------------------------------------------------------------
// Arbitraries
// ---------------------------------------------------------------------------------------------

const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'hasOwnProperty', 'toString', 'valueOf'];

/** Hostile strings: unicode, control characters, lone surrogates, huge and odd numerals. */
const nastyString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 20 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\ud800',
    '\udfff\ud800',
    '💣'.repeat(50),
    'ＡＢＣ',
    '\u202e',
    'null',
    'undefined',
    'NaN',
    'Infinity',
    '-0',
    '1e309',
    '9'.repeat(400),
    '0x1F',
    '1_000',
    ' 12 ',
    '../../etc/passwd',
    '%00',
    '<script>alert(1)</script>',
    "' OR 1=1 --",
    '${7*7}',
    'a'.repeat(5000),
    ...PROTO_KEYS,
  ),
);

const hugeNumber = fc.oneof(
  fc.constantFrom(
    Number.MAX_SAFE_INTEGER + 2,
    Number.MAX_VALUE,
    -Number.MAX_VALUE,
    Number.MIN_VALUE,
    1e21,
    -1,
    0,
    -0,
    0.5,
    2 ** 31,
    2 ** 53,
  ),
  fc.double(),
  fc.integer(),
);

/** A JSON value with hostile leaves and prototype-pollution keys. */
const hostileJson: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    nastyString,
    hugeNumber,
    fc.boolean(),
    fc.constant(null),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.oneof(nastyString, fc.constantFrom(...PROTO_KEYS)), tie('value'), { maxKeys: 5 }),
  ),
})).value;

/** Replaces the value at a random path of `seed` (a valid body) with `replacement`. */
function mutate(seed: unknown, path: number[], replacement: unknown, key: string | null): unknown {
  if (path.length === 0 || seed === null || typeof seed !== 'object') return replacement;
  const copy: Record<string, unknown> | unknown[] = Array.isArray(seed)
    ? [...(seed as unknown[])]
    : { ...(seed as Record<string, unknown>) };
  const keys = Object.keys(copy);
  if (keys.length === 0) return replacement;
  const k = keys[path[0] % keys.length];
  if (key !== null && path.length === 1 && !Array.isArray(copy)) {
    (copy as Record<string, unknown>)[key] = replacement;
    return copy;
  }
  (copy as Record<string, unknown>)[k] = mutate(
    (copy as Record<string, unknown>)[k],
    path.slice(1),
    replacement,
    key,
  );
  return copy;
}

/** Raw body text that is not JSON at all, or only nearly. */
const rawBodyText = fc.oneof(
  fc.constantFrom(
    '{',
    '{"a":',
    '[1,2',
    '{"a":1}}',
    'null',
    'true',
    '"str"',
    '123',
    '1e999999',
    '-',
    '{"__proto__":{"admin":true}}',
    '{"constructor":{"prototype":{"admin":true}}}',
    '{"a":1,"a":2}',
    '\ufeff{}',
    '{"\\ud800":"\\udfff"}',
    '{"a":"\\u0000"}',
    `{"n":${'9'.repeat(5000)}}`,
    `{"n":0.${'0'.repeat(5000)}1}`,
    'kind=matmul&x=1',
    '<xml/>',
  ),
  // deep nesting: arrays and objects thousands of levels deep
  fc.integer({ min: 100, max: 20_000 }).map((d) => `${'['.repeat(d)}${']'.repeat(d)}`),
  fc.integer({ min: 100, max: 20_000 }).map((d) => `${'{"a":'.repeat(d)}1${'}'.repeat(d)}`),
  fc.integer({ min: 100, max: 5_000 }).map((d) => `{"inputs":${'['.repeat(d)}${']'.repeat(d)}}`),
  fc.string({ unit: 'binary', maxLength: 200 }),
);

const CONTENT_TYPES = [
  'application/json',
  'application/json; charset=utf-8',
  'Application/JSON',
  'application/json; charset=utf-16',
  'application/json; charset=latin1',
  'application/json;',
  'application/jsonx',
  'text/plain',
  'text/json',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/octet-stream',
  '*/*',
  '',
];

function authHeaders(dev: string, admin: string): fc.Arbitrary<Record<string, string>> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constant({}) },
    { weight: 5, arbitrary: fc.constant({ authorization: `Bearer ${dev}` }) },
    { weight: 4, arbitrary: fc.constant({ authorization: `Bearer ${admin}` }) },
    { weight: 1, arbitrary: fc.constant({ 'x-api-key': dev }) },
    {
      weight: 4,
      arbitrary: fc
        .constantFrom(
          'Bearer',
          'Bearer ',
          'Bearer gmk_',
          'Bearer gms_',
          `Bearer ${dev}x`,
          `Bearer ${dev.slice(0, -1)}`,
          `Bearer ${dev} ${dev}`,
          `bearer ${dev.toUpperCase()}`,
          'Basic dXNlcjpwYXNz',
          'Bearer gmk_' + 'A'.repeat(4000),
          'Bearer \u00ff\u00fe',
          'Digest x',
          'Bearer eyJhbGciOiJub25lIn0.eyJhZG1pbiI6dHJ1ZX0.',
        )
        .map((authorization) => ({ authorization })),
    },
    {
      weight: 1,
      arbitrary: fc
        .constantFrom(
          'gpumesh_admin=x',
          'gpumesh_admin=',
          `gpumesh_admin=${dev}`,
          'gpumesh_admin=%ff%00; a=b',
        )
        .map((cookie) => ({ cookie, 'x-gpumesh-csrf': '1' })),
    },
  );
}

/** Path parameter values: ids that exist, random uuids, and garbage. */
function paramValue(known: string[]): fc.Arbitrary<string> {
  return fc.oneof(
    { weight: 3, arbitrary: fc.constantFrom(...known) },
    { weight: 3, arbitrary: fc.uuid().map((u) => u) },
    {
      weight: 4,
      arbitrary: fc.oneof(
        nastyString.map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, 'x')) || 'x'),
        fc.constantFrom(
          '%zz',
          '%',
          '%E0%A4%A',
          '%ED%A0%80',
          '%C0%AF',
          '%00',
          '..',
          '%2e%2e',
          '%2F',
          '0',
          '-1',
          '99999999999999999999999999',
          '1.5',
          '0x00',
          '00000000-0000-0000-0000-000000000000',
          'ffffffff-ffff-4fff-bfff-ffffffffffff',
          'a'.repeat(3000),
          '12D3KooWGarbage',
          '0x' + 'f'.repeat(40),
          '0x' + 'g'.repeat(40),
          'e'.repeat(64),
        ),
      ),
    },
  );
}

function queryString(route: Route, known: string[]): fc.Arbitrary<string> {
  const key = fc.oneof(
    ...(route.query.length > 0 ? [{ weight: 4, arbitrary: fc.constantFrom(...route.query) }] : []),
    {
      weight: 1,
      arbitrary: fc.constantFrom('limit', 'cursor', 'state', 'kind', ...PROTO_KEYS, 'a[b]', 'x.y'),
    },
    { weight: 1, arbitrary: fc.string({ maxLength: 10 }) },
  );
  const value = fc.oneof(
    fc.constantFrom(
      '1',
      '0',
      '-1',
      '100',
      '101',
      '1e3',
      '9007199254740993',
      '99999999999999999999',
      'NaN',
      'true',
      'QUEUED',
      'COMPLETED',
      'matmul',
      'zzzz',
      'eyJpZCI6IngifQ',
      'eyJjcmVhdGVkQXQiOiJub3QtYS1kYXRlIiwiaWQiOjF9',
      Buffer.from(JSON.stringify({ createdAt: '2020-01-01T00:00:00Z', id: 'nope' })).toString('base64url'),
      Buffer.from('{"__proto__":{"x":1}}').toString('base64url'),
      '',
      ...known,
    ),
    nastyString,
  );
  return fc
    .array(fc.tuple(key, value), { maxLength: 4 })
    .map((pairs) =>
      pairs.length === 0
        ? ''
        : `?${pairs.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, '?'))}`).join('&')}`,
    );
}

interface Seeds {
  dev: string;
  admin: string;
  known: string[];
  bodies: Record<string, unknown>;
}

function requestArb(routes: Route[], seeds: Seeds): fc.Arbitrary<FuzzRequest> {
  const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];
  return fc.constantFrom(...routes).chain((route) => {
    const params = [...route.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
    const seed = seeds.bodies[`${route.method} ${route.path}`] ?? {};
    const jsonBody = fc.oneof(
      { weight: 4, arbitrary: fc.constant(seed) },
      {
        weight: 6,
        arbitrary: fc
          .tuple(
            fc.array(fc.nat(20), { minLength: 1, maxLength: 4 }),
            hostileJson,
            fc.option(fc.constantFrom(...PROTO_KEYS, 'extra', 'kind'), { nil: null }),
          )
          .map(([path, replacement, key]) => mutate(seed, path, replacement, key)),
      },
      { weight: 3, arbitrary: hostileJson },
    );
    const body = fc.oneof(
      { weight: route.body ? 1 : 4, arbitrary: fc.constant<Buffer | undefined>(undefined) },
      {
        weight: route.body ? 6 : 1,
        arbitrary: jsonBody.map((v) => Buffer.from(JSON.stringify(v) ?? 'null')),
      },
      { weight: 3, arbitrary: rawBodyText.map((t) => Buffer.from(t, 'utf8')) },
    );
    return fc
      .record({
        method: fc.oneof({ weight: 8, arbitrary: fc.constant(route.method) }, fc.constantFrom(...METHODS)),
        params: fc.tuple(...params.map(() => paramValue(seeds.known))),
        suffix: fc.oneof(
          { weight: 10, arbitrary: fc.constant('') },
          fc.constantFrom('/', '//', '/x', '/..', '/%2e%2e/admin', '.json', '%00', '?'),
        ),
        query: queryString(route, seeds.known),
        auth: authHeaders(seeds.dev, seeds.admin),
        contentType: fc.oneof(
          { weight: 6, arbitrary: fc.constant('application/json') },
          fc.constantFrom(...CONTENT_TYPES),
        ),
        body,
        extra: fc.dictionary(
          fc.constantFrom(
            'idempotency-key',
            'x-gpumesh-csrf',
            'accept',
            'content-encoding',
            'x-forwarded-for',
            'origin',
            'if-none-match',
            'range',
          ),
          fc.oneof(
            fc.constantFrom(
              'gzip',
              'br',
              '*/*',
              'text/html',
              'bytes=0-1',
              '1.2.3.4',
              'null',
              'a b',
              'k'.repeat(300),
            ),
            fc.stringMatching(/^[\x21-\x7e]{0,64}$/),
          ),
          { maxKeys: 3 },
        ),
      })
      .map((r) => {
        let path = route.path;
        params.forEach((name, i) => {
          path = path.replace(`{${name}}`, r.params[i]);
        });
        const headers: Record<string, string> = { ...r.extra, ...r.auth };
        if (r.body !== undefined) {
          if (r.contentType) headers['content-type'] = r.contentType;
          headers['content-length'] = String(r.body.length);
        }
        const shaped = r.method === route.method && r.suffix === '' && (route.body || r.body === undefined);
        return {
          method: r.method,
          path: `${path}${r.suffix}${r.query}`,
          headers,
          body: r.body,
          documented:
            shaped && route.statuses.length > 0
              ? { operation: `${route.method} ${route.path}`, statuses: route.statuses }
              : null,
        };
      });
  });
}

// ---------------------------------------------------------------------------------------------

describe('REST fuzzing with plain HTTP', () => {
  let c: TestCoordinator;
  let routes: Route[];
  let seeds: Seeds;

  beforeAll(async () => {
    c = await startTestCoordinator();
    routes = await loadRoutes(c.url);
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2),
    });
    expect(job.status).toBe(201);
    const account = await api<{ id: string; address: string }>(c.url, 'GET', '/v1/account', {
      key: c.devKey,
    });
    const spec = matmulSpec(2, 3, 2);
    seeds = {
      dev: c.devKey,
      admin: c.adminKey,
      known: [job.body.id, account.body.id, account.body.address, '1', 'index.html', 'assets'],
      bodies: {
        'POST /v1/jobs': spec,
        'POST /v1/jobs/dry-run': spec,
        'POST /v1/auth/api-keys': { name: 'fuzz', scopes: ['jobs:read'] },
        'POST /v1/auth/siwe': { message: 'x'.repeat(60), signature: `0x${'ab'.repeat(65)}` },
        'POST /v1/admin/session': { apiKey: c.adminKey },
        'PUT /v1/account/verification': { mode: 'redundant' },
        'POST /v1/artifacts': {
          format: 'layers',
          modelJson: {
            modelTopology: {},
            weightsManifest: [{ paths: ['w.bin'], weights: [{ name: 'k', shape: [2], dtype: 'float32' }] }],
          },
          weights: Buffer.alloc(8).toString('base64'),
        },
      },
    };
  });
  afterAll(async () => {
    await c?.close();
  });

  it('covers every documented route', () => {
    const documented = routes.filter((r) => !UNDOCUMENTED.includes(r));
    expect(documented.length).toBeGreaterThan(30);
    for (const path of [
      '/v1/jobs',
      '/v1/jobs/{id}',
      '/v1/admin/jobs',
      '/v1/auth/api-keys',
      '/v1/artifacts',
    ]) {
      expect(routes.some((r) => r.path === path)).toBe(true);
    }
  });

  it(`answers ${RUNS} random requests with no 5xx and an error envelope on every 4xx`, async () => {
    const sampled = fc.sample(requestArb(routes, seeds), { numRuns: RUNS, seed: SEED });
    const only = process.env.FUZZ_ONLY?.split(',').map(Number);
    const requests = only ? sampled.filter((_, i) => only.includes(i)) : sampled;
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    let resets = 0;
    let checked = 0;
    let next = 0;
    const worker = async (): Promise<void> => {
      for (;;) {
        const i = next++;
        if (i >= requests.length) return;
        const req = requests[i];
        const label = `#${i} ${req.method} ${req.path.slice(0, 160)} ${JSON.stringify(req.headers).slice(0, 200)} body=${req.body?.toString('utf8').slice(0, 200) ?? '-'}`;
        try {
          const res = await send(c.url, req);
          statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
          if (req.documented) checked += 1;
          if (req.documented && res.status !== 408 && !req.documented.statuses.includes(String(res.status))) {
            failures.push(`${res.status} is not documented for ${req.documented.operation} <- ${label}`);
          }
          if (res.status >= 500) failures.push(`${res.status} ${res.text.slice(0, 200)} <- ${label}`);
          else if (res.status >= 400 && res.status !== 408) {
            const problem = envelopeProblem(res, req.method);
            if (problem) failures.push(`${res.status} ${problem} <- ${label}`);
          }
        } catch (err) {
          const message = (err as Error).message;
          if (err instanceof NoResponse && message.startsWith('client refused')) continue;
          // A route without a body answers at once and may drop the connection while a client is
          // still uploading a body it never reads: the client sees a reset. That is the server
          // declining work, not failing; it must still answer the next request (checked below).
          if (req.body !== undefined && /aborted|ECONNRESET|socket hang up|EPIPE/.test(message)) {
            resets += 1;
            continue;
          }
          failures.push(`no response (${message}) <- ${label}`);
        }
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    // the server is still up and still serves an honest client
    const health = await api(c.url, 'GET', '/health/live');
    expect(health.status).toBe(200);
    const job = await api(c.url, 'POST', '/v1/jobs', { key: c.devKey, body: matmulSpec(2, 2, 2) });
    expect(job.status).toBe(201);
    expect(failures, `seed ${SEED}, statuses ${JSON.stringify([...statuses])}, resets ${resets}`).toEqual([]);
    expect(resets).toBeLessThan(Math.max(5, requests.length / 20));
    // many requests were shaped as their route documents, so their statuses were checked
    expect(checked).toBeGreaterThan(requests.length / 5);
    // the fuzzer reached past validation: some requests succeeded and many were refused
    const ok = [...statuses].filter(([s]) => s < 300).reduce((n, [, k]) => n + k, 0);
    const refused = [...statuses].filter(([s]) => s >= 400).reduce((n, [, k]) => n + k, 0);
    expect(ok).toBeGreaterThan(RUNS / 50);
    expect(refused).toBeGreaterThan(RUNS / 4);
  }, 120_000);
});
