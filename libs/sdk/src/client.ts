import type {
  AccountDto,
  DryRunDto,
  ErrorResponse,
  JobDetailDto,
  JobDto,
  JobResultDto,
  JobSubmission,
} from './generated.js';

/** An error answer from the API, with its envelope `{ statusCode, error: { code, message, details } }`. */
export class GpumeshApiError extends Error {
  readonly statusCode: number;
  readonly code: string;
  readonly body: ErrorResponse;
  constructor(body: ErrorResponse) {
    super(`${body.statusCode} ${body.error.code}: ${body.error.message}`);
    this.name = 'GpumeshApiError';
    this.statusCode = body.statusCode;
    this.code = body.error.code;
    this.body = body;
  }
}

export interface GpumeshClientOptions {
  baseUrl: string;
  apiKey: string;
}

/** A thin client over the REST API; types come from docs/openapi.json. */
export class GpumeshClient {
  private readonly baseUrl: string;
  constructor(private readonly options: GpumeshClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.baseUrl}${path}`, {
      method,
      headers: {
        authorization: `Bearer ${this.options.apiKey}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    const parsed: unknown = text ? JSON.parse(text) : undefined;
    if (!res.ok) {
      const envelope = parsed as Partial<ErrorResponse> | undefined;
      throw new GpumeshApiError(
        envelope?.error
          ? (envelope as ErrorResponse)
          : { statusCode: res.status, error: { code: 'HTTP_ERROR', message: text || res.statusText } },
      );
    }
    return parsed as T;
  }

  submit(spec: JobSubmission): Promise<JobDto> {
    return this.request('POST', '/v1/jobs', spec);
  }
  dryRun(spec: JobSubmission): Promise<DryRunDto> {
    return this.request('POST', '/v1/jobs/dry-run', spec);
  }
  job(id: string): Promise<JobDetailDto> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }
  cancel(id: string): Promise<JobDto> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }
  result(id: string): Promise<JobResultDto> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/result`);
  }
  account(): Promise<AccountDto> {
    return this.request('GET', '/v1/account');
  }
}
