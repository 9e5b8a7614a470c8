// The OpenAPI document: valid (swagger-parser, redocly), checked in and current, every route of the
// Nest router in it with a typed success response and the one error body, and the README's request
// bodies valid against it. Built without PostgreSQL or Redis (openapi.ts, Nest's preview mode).
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import SwaggerParser from '@apidevtools/swagger-parser';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants.js';
import { RequestMethod, type INestApplication } from '@nestjs/common';
import { ModulesContainer } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OPENAPI_FILE, createDocumentOnlyApp, createOpenApiDocument, serializeOpenApi } from './openapi.js';

const ROOT = new URL('../../../', import.meta.url).pathname;
const ERROR_REF = '#/components/schemas/ErrorResponse';

/** Error statuses whose body is not the error envelope, with why. */
const NOT_ENVELOPED: Record<string, string> = {
  // the readiness report itself, with the failing check in it
  'GET /health 503': 'HealthReport',
};

type Json = Record<string, unknown>;
interface Operation {
  responses: Record<string, { content?: Record<string, { schema?: Json }> }>;
  security?: Record<string, string[]>[];
  requestBody?: { content?: Record<string, { schema?: Json }> };
}

interface Route {
  method: string;
  /** OpenAPI template: /v1/jobs/{id} */
  path: string;
}

/** Every route the Nest router serves from a controller the document does not exclude. */
function nestRoutes(app: INestApplication): Route[] {
  const routes: Route[] = [];
  for (const module of app.get(ModulesContainer).values()) {
    for (const wrapper of module.controllers.values()) {
      const controller = wrapper.metatype as (new (...args: never[]) => object) | null;
      if (!controller || Reflect.getMetadata('swagger/apiExcludeController', controller)) continue;
      const base = [Reflect.getMetadata(PATH_METADATA, controller) as string].flat()[0] ?? '';
      const proto = controller.prototype as Record<string, unknown>;
      for (const name of Object.getOwnPropertyNames(proto)) {
        const handler = proto[name];
        if (typeof handler !== 'function' || name === 'constructor') continue;
        const method = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
        if (method === undefined) continue;
        const sub = [Reflect.getMetadata(PATH_METADATA, handler) as string].flat()[0] ?? '';
        const path = `/${base}/${sub}`.replace(/\/+/g, '/').replace(/(.)\/$/, '$1');
        routes.push({
          method: RequestMethod[method].toLowerCase(),
          path: path.replace(/:(\w+)/g, '{$1}'),
        });
      }
    }
  }
  return routes;
}

function schemaOf(response: { content?: Record<string, { schema?: Json }> }): Json | undefined {
  return Object.values(response.content ?? {})[0]?.schema;
}

/** A schema a generated client can type: a named schema, an array of one, or one with properties. */
function isTyped(schema: Json | undefined): boolean {
  if (!schema) return false;
  if (typeof schema.$ref === 'string') return true;
  if (schema.type === 'array') return isTyped(schema.items as Json | undefined);
  if (schema.type === 'string') return true;
  for (const union of ['oneOf', 'anyOf'] as const) {
    const members = schema[union] as Json[] | undefined;
    if (members)
      return members.some((m) => m.type !== 'null') && members.every((m) => m.type === 'null' || isTyped(m));
  }
  return typeof schema.properties === 'object' && Object.keys(schema.properties as Json).length > 0;
}

describe('the OpenAPI document', () => {
  let app: INestApplication;
  let doc: OpenAPIObject;
  let dir: string;
  let file: string;

  beforeAll(async () => {
    app = await createDocumentOnlyApp();
    doc = createOpenApiDocument(app);
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-openapi-'));
    file = join(dir, 'openapi.json');
    await writeFile(file, serializeOpenApi(doc));
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`is the checked-in ${OPENAPI_FILE} (else: npm run openapi)`, async () => {
    const checkedIn = await readFile(join(ROOT, OPENAPI_FILE), 'utf8');
    expect(checkedIn === serializeOpenApi(doc), `${OPENAPI_FILE} is stale: run npm run openapi`).toBe(true);
  });

  it('is valid OpenAPI 3.1 for swagger-parser', async () => {
    expect(doc.openapi).toBe('3.1.0');
    await expect(SwaggerParser.validate(structuredClone(doc) as never)).resolves.toBeTruthy();
  });

  it('passes redocly lint (redocly.yaml) with no errors and no warnings', async () => {
    const bin = join(ROOT, 'node_modules/.bin/redocly');
    const { stdout } = await promisify(execFile)(
      bin,
      ['lint', file, '--config', join(ROOT, 'redocly.yaml'), '--format', 'json'],
      { env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true' } },
    ).catch((err: { stdout?: string }) => ({ stdout: err.stdout ?? '' }));
    const report = JSON.parse(stdout.slice(stdout.indexOf('{'))) as {
      totals: { errors: number; warnings: number };
      problems: { ruleId: string; message: string; location: { pointer: string }[] }[];
    };
    const problems = report.problems.map((p) => `${p.ruleId} ${p.location[0]?.pointer}: ${p.message}`);
    expect(problems).toEqual([]);
    expect(report.totals).toMatchObject({ errors: 0, warnings: 0 });
  });

  it('has every route of the Nest router, each with a typed success and only ErrorResponse errors', () => {
    const routes = nestRoutes(app);
    expect(routes.length).toBeGreaterThan(50);
    const problems: string[] = [];
    const paths = doc.paths as Record<string, Record<string, Operation>>;
    for (const { method, path } of routes) {
      const label = `${method.toUpperCase()} ${path}`;
      const op = paths[path]?.[method];
      if (!op) {
        problems.push(`${label}: not in the document`);
        continue;
      }
      const statuses = Object.keys(op.responses);
      const success = statuses.filter((s) => /^2\d\d$/.test(s));
      if (success.length === 0) problems.push(`${label}: no success response`);
      for (const status of success) {
        if (status !== '204' && !isTyped(schemaOf(op.responses[status]))) {
          problems.push(`${label} ${status}: untyped body`);
        }
      }
      const errors = statuses.filter((s) => /^[45]\d\d$/.test(s));
      if (!errors.some((s) => s.startsWith('4'))) problems.push(`${label}: no 4xx documented`);
      for (const status of errors) {
        const key = `${label} ${status}`;
        const ref = schemaOf(op.responses[status])?.$ref;
        const expected = NOT_ENVELOPED[key] ? `#/components/schemas/${NOT_ENVELOPED[key]}` : ERROR_REF;
        if (ref !== expected) problems.push(`${key}: body ${String(ref)}, expected ${expected}`);
      }
      const security = op.security ?? [];
      const required = security.length > 0 && security.every((s) => Object.keys(s).length > 0);
      if (required && !op.responses['401']) {
        problems.push(`${label}: authenticated but no 401`);
      }
      if (op.requestBody && !isTyped(schemaOf(op.requestBody))) problems.push(`${label}: untyped request`);
    }
    expect(problems).toEqual([]);
    // and nothing in the document that the router does not serve
    const served = new Set(routes.map((r) => `${r.method} ${r.path}`));
    const documented = Object.entries(paths).flatMap(([path, ops]) =>
      Object.keys(ops).map((m) => `${m} ${path}`),
    );
    expect(documented.filter((d) => !served.has(d))).toEqual([]);
  });

  it('has no schema a client would type as unknown (an empty schema or an object without properties)', () => {
    const untyped: string[] = [];
    const walk = (schema: unknown, at: string): void => {
      if (typeof schema !== 'object' || schema === null) return;
      const s = schema as Json;
      const types = [s.type].flat();
      if (Object.keys(s).length === 0) untyped.push(at);
      if (types.includes('object') && !s.properties && !s.additionalProperties) untyped.push(at);
      for (const [name, child] of Object.entries((s.properties ?? {}) as Json)) walk(child, `${at}.${name}`);
      walk(s.items, `${at}[]`);
      if (typeof s.additionalProperties === 'object') walk(s.additionalProperties, `${at}{}`);
      for (const union of ['oneOf', 'anyOf', 'allOf'] as const) {
        ((s[union] ?? []) as unknown[]).forEach((m, i) => walk(m, `${at}.${union}[${i}]`));
      }
    };
    for (const [name, schema] of Object.entries(doc.components?.schemas ?? {})) walk(schema, name);
    expect(untyped).toEqual([]);
  });

  it('accepts the request bodies of the README', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const submitted = /-d '(\{[\s\S]*?\})'/.exec(readme)?.[1];
    const verification = /`\{ \.\.\.spec, "verification": (\{[^`]*\}) \}`/.exec(readme)?.[1];
    expect(submitted, 'the README submits a job with curl -d').toBeDefined();
    expect(verification, 'the README shows a verification policy').toBeDefined();
    const body = JSON.parse(submitted as string) as Json;
    const ajv = new Ajv2020({ strict: false });
    const validate = ajv.compile({ $ref: '#/components/schemas/JobSubmission', components: doc.components });
    const check = (value: unknown): string => (validate(value) ? 'valid' : ajv.errorsText(validate.errors));
    expect(check(body)).toBe('valid');
    expect(check({ ...body, verification: JSON.parse(verification as string) as Json })).toBe('valid');
    expect(check({ jobs: [body] })).not.toBe('valid');
    const batch = ajv.compile({
      $ref: '#/components/schemas/BatchJobSubmission',
      components: doc.components,
    });
    expect(batch({ jobs: [body, body] })).toBe(true);
  });
});
