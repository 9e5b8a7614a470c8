import type {
  AccountDto,
  AccountLedgerPageDto,
  CreatedApiKeyDto,
  DryRunDto,
  ErrorResponse,
  JobDetailDto,
  JobDto,
  JobEventDto,
  JobPageDto,
  JobResultDto,
  JobSubmission,
  NonceResponseDto,
  SessionResponseDto,
  SpendingCapDto,
  TensorDto,
  UploadedTensorDto,
  TensorPageDto,
  DeletedTensorDto,
} from './generated.js';
import { fromNpy } from './npy.js';
import { canRequestPlainly, plainHttpRequest, toResponse } from './plain-http.js';
import { RETRYABLE_STATUSES, backoffMs, retryAfterMs, sleep } from './retry.js';
import { signSignIn } from './sign-in.js';
import { signSpendingCap } from './spending-cap.js';
import { SseParser } from './sse.js';
import { tensorBytes } from './tensor.js';
import type { WalletSigner } from './wallet.js';

/** The media type of NumPy's `.npy` files, as the API takes and serves them. */
const NPY_MEDIA_TYPE = 'application/x-npy';

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

/** The states a job never leaves. */
export const TERMINAL_JOB_STATES: ReadonlySet<string> = new Set([
  'COMPLETED',
  'FAILED',
  'CANCELLED',
  'EXPIRED',
]);

export interface GpumeshClientOptions {
  baseUrl: string;
  /** An API key, or a session token from sign-in (enough for the auth routes). */
  apiKey: string;
  /** Tries after a 429 or 503 answer before giving up (default 4). */
  maxRetries?: number;
  /** The longest wait before a retry or an event-stream reconnection, in ms (default 30 s). */
  maxRetryDelayMs?: number;
  /**
   * The fetch to use (default: the global one). Given, every request goes through it; otherwise, on
   * Node, tensor uploads and `.npy` downloads to and from a plain-http coordinator use the socket
   * directly (several times faster than fetch for large tensors).
   */
  fetch?: typeof fetch;
}

export interface EventsOptions {
  /** Resume after this event id (what the stream sent as `id:`); the whole history without it. */
  lastEventId?: string;
  signal?: AbortSignal;
  /** Reconnections in a row without a new event before giving up (default 8). */
  maxReconnects?: number;
  /** Called before each reconnection, with the attempt number and the wait in ms. */
  onReconnect?: (attempt: number, delayMs: number) => void;
}

export interface WaitOptions {
  /** Give up after this long (rejects with a TimeoutError); no limit without it. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface ListJobsQuery {
  state?: string;
  kind?: 'matmul' | 'inference' | 'train';
  limit?: number;
  cursor?: string;
}

export interface RequestOptions {
  /** A JSON body. */
  body?: unknown;
  /**
   * A binary body, sent as is (with its `content-type` in `headers`). A `Blob` (a browser `File`,
   * Node's `fs.openAsBlob(path)`) is streamed from its source, never held whole, and can be sent
   * again when a 429/503 is retried.
   */
  bytes?: Uint8Array | Blob;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A `.npy` file as it arrives, and its length in bytes when the server said it. */
export interface NpyStream {
  body: ReadableStream<Uint8Array>;
  bytes: number | null;
}

/** The first reconnection waits the server's `retry:` hint (or this), doubling while nothing arrives. */
const DEFAULT_RECONNECT_MS = 500;
const DEFAULT_MAX_RECONNECTS = 8;

/** A thin client over the REST API; types come from docs/openapi.json. */
export class GpumeshClient {
  readonly baseUrl: string;
  private readonly maxRetries: number;
  private readonly maxRetryDelayMs: number;
  private readonly fetchFn: typeof fetch;

  constructor(private readonly options: GpumeshClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.maxRetries = options.maxRetries ?? 4;
    this.maxRetryDelayMs = options.maxRetryDelayMs ?? 30_000;
    this.fetchFn = options.fetch ?? fetch;
  }

  /** The key this client sends (for storing it; never print it). */
  get apiKey(): string {
    return this.options.apiKey;
  }

  /**
   * A response, after retrying 429 and 503 answers as Retry-After says. Binary bodies and `.npy`
   * downloads (`download`: arrays of `chunkBytes`, WHOLE for one) go over the socket directly where
   * canRequestPlainly, unless the caller gave a fetch of its own; fetch takes what that leaves to it.
   */
  private async send(
    method: string,
    path: string,
    options: RequestOptions = {},
    download?: { chunkBytes?: number },
  ): Promise<Response> {
    const headers: Record<string, string> = {
      ...(this.options.apiKey ? { authorization: `Bearer ${this.options.apiKey}` } : {}),
      ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
      ...options.headers,
    };
    const body = options.bytes ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
    const href = `${this.baseUrl}${path}`;
    const direct =
      this.options.fetch === undefined && (download !== undefined || options.bytes !== undefined)
        ? new URL(href)
        : null;
    const plainly = direct !== null && canRequestPlainly(direct);
    for (let attempt = 1; ; attempt++) {
      const answer = plainly
        ? await plainHttpRequest(direct, {
            method,
            headers,
            body: options.bytes,
            signal: options.signal,
            chunkBytes: download?.chunkBytes,
          })
        : null;
      const res =
        answer?.kind === 'answer'
          ? toResponse(answer)
          : await this.fetchFn(href, { method, headers, body, signal: options.signal });
      if (!RETRYABLE_STATUSES.has(res.status) || attempt > this.maxRetries) return res;
      const wait = backoffMs(attempt, this.maxRetryDelayMs, retryAfterMs(res.headers.get('retry-after')));
      await res.body?.cancel();
      await sleep(wait, options.signal);
    }
  }

  /** Any route: the parsed JSON answer, or a GpumeshApiError (for routes without a method here). */
  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, options);
    return parseAnswer<T>(res);
  }

  submit(spec: JobSubmission, options: { idempotencyKey?: string } = {}): Promise<JobDto> {
    return this.request('POST', '/v1/jobs', {
      body: spec,
      headers: options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {},
    });
  }
  dryRun(spec: JobSubmission): Promise<DryRunDto> {
    return this.request('POST', '/v1/jobs/dry-run', { body: spec });
  }
  job(id: string): Promise<JobDetailDto> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}`);
  }
  /** A page of your jobs, newest first. */
  jobs(query: ListJobsQuery = {}): Promise<JobPageDto> {
    const params = new URLSearchParams();
    for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
    const qs = params.toString();
    return this.request('GET', `/v1/jobs${qs ? `?${qs}` : ''}`);
  }
  cancel(id: string): Promise<JobDto> {
    return this.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`);
  }
  result(id: string): Promise<JobResultDto> {
    return this.request('GET', `/v1/jobs/${encodeURIComponent(id)}/result`);
  }
  /**
   * Uploads `.npy` bytes (float32, int32 or bool, C order) for use as a job input by ref
   * (POST /v1/tensors); `{ name, ref }` with the answer's `ref` is then an input of any job of this
   * account. The same bytes again answer the same ref.
   */
  uploadNpy(npy: Uint8Array | Blob, options: { signal?: AbortSignal } = {}): Promise<UploadedTensorDto> {
    return this.request('POST', '/v1/tensors', {
      bytes: npy,
      headers: { 'content-type': NPY_MEDIA_TYPE },
      signal: options.signal,
    });
  }
  /** `uploadNpy` of a typed array of `shape` (sent as its raw little-endian bytes). */
  uploadTensor(
    values: Float32Array | Int32Array,
    shape: readonly number[],
    options: { signal?: AbortSignal } = {},
  ): Promise<UploadedTensorDto> {
    const { dtype, bytes } = tensorBytes('upload', values, shape);
    const params = new URLSearchParams({ dtype, shape: shape.join(',') });
    return this.request('POST', `/v1/tensors?${params.toString()}`, {
      bytes,
      headers: { 'content-type': 'application/octet-stream' },
      signal: options.signal,
    });
  }
  /** A page of your tensors (uploads, and outputs by ref of your jobs), newest first, with `expiresAt`. */
  tensors(query: { limit?: number; cursor?: string } = {}): Promise<TensorPageDto> {
    const params = new URLSearchParams();
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    const qs = params.toString();
    return this.request('GET', `/v1/tensors${qs ? `?${qs}` : ''}`);
  }
  /** Deletes a tensor of yours (409 TENSOR_IN_USE while a job that has not finished names it). */
  deleteTensor(ref: string): Promise<DeletedTensorDto> {
    return this.request('DELETE', tensorPath(ref));
  }
  /** One output of a completed job as `.npy` bytes (GET /v1/jobs/:id/outputs/:name), inline or by ref. */
  async outputNpy(id: string, name: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return readWhole(await this.openNpy(outputPath(id, name), options.signal, WHOLE));
  }
  /**
   * One output of a completed job as a `.npy` stream, for outputs too large to hold (save it as it
   * arrives); `bytes` is the whole file's length.
   */
  openOutputNpy(id: string, name: string, options: { signal?: AbortSignal } = {}): Promise<NpyStream> {
    return this.openNpy(outputPath(id, name), options.signal);
  }
  /** A tensor of yours (an upload, or an output by ref) as `.npy` bytes (GET /v1/tensors/:ref). */
  async tensorNpy(ref: string, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    return readWhole(await this.openNpy(tensorPath(ref), options.signal, WHOLE));
  }
  /** A tensor of yours (an upload, or an output by ref) as a `.npy` stream (GET /v1/tensors/:ref). */
  openTensorNpy(ref: string, options: { signal?: AbortSignal } = {}): Promise<NpyStream> {
    return this.openNpy(tensorPath(ref), options.signal);
  }
  /** A `.npy` download, in arrays of `chunkBytes` (WHOLE: one). */
  private async openNpy(
    path: string,
    signal: AbortSignal | undefined,
    chunkBytes?: number,
  ): Promise<NpyStream> {
    const res = await this.send('GET', path, { headers: { accept: NPY_MEDIA_TYPE }, signal }, { chunkBytes });
    if (!res.ok) return parseAnswer<never>(res);
    if (res.body === null) throw new Error(`GET ${path}: an answer without a body`);
    const length = res.headers.get('content-length');
    return { body: res.body, bytes: length === null ? null : Number(length) };
  }
  /**
   * Every output of a completed job as a tensor (`decodeTensor` gives its values): inline outputs as
   * the result carries them, outputs by ref (large ones) downloaded as `.npy`.
   */
  async outputTensors(id: string, options: { signal?: AbortSignal } = {}): Promise<TensorDto[]> {
    const { result } = await this.result(id);
    return Promise.all(
      result.outputs.map(async (t) =>
        'ref' in t ? fromNpy(t.name, await this.outputNpy(id, t.name, options)) : t,
      ),
    );
  }
  account(): Promise<AccountDto> {
    return this.request('GET', '/v1/account');
  }
  ledger(query: { limit?: number; cursor?: string } = {}): Promise<AccountLedgerPageDto> {
    const params = new URLSearchParams();
    if (query.limit !== undefined) params.set('limit', String(query.limit));
    if (query.cursor !== undefined) params.set('cursor', query.cursor);
    const qs = params.toString();
    return this.request('GET', `/v1/account/ledger${qs ? `?${qs}` : ''}`);
  }
  /** Stores a signed spending cap (see signSpendingCap). */
  putSpendingCap(cap: string, signature: string): Promise<SpendingCapDto> {
    return this.request('PUT', '/v1/account/spending-cap', { body: { cap, signature } });
  }

  /**
   * Signs (EIP-712, with `signer`, the account's wallet) and stores a spending cap of `cap` base
   * units, reading the typed data from GET /v1/account. Caps are cumulative and only rise.
   */
  async authorizeSpending(signer: WalletSigner, cap: bigint): Promise<SpendingCapDto> {
    const account = await this.account();
    if (!account.spendingCap)
      throw new Error(`${this.baseUrl} settles on no chain: it takes no spending cap`);
    const signed = await signSpendingCap(signer, account.spendingCap.typedData, cap);
    return this.putSpendingCap(signed.cap, signed.signature);
  }

  /**
   * The job's events (GET /v1/jobs/:id/events, server-sent events), history first, then live, until
   * its terminal event. A dropped connection is reopened with Last-Event-ID after a backoff (the
   * server's `retry:` hint, doubling while nothing new arrives): no event is lost or repeated.
   */
  async *events(jobId: string, options: EventsOptions = {}): AsyncGenerator<JobEventDto, void, undefined> {
    let lastId = options.lastEventId === undefined ? null : BigInt(options.lastEventId);
    let reconnectMs = DEFAULT_RECONNECT_MS;
    let failures = 0;
    const maxReconnects = options.maxReconnects ?? DEFAULT_MAX_RECONNECTS;
    const path = `/v1/jobs/${encodeURIComponent(jobId)}/events`;
    for (;;) {
      let progressed = false;
      try {
        const res = await this.send('GET', path, {
          headers: {
            accept: 'text/event-stream',
            ...(lastId === null ? {} : { 'last-event-id': lastId.toString() }),
          },
          signal: options.signal,
        });
        // 204: everything up to the terminal event was already received.
        if (res.status === 204) return;
        if (!res.ok || !res.body) {
          if (res.status >= 500) throw new Error(`GET ${path}: ${res.status}`);
          await parseAnswer(res);
          throw new Error(`GET ${path}: ${res.status} without a stream`);
        }
        const parser = new SseParser({ onRetry: (ms) => (reconnectMs = ms) });
        for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
          for (const message of parser.push(chunk)) {
            if (message.event !== 'job-event') continue;
            const event = JSON.parse(message.data) as JobEventDto;
            const id = BigInt(event.id);
            if (lastId !== null && id <= lastId) continue;
            lastId = id;
            progressed = true;
            failures = 0;
            yield event;
            if (event.toState && TERMINAL_JOB_STATES.has(event.toState)) {
              await res.body.cancel().catch(() => undefined);
              return;
            }
          }
        }
      } catch (err) {
        if (options.signal?.aborted || err instanceof GpumeshApiError) throw err;
      }
      // The stream ended (or broke) before the terminal event: reconnect where it stopped.
      failures = progressed ? 1 : failures + 1;
      if (failures > maxReconnects) {
        throw new Error(`the event stream of job ${jobId} dropped ${failures} times without progress`);
      }
      const delay = Math.min(this.maxRetryDelayMs, reconnectMs * 2 ** (failures - 1));
      options.onReconnect?.(failures, delay);
      await sleep(delay, options.signal);
    }
  }

  /**
   * Waits for the job to end (following its event stream, which resumes after a drop) and returns
   * it. Rejects with a TimeoutError after `timeoutMs`, or with the signal's reason when it aborts.
   */
  async wait(jobId: string, options: WaitOptions = {}): Promise<JobDetailDto> {
    const signals = [
      options.signal,
      options.timeoutMs === undefined ? undefined : AbortSignal.timeout(options.timeoutMs),
    ];
    const active = signals.filter((s): s is AbortSignal => s !== undefined);
    const signal = active.length === 0 ? undefined : AbortSignal.any(active);
    const job = await this.job(jobId);
    if (TERMINAL_JOB_STATES.has(job.state)) return job;
    for await (const event of this.events(jobId, { signal })) void event;
    // The stream ended with the terminal event: the job now shows its final state.
    for (;;) {
      const final = await this.request<JobDetailDto>('GET', `/v1/jobs/${encodeURIComponent(jobId)}`, {
        signal,
      });
      if (TERMINAL_JOB_STATES.has(final.state)) return final;
      await sleep(DEFAULT_RECONNECT_MS, signal);
    }
  }
}

/** `chunkBytes` for a download held whole: the body arrives in one array. */
const WHOLE = Number.POSITIVE_INFINITY;

function outputPath(id: string, name: string): string {
  return `/v1/jobs/${encodeURIComponent(id)}/outputs/${encodeURIComponent(name)}`;
}

function tensorPath(ref: string): string {
  return `/v1/tensors/${encodeURIComponent(ref)}`;
}

/** A download's bytes in one array (the one it arrived in, when it came whole). */
async function readWhole({ body, bytes }: NpyStream): Promise<Uint8Array> {
  const chunks: Uint8Array[] = [];
  let received = 0;
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    received += chunk.byteLength;
  }
  if (bytes !== null && received !== bytes)
    throw new Error(`a download of ${received} bytes where ${bytes} were announced`);
  if (chunks.length === 1) return chunks[0];
  const whole = new Uint8Array(received);
  let at = 0;
  for (const chunk of chunks) {
    whole.set(chunk, at);
    at += chunk.byteLength;
  }
  return whole;
}

/**
 * The parsed JSON of an answer, or a GpumeshApiError with its error envelope (one made up from the
 * status and text when the body is not an envelope).
 */
export async function parseAnswer<T>(res: Response): Promise<T> {
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
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

export interface SignInOptions {
  /** The name of the API key created for this sign-in (default "sdk"). */
  keyName?: string;
  fetch?: typeof fetch;
  maxRetries?: number;
}

/**
 * Signs in to the coordinator at `baseUrl` with a wallet (Sign-In with Ethereum: nonce, signed
 * message, session) and creates an API key with the developer scopes; returns a client using it.
 */
export async function signIn(
  baseUrl: string,
  signer: WalletSigner,
  options: SignInOptions = {},
): Promise<{ client: GpumeshClient; session: SessionResponseDto; apiKey: CreatedApiKeyDto }> {
  const anonymous = new GpumeshClient({
    baseUrl,
    apiKey: '',
    fetch: options.fetch,
    maxRetries: options.maxRetries,
  });
  const nonce = await anonymous.request<NonceResponseDto>('GET', '/v1/auth/nonce');
  const session = await anonymous.request<SessionResponseDto>('POST', '/v1/auth/siwe', {
    body: await signSignIn(signer, nonce),
  });
  const withSession = new GpumeshClient({
    baseUrl,
    apiKey: session.token,
    fetch: options.fetch,
    maxRetries: options.maxRetries,
  });
  const apiKey = await withSession.request<CreatedApiKeyDto>('POST', '/v1/auth/api-keys', {
    body: { name: options.keyName ?? 'sdk' },
  });
  const client = new GpumeshClient({
    baseUrl,
    apiKey: apiKey.secret,
    fetch: options.fetch,
    maxRetries: options.maxRetries,
  });
  return { client, session, apiKey };
}
