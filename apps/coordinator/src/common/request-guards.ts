import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { toErrorBody } from './http-exception.filter.js';

/**
 * Deepest JSON nesting a request body may have. Recursive libraries (class-transformer in the
 * validation pipe, canonical JSON) overflow the stack at a few thousand levels; no valid body of
 * this API nests deeper than ~20 (model topologies included).
 */
export const MAX_BODY_DEPTH = 128;

/** Whether `value` nests objects/arrays more than `max` levels deep (iterative: no recursion). */
export function exceedsDepth(value: unknown, max: number): boolean {
  if (value === null || typeof value !== 'object') return false;
  const stack: [object, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop() as [object, number];
    if (depth > max) return true;
    const children = Array.isArray(node) ? (node as unknown[]) : Object.values(node);
    for (const child of children) {
      if (child !== null && typeof child === 'object') stack.push([child, depth + 1]);
    }
  }
  return false;
}

/** Sends the API's error envelope for an error Fastify raised itself (routing, parsing, plugins). */
export function replyWithError(logger: Logger, error: unknown, reply: FastifyReply): void {
  const body = toErrorBody(error);
  if (body.statusCode >= 500) logger.error({ err: error }, 'unhandled error');
  if (reply.sent || reply.raw.headersSent) return;
  void reply.status(body.statusCode).header('content-type', 'application/json; charset=utf-8').send(body);
}

/**
 * Errors Fastify answers before Nest sees the request get the API's error envelope too: a malformed
 * URL or over-long parameter (`frameworkErrors`, pass to the adapter), an error on a route a plugin
 * registered (CORS preflight, dashboard files). Unparsable JSON and bodies nested deeper than
 * `MAX_BODY_DEPTH` are refused with 400 after authentication (json-body.ts).
 */
export function registerRequestGuards(fastify: FastifyInstance, logger: Logger): void {
  const handler = (error: FastifyError, _request: FastifyRequest, reply: FastifyReply): void =>
    replyWithError(logger, error, reply);
  fastify.addHook('onRoute', (route) => {
    route.errorHandler ??= handler;
  });
}

/** The adapter's `frameworkErrors`: a malformed URL (400) or an over-long route parameter (414). */
export function frameworkErrors(
  logger: Logger,
): (error: FastifyError, request: FastifyRequest, reply: FastifyReply) => void {
  return (error, _request, reply) => replyWithError(logger, error, reply);
}
