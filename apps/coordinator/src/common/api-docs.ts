import { applyDecorators, type Type } from '@nestjs/common';
import {
  ApiExtraModels,
  ApiProduces,
  ApiProperty,
  ApiPropertyOptional,
  ApiResponse,
  ApiSchema,
  getSchemaPath,
} from '@nestjs/swagger';
import { CSV_MEDIA_TYPE } from './csv.js';

/** What `error` holds in every error response (`ErrorBody` in http-exception.filter.ts). */
@ApiSchema({ name: 'ErrorDetail' })
export class ErrorDetailDto {
  @ApiProperty({
    description:
      'stable string code: VALIDATION_FAILED, INVALID_JSON, UNAUTHENTICATED, INVALID_API_KEY, FORBIDDEN, ' +
      'INSUFFICIENT_BALANCE, SPENDING_CAP_EXCEEDED, JOB_NOT_FOUND, ILLEGAL_TRANSITION, RESULT_NOT_READY, ' +
      'PAYLOAD_TOO_LARGE, UNSUPPORTED_MEDIA_TYPE, RATE_LIMITED, … (each route lists the ones it returns)',
    example: 'JOB_NOT_FOUND',
  })
  code: string;
  @ApiProperty({
    description: 'what went wrong, naming the field when a field is wrong',
    example: 'inputs[0].shape: expected 2 dimensions',
  })
  message: string;
  @ApiPropertyOptional({
    type: 'object',
    additionalProperties: true,
    description: 'machine-readable specifics (e.g. `errors`, `missing`, `required` and `available`)',
  })
  details?: Record<string, unknown>;
}

/** The one error envelope of the API: every 4xx and 5xx response body. */
@ApiSchema({ name: 'ErrorResponse' })
export class ErrorResponseDto {
  @ApiProperty({ type: 'integer', description: 'the HTTP status, repeated', example: 404 })
  statusCode: number;
  @ApiProperty({ type: ErrorDetailDto }) error: ErrorDetailDto;
}

/** Error statuses a route may document with `ApiErrors`. */
export type ErrorStatus = 400 | 401 | 402 | 403 | 404 | 409 | 410 | 413 | 415 | 503;

/**
 * Documents the route-specific error responses of a route, all with the `ErrorResponse` body:
 * `@ApiErrors({ 404: 'JOB_NOT_FOUND', 409: 'ILLEGAL_TRANSITION: the job has already finished' })`.
 * What every route or every authenticated route can answer (400 on a malformed input, 401, 413,
 * 415, 429, 500) is added to the document where it is built (openapi.ts).
 */
export function ApiErrors(errors: Partial<Record<ErrorStatus, string>>): MethodDecorator & ClassDecorator {
  return applyDecorators(
    ...Object.entries(errors).map(([status, description]) =>
      ApiResponse({ status: Number(status), description, type: ErrorResponseDto }),
    ),
  );
}

/** A server-sent event stream (`text/event-stream`): each event's `data` is one JSON document. */
export function ApiEventStream(description: string): MethodDecorator {
  return applyDecorators(
    ApiProduces('text/event-stream'),
    ApiResponse({
      status: 200,
      description,
      content: {
        'text/event-stream': {
          schema: { type: 'string', description: 'server-sent events (`event:`, `id:`, `data:` lines)' },
        },
      },
    }),
  );
}

/**
 * A list route that answers JSON (`type`, or an array of `[type]`) by default and CSV to
 * `Accept: text/csv` (content negotiation, `negotiateMediaType` in common/accept.ts).
 */
export function ApiJsonOrCsv(type: Type<unknown> | [Type<unknown>], csv: string): MethodDecorator {
  const model = Array.isArray(type) ? type[0] : type;
  const json = Array.isArray(type)
    ? { type: 'array' as const, items: { $ref: getSchemaPath(model) } }
    : { $ref: getSchemaPath(model) };
  return applyDecorators(
    ApiExtraModels(model),
    ApiProduces('application/json', CSV_MEDIA_TYPE),
    ApiResponse({
      status: 200,
      description: `JSON; with \`Accept: text/csv\`, ${csv}`,
      content: {
        'application/json': { schema: json },
        [CSV_MEDIA_TYPE]: { schema: { type: 'string', example: 'id,state\r\n' } },
      },
    }),
  );
}
