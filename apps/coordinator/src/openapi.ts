import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import type { INestApplication } from '@nestjs/common';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { z } from 'zod';
import { jobSpecJsonSchema } from '@gpumesh/protocol';
import { AppModule } from './app.module.js';
import { loadConfig } from './config/config.js';
import { createLogger } from './logging/logger.js';
import { ADMIN_COOKIE } from './admin/admin-session.js';
import { VerificationPolicySchema } from './settings/settings.js';
import { ErrorResponseDto } from './common/api-docs.js';
import { MAX_BATCH_SUBMIT } from './jobs/jobs.service.js';

/** Where the document is checked in (`npm run openapi` writes it; a test fails when it is stale). */
export const OPENAPI_FILE = 'docs/openapi.json';

/** The server of the checked-in document: `npm start`'s coordinator. A served document names its own URL. */
export const DEFAULT_SERVER_URL = 'http://127.0.0.1:8080';

const ERROR_REF = '#/components/schemas/ErrorResponse';

/** The security schemes: an API key or SIWE session as a bearer token or `x-api-key`, the dashboard cookie. */
const SECURITY_SCHEMES = {
  bearer: {
    type: 'http',
    scheme: 'bearer',
    description: 'an API key (gmk_…) or a SIWE session token (gms_…): `Authorization: Bearer <token>`',
  },
  apiKey: {
    type: 'apiKey',
    in: 'header',
    name: 'x-api-key',
    description: 'the same API key in the `x-api-key` header instead',
  },
  [ADMIN_COOKIE]: {
    type: 'apiKey',
    in: 'cookie',
    name: ADMIN_COOKIE,
    description:
      'the dashboard session cookie (POST /v1/admin/session); changes made with it also need the x-gpumesh-csrf header',
  },
} as const;

/** The descriptions of the error responses every route (or every route of a kind) can give. */
const COMMON_ERRORS: Record<string, string> = {
  '400':
    'VALIDATION_FAILED or INVALID_JSON: a path parameter, query parameter or body is malformed (the message names the field)',
  '401':
    'UNAUTHENTICATED or INVALID_API_KEY: credentials are missing, malformed, unknown, revoked or expired',
  '413': 'PAYLOAD_TOO_LARGE: the body is larger than this route accepts (MAX_BODY_BYTES, default 8 MiB)',
  '414': 'URI_TOO_LONG: a path parameter is longer than any valid value',
  '415': 'UNSUPPORTED_MEDIA_TYPE: a request with a body must send Content-Type: application/json',
  '429': 'RATE_LIMITED: too many requests from this IP address or with this key (see Retry-After)',
  '500': 'INTERNAL: an unexpected server error (logged; retry later)',
};

type Json = Record<string, unknown>;

interface Operation {
  parameters?: { in: string }[];
  requestBody?: unknown;
  responses: Record<string, Json>;
  security?: Record<string, string[]>[];
}

/** Builds the OpenAPI 3.1 document of a created (not necessarily started) coordinator application. */
export function createOpenApiDocument(app: INestApplication, serverUrl = DEFAULT_SERVER_URL): OpenAPIObject {
  const document = SwaggerModule.createDocument(
    app,
    new DocumentBuilder()
      .setOpenAPIVersion('3.1.0')
      .setTitle('gpumesh coordinator')
      .setDescription(
        'Submit GPU jobs, follow them live, and manage your account and API keys. Every error response has the body `ErrorResponse`: `{ "statusCode", "error": { "code", "message", "details" } }`.',
      )
      .setVersion('1')
      .setLicense('Apache-2.0', 'https://www.apache.org/licenses/LICENSE-2.0')
      .addServer(
        serverUrl,
        serverUrl === DEFAULT_SERVER_URL ? 'a local coordinator (npm start)' : 'this coordinator',
      )
      .build(),
    { extraModels: [ErrorResponseDto] },
  );
  return finishDocument(document);
}

/**
 * The coordinator application with every controller (role all) in Nest's preview mode: modules and
 * controllers are scanned, no provider is instantiated, so nothing needs PostgreSQL, Redis or a chain.
 * Enough to build the document; close it after.
 */
export async function createDocumentOnlyApp(): Promise<INestApplication> {
  const config = loadConfig({ LOG_LEVEL: 'silent', DATABASE_URL: 'postgresql://127.0.0.1/none' });
  return NestFactory.create(
    AppModule.forRoot({
      config,
      endpoints: {
        databaseUrl: 'postgresql://127.0.0.1/none',
        databasePoolSize: 1,
        redisUrl: 'redis://127.0.0.1:6379',
        embeddedDatabase: false,
        embeddedRedis: false,
      },
      logger: createLogger('silent'),
      chain: null,
      documentOnly: true,
    }),
    new FastifyAdapter(),
    { preview: true, logger: false, abortOnError: false },
  );
}

/** The document as `npm run openapi` writes it, built without PostgreSQL, Redis or a chain. */
export async function buildOpenApiDocument(): Promise<OpenAPIObject> {
  const app = await createDocumentOnlyApp();
  try {
    return createOpenApiDocument(app);
  } finally {
    await app.close();
  }
}

/** The document as the checked-in file holds it. */
export function serializeOpenApi(document: OpenAPIObject): string {
  return `${JSON.stringify(document, null, 2)}\n`;
}

/** The job spec schemas (from the zod validator), the submission (spec + verification) and the errors. */
function jobSchemas(): Record<string, Json> {
  const spec = stripSchemaKeyword(jobSpecJsonSchema());
  const branches = (spec.oneOf ?? []) as Json[];
  const policy = stripSchemaKeyword(
    z.toJSONSchema(VerificationPolicySchema, { io: 'input', unrepresentable: 'any' }) as Json,
  );
  const schemas: Record<string, Json> = {
    VerificationPolicyRequest: {
      ...policy,
      description:
        "a job's verification policy: none (one provider) or redundant on k distinct operators, plus a canary rate; `verified` asks for a checked result even with one copy",
    },
  };
  const submissionRefs: Record<string, string> = {};
  for (const branch of branches) {
    const properties = { ...(branch.properties as Record<string, Json>) };
    const kind = (properties.kind as { const?: string }).const;
    if (!kind) throw new Error('job spec schema: a branch without a kind');
    // a property no value satisfies (`model` of a matmul) is simply not allowed
    for (const [name, schema] of Object.entries(properties)) {
      if (Object.keys(schema).length === 0) delete properties[name];
    }
    const title = `${kind[0].toUpperCase()}${kind.slice(1)}`;
    schemas[`${title}JobSubmission`] = {
      ...branch,
      properties: {
        ...properties,
        inputs: inputsByValueOrRef(properties.inputs),
        verification: { $ref: '#/components/schemas/VerificationPolicyRequest' },
      },
      description: `a ${kind} job spec as submitted: the spec, and optionally its verification policy`,
    };
    submissionRefs[kind] = `#/components/schemas/${title}JobSubmission`;
  }
  const union = (refs: Record<string, string>, description: string): Json => ({
    description,
    oneOf: Object.values(refs).map(($ref) => ({ $ref })),
    discriminator: { propertyName: 'kind', mapping: refs },
  });
  schemas.JobSubmission = union(
    submissionRefs,
    'what POST /v1/jobs takes: a job spec, with an optional `verification` policy beside it',
  );
  schemas.BatchJobSubmission = {
    type: 'object',
    description: 'what POST /v1/jobs/batch takes',
    required: ['jobs'],
    properties: {
      jobs: {
        type: 'array',
        minItems: 1,
        maxItems: MAX_BATCH_SUBMIT,
        items: { $ref: '#/components/schemas/JobSubmission' },
      },
    },
    additionalProperties: false,
  };
  return schemas;
}

/** A submission's inputs: inline tensors, or `{ name, ref }` naming a tensor of the account (uploaded, or an earlier job's output by ref). */
function inputsByValueOrRef(inputs: Json): Json {
  const byRef: Json = {
    type: 'object',
    description:
      'a tensor of yours by its ref: uploaded (POST /v1/tensors), or an output by ref of one of your completed jobs',
    required: ['name', 'ref'],
    additionalProperties: false,
    properties: {
      name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[A-Za-z0-9_.:/-]+$' },
      ref: { type: 'string', pattern: '^sha256:[0-9a-f]{64}$' },
    },
  };
  // The spec schema's items are inline tensors or the stored form of a ref ({ name, ref, dtype, shape,
  // sha256 }, which the coordinator writes); a client sends the inline form or { name, ref }.
  const items = inputs.items as Json;
  const inline = Array.isArray(items.anyOf) ? (items.anyOf[0] as Json) : items;
  return { ...inputs, items: { oneOf: [inline, byRef] } };
}

/**
 * Every time in the API is an ISO 8601 string, and every property holding one is named `…At` (or
 * `at`): say so in the document (`format: date-time`), so generated clients can parse them as dates.
 * The conformance test validates real answers against the format.
 */
function markTimestamps(schema: Json): void {
  const props = schema.properties as Record<string, Json> | undefined;
  for (const [name, prop] of Object.entries(props ?? {})) {
    const type = prop.type;
    const stringy = type === 'string' || (Array.isArray(type) && type.includes('string'));
    if (
      stringy &&
      prop.format === undefined &&
      prop.enum === undefined &&
      /^(at|[a-z][A-Za-z]*At)$/.test(name)
    )
      prop.format = 'date-time';
    markTimestamps(prop);
    if (prop.items && typeof prop.items === 'object') markTimestamps(prop.items as Json);
  }
}

/** `$schema` is a JSON Schema document keyword: not allowed inside an OpenAPI schema object. */
function stripSchemaKeyword(schema: Json): Json {
  const copy: Json = { ...schema };
  delete copy.$schema;
  return copy;
}

/**
 * What the decorators cannot say: the job schemas, the security schemes and each operation's
 * security, and the error responses that come from the transport rather than the route (malformed
 * input, credentials, body size and type, rate limits, internal errors), all with the one error body.
 */
function finishDocument(document: OpenAPIObject): OpenAPIObject {
  const components = (document.components ??= {});
  components.schemas = { ...components.schemas, ...jobSchemas() };
  for (const schema of Object.values(components.schemas)) markTimestamps(schema as Json);
  components.securitySchemes = { ...SECURITY_SCHEMES };
  const error = { 'application/json': { schema: { $ref: ERROR_REF } } };
  for (const operations of Object.values(document.paths)) {
    for (const [method, value] of Object.entries(operations as Record<string, unknown>)) {
      if (!['get', 'put', 'post', 'delete', 'patch'].includes(method)) continue;
      const op = value as Operation;
      const sent = op.security ?? [];
      const has = (name: string): boolean => sent.some((s) => name in s);
      op.security = [
        // `{}`: credentials are optional (checked when sent)
        ...(sent.some((s) => Object.keys(s).length === 0) ? [{}] : []),
        ...(has('bearer') ? [{ bearer: [] }, { apiKey: [] }] : []),
        ...(has(ADMIN_COOKIE) ? [{ [ADMIN_COOKIE]: [] }] : []),
      ];
      const secured = op.security.some((s) => Object.keys(s).length > 0);
      const params = op.parameters ?? [];
      const add = (status: string, when: boolean): void => {
        if (when && !op.responses[status]) {
          op.responses[status] = { description: COMMON_ERRORS[status], content: error };
        }
      };
      add('400', op.requestBody !== undefined || params.some((p) => p.in === 'path' || p.in === 'query'));
      // optional credentials (`{}`): a route that checks them documents its 401 itself
      add('401', secured && !op.security.some((s) => Object.keys(s).length === 0));
      add('413', op.requestBody !== undefined);
      add(
        '414',
        params.some((p) => p.in === 'path'),
      );
      add('415', op.requestBody !== undefined);
      add('429', true);
      op.responses['429'].headers ??= {
        'Retry-After': { description: 'seconds until the window resets', schema: { type: 'integer' } },
      };
      add('500', true);
      op.responses = Object.fromEntries(Object.entries(op.responses).sort(([a], [b]) => a.localeCompare(b)));
    }
  }
  return document;
}
