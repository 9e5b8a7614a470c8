import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import type { Logger } from 'pino';
import { DomainError } from './domain-error.js';

export interface ErrorBody {
  statusCode: number;
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const HTTP_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  402: 'INSUFFICIENT_BALANCE',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  406: 'NOT_ACCEPTABLE',
  408: 'REQUEST_TIMEOUT',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  414: 'URI_TOO_LONG',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  431: 'HEADERS_TOO_LARGE',
  429: 'RATE_LIMITED',
  503: 'SERVICE_UNAVAILABLE',
};

const BODY_TOO_LARGE = 'request body is larger than the limit of this route';

interface FastifyLikeError {
  statusCode?: number;
  code?: string;
  message?: string;
}

function isFastifyClientError(err: unknown): err is FastifyLikeError {
  if (typeof err !== 'object' || err === null) return false;
  const status = (err as FastifyLikeError).statusCode;
  return typeof status === 'number' && status >= 400 && status < 500;
}

/** Maps a thrown value to the HTTP status and body the client sees. Exported for unit tests. */
export function toErrorBody(exception: unknown): ErrorBody {
  if (exception instanceof DomainError) {
    return {
      statusCode: exception.status,
      error: { code: exception.code, message: exception.message, details: exception.details },
    };
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse();
    let message = exception.message;
    let details: Record<string, unknown> | undefined;
    if (typeof response === 'object' && response !== null && 'message' in response) {
      const raw = (response as { message: unknown }).message;
      if (Array.isArray(raw)) {
        message = raw.map(String).join('; ');
        details = { errors: raw };
      } else if (typeof raw === 'string') {
        message = raw;
      }
    }
    const code =
      status === HttpStatus.BAD_REQUEST && details
        ? 'VALIDATION_FAILED'
        : (HTTP_CODES[status] ?? 'HTTP_ERROR');
    if (status === HttpStatus.PAYLOAD_TOO_LARGE) message = BODY_TOO_LARGE;
    return { statusCode: status, error: { code, message, details } };
  }
  if (isFastifyClientError(exception)) {
    const status = exception.statusCode as number;
    const code =
      exception.code === 'FST_ERR_CTP_INVALID_JSON_BODY'
        ? 'INVALID_JSON'
        : (HTTP_CODES[status] ?? 'BAD_REQUEST');
    let message = exception.message ?? 'bad request';
    if (status === 413) message = BODY_TOO_LARGE;
    if (exception.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE')
      message = 'unsupported Content-Type; send application/json';
    return { statusCode: status, error: { code, message } };
  }
  return { statusCode: 500, error: { code: 'INTERNAL', message: 'internal error' } };
}

@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  constructor(private readonly logger: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const body = toErrorBody(exception);
    if (body.statusCode >= 500) {
      this.logger.error({ err: exception }, 'unhandled error');
    }
    if (reply.sent || reply.raw.headersSent) return;
    void reply.status(body.statusCode).header('content-type', 'application/json; charset=utf-8').send(body);
  }
}
