import { FastifyAdapter } from '@nestjs/platform-fastify';
import { describe, expect, it } from 'vitest';
import { DomainError } from './domain-error.js';
import { UnusableBody, jsonBodyParser } from './json-body.js';
import { MAX_BODY_DEPTH } from './request-guards.js';

/** A bare Fastify with the coordinator's JSON parser; the route echoes what the parser made of the body. */
async function parsed(payload: string): Promise<unknown> {
  // The Fastify instance the coordinator's adapter makes (fastify is not a direct dependency).
  const app = new FastifyAdapter().getInstance();
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, jsonBodyParser(app));
  let body: unknown;
  app.post('/', async (request) => {
    body = request.body;
    return {};
  });
  const res = await app.inject({
    method: 'POST',
    url: '/',
    payload,
    headers: { 'content-type': 'application/json' },
  });
  await app.close();
  expect(res.statusCode).toBe(200); // the parser itself never fails a request
  return body;
}

describe('jsonBodyParser', () => {
  it('keeps constructor keys as plain data', async () => {
    const body = (await parsed('{"constructor":{"prototype":{"x":1}},"a":[1,{"constructor":2}]}')) as Record<
      string,
      unknown
    >;
    expect(Object.keys(body)).toEqual(['constructor', 'a']);
    expect(body.constructor).toEqual({ prototype: { x: 1 } });
    expect(Object.getPrototypeOf(body)).toBe(Object.prototype);
  });

  it('turns invalid JSON, an empty body and __proto__ keys into an UnusableBody carrying the 400', async () => {
    for (const payload of ['{"a":', '', '{"a":{"__proto__":{"polluted":true}}}']) {
      const body = await parsed(payload);
      expect(body, payload).toBeInstanceOf(UnusableBody);
      expect((body as UnusableBody).error).toMatchObject({ statusCode: 400 });
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('turns a body nested past MAX_BODY_DEPTH into an UnusableBody, and keeps one at the limit', async () => {
    const deep = await parsed('['.repeat(MAX_BODY_DEPTH + 1) + ']'.repeat(MAX_BODY_DEPTH + 1));
    expect((deep as UnusableBody).error).toBeInstanceOf(DomainError);
    expect(((deep as UnusableBody).error as DomainError).code).toBe('VALIDATION_FAILED');
    expect(await parsed('['.repeat(MAX_BODY_DEPTH) + ']'.repeat(MAX_BODY_DEPTH))).toBeInstanceOf(Array);
  });
});
