import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { DomainError } from './domain-error.js';
import { MAX_BODY_DEPTH, exceedsDepth } from './request-guards.js';

/**
 * A JSON body that cannot be used (not JSON, empty, a `__proto__` key, nested too deep). The parser
 * does not fail the request with it: it leaves this in `request.body`, and `UnusableBodyGuard` raises
 * `error` once the authentication guard has passed. So a request without valid credentials gets 401
 * whatever its body, and nothing of an unauthenticated body is reported back.
 */
export class UnusableBody {
  constructor(readonly error: unknown) {}
}

type ParserDone = (err: Error | null, body?: unknown) => void;

/**
 * The `application/json` parser (pass to `useBodyParser`): Fastify's own secure parser, which refuses
 * `__proto__` keys (prototype poisoning), with `constructor` keys accepted as plain data (`JSON.parse`
 * makes them own properties; the default would refuse `{"constructor": {"prototype": …}}`). Its
 * failures, and bodies nested deeper than MAX_BODY_DEPTH, become an `UnusableBody`.
 */
export function jsonBodyParser(
  fastify: FastifyInstance,
): (request: FastifyRequest, body: Buffer, done: ParserDone) => void {
  const parse = fastify.getDefaultJsonParser('error', 'ignore');
  return (request, body, done) => {
    void parse(request, body.toString('utf8'), (err: Error | null, value?: unknown) => {
      if (err) return done(null, new UnusableBody(err));
      if (exceedsDepth(value, MAX_BODY_DEPTH)) {
        return done(
          null,
          new UnusableBody(
            new DomainError('VALIDATION_FAILED', `body: nested more than ${MAX_BODY_DEPTH} levels deep`),
          ),
        );
      }
      done(null, value);
    });
  };
}

/**
 * Raises the error of an `UnusableBody` after authentication: a global guard registered after
 * `AuthGuard` (global guards run in order). A guard rather than an interceptor, because an
 * interceptor defers the handler into the response stream, and a server-sent-events route then
 * cannot set its status (a resumed, finished stream's 204) before the stream's headers go out.
 */
@Injectable()
export class UnusableBodyGuard implements CanActivate {
  canActivate(context: ExecutionContext): boolean {
    const body = context.switchToHttp().getRequest<{ body?: unknown }>().body;
    if (body instanceof UnusableBody) throw body.error;
    return true;
  }
}
