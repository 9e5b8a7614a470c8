/** Every failure the API reports has a stable string code; `HttpExceptionFilter` maps codes to statuses. */
export const ERROR_STATUS = {
  VALIDATION_FAILED: 400,
  BAD_REQUEST: 400,
  UNAUTHENTICATED: 401,
  INVALID_API_KEY: 401,
  INVALID_SIGNATURE: 401,
  INVALID_NONCE: 401,
  SPENDING_CAP_SIGNATURE_INVALID: 400,
  SPENDING_CAP_STALE: 400,
  INSUFFICIENT_BALANCE: 402,
  SPENDING_CAP_EXCEEDED: 402,
  FORBIDDEN: 403,
  JOB_NOT_FOUND: 404,
  ARTIFACT_NOT_FOUND: 404,
  TENSOR_NOT_FOUND: 404,
  API_KEY_NOT_FOUND: 404,
  WEBHOOK_NOT_FOUND: 404,
  NOT_FOUND: 404,
  ILLEGAL_TRANSITION: 409,
  IDEMPOTENCY_CONFLICT: 409,
  RESULT_NOT_READY: 409,
  ESCROW_UNLOCK_PENDING: 409,
  TENSOR_IN_USE: 409,
  OUTPUT_EXPIRED: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  RATE_LIMITED: 429,
  SERVICE_UNAVAILABLE: 503,
} as const;

export type ErrorCode = keyof typeof ERROR_STATUS;

export class DomainError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details?: Record<string, unknown>,
  ) {
    super(message);
    this.name = 'DomainError';
  }

  get status(): number {
    return ERROR_STATUS[this.code];
  }
}
