// HTTP/1.1 over a socket of its own (TCP, or TLS for https), on Node, for the requests that move
// tensors. The answer's body is read straight into the arrays handed out (net.Socket's and
// TLSSocket's `onread`: by the kernel, or by OpenSSL as it decrypts): no 64 KiB read
// buffer per packet for glibc to give back to the system and fault in again, no second copy into
// the caller's array; a body sent is written as it is (a Blob streamed from its source). On this VM
// a 256 MiB `.npy` came in at 144–391 MB/s through Node's fetch and 1.1–1.3 GB/s this way, and went
// out at 130–250 MB/s through fetch against 850–1,200 (docs/benchmarks.md, twelfth session).
//
// It reads the answers it is built for: 2xx, 4xx and 5xx with a Content-Length (or none that can
// have a body) and no transfer or content coding. Anything else (chunked, compressed, a redirect,
// …) is left to fetch, which the caller then uses.

import type * as Net from 'node:net';
import type { Socket } from 'node:net';
import type * as Tls from 'node:tls';

/** Bytes of an answer's status line and headers at most. */
const MAX_HEAD_BYTES = 64 * 1024;
/** No byte for this long ends the exchange (undici's fetch waits as long for headers and for body bytes). */
const IDLE_TIMEOUT_MS = 300_000;
/** Chunks of a body: a few reads of the kernel each, few enough for the stream's overhead to vanish. */
export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;
/** Chunks filled ahead of a consumer that reads slower than the network (the socket pauses then). */
const CHUNKS_AHEAD = 2;
/** Statuses whose answers have no body, whatever their headers say. */
const NULL_BODY_STATUSES = new Set([204, 205, 304]);
/** Request headers this module writes itself (the framing is its own). */
const OWN_HEADERS = new Set(['host', 'connection', 'content-length', 'transfer-encoding']);

export interface PlainRequest {
  /** Default GET. */
  method?: string;
  headers?: Record<string, string>;
  /** The body, sent with its length; a Blob (Node's `fs.openAsBlob`) is streamed from its source. */
  body?: Uint8Array | Blob;
  signal?: AbortSignal;
  /** The length of each chunk of the answer's body (default 4 MiB); Infinity: the whole body as one array. */
  chunkBytes?: number;
  /**
   * For https: certificates (PEM) trusted instead of Node's own; unset: Node's (with
   * NODE_EXTRA_CA_CERTS), as fetch trusts. The server's certificate is always checked.
   */
  ca?: string;
}

export type PlainAnswer =
  /** The answer; its body as it arrives, in arrays of `chunkBytes` (the last one shorter). */
  | {
      kind: 'answer';
      status: number;
      statusText: string;
      headers: Headers;
      body: ReadableStream<Uint8Array>;
      bytes: number;
    }
  /** An answer this module does not read (the connection is closed): use fetch. */
  | { kind: 'unsupported'; reason: string };

/**
 * Whether `url` can be requested by `plainHttpRequest` here: http or https, on Node, and no proxy
 * fetch would go through (Node's fetch uses `http_proxy` / `https_proxy` when NODE_USE_ENV_PROXY is
 * set).
 */
export function canRequestPlainly(url: URL): boolean {
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return false;
  if (typeof process !== 'object' || typeof process.versions?.node !== 'string') return false;
  const env = process.env;
  if (!env.NODE_USE_ENV_PROXY) return true;
  return url.protocol === 'http:'
    ? !(env.http_proxy || env.HTTP_PROXY)
    : !(env.https_proxy || env.HTTPS_PROXY);
}

/** A Response of the answer (its body the same stream). */
export function toResponse(answer: Extract<PlainAnswer, { kind: 'answer' }>): Response {
  return new Response(NULL_BODY_STATUSES.has(answer.status) ? null : answer.body, {
    status: answer.status,
    statusText: answer.statusText,
    headers: answer.headers,
  });
}

/**
 * A Node module (`node:net`, `node:tls`), loaded only where this runs: the name is not a literal, so a
 * bundler building the SDK for a browser neither resolves nor bundles it.
 */
async function nodeModule<T>(name: 'node:net' | 'node:tls'): Promise<T> {
  const specifier: string = name;
  return (await import(/* webpackIgnore: true */ /* @vite-ignore */ specifier)) as T;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** The request's head; a method or header name that is not a token, or a value with CR, LF or NUL, is refused as fetch refuses it. */
function requestHead(
  url: URL,
  method: string,
  headers: Record<string, string>,
  length: number | null,
): string {
  if (!TOKEN.test(method)) throw new TypeError(`${JSON.stringify(method)} is not a valid HTTP method`);
  let head = `${method} ${url.pathname}${url.search} HTTP/1.1\r\nhost: ${url.host}\r\nconnection: close\r\n`;
  if (length !== null) head += `content-length: ${length}\r\n`;
  for (const [name, value] of Object.entries(headers)) {
    if (!TOKEN.test(name)) throw new TypeError(`${JSON.stringify(name)} is not a valid header name`);
    if (/[\r\n\0]/.test(value)) throw new TypeError(`the ${name} header's value holds CR, LF or NUL`);
    if (!OWN_HEADERS.has(name.toLowerCase())) head += `${name}: ${value.trim()}\r\n`;
  }
  return `${head}\r\n`;
}

interface AnswerHead {
  status: number;
  statusText: string;
  headers: Headers;
  /** The body's length. */
  length: number;
  /** Why fetch should read this answer, or null. */
  unsupported: string | null;
}

/** The status line and headers (`text` up to, not including, the blank line); null when malformed. */
function parseHead(text: string): AnswerHead | null {
  const lines = text.split('\r\n');
  const statusLine = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(lines[0]);
  if (!statusLine) return null;
  const headers = new Headers();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(':');
    if (colon <= 0) return null;
    try {
      headers.append(line.slice(0, colon), line.slice(colon + 1).trim());
    } catch {
      return null;
    }
  }
  const status = Number(statusLine[1]);
  const lengthText = headers.get('content-length');
  const length = lengthText !== null && /^\d{1,15}$/.test(lengthText) ? Number(lengthText) : null;
  return {
    status,
    statusText: statusLine[2] ?? '',
    headers,
    length: NULL_BODY_STATUSES.has(status) ? 0 : (length ?? 0),
    unsupported: unsupportedReason(status, headers, length),
  };
}

/** Why fetch should read an answer with this status, headers and Content-Length, or null. */
function unsupportedReason(status: number, headers: Headers, length: number | null): string | null {
  const kind = Math.floor(status / 100);
  if (kind !== 2 && kind !== 4 && kind !== 5) return `status ${status}`;
  if (NULL_BODY_STATUSES.has(status)) return null; // no body, whatever the headers say
  const transfer = headers.get('transfer-encoding');
  if (transfer !== null) return `transfer-encoding ${transfer}`;
  const coding = headers.get('content-encoding');
  if (coding !== null && coding !== 'identity') return `content-encoding ${coding}`;
  return length === null ? 'no content-length' : null;
}

/**
 * Sends a request to `url` (http or https; see canRequestPlainly). Rejects when the connection fails or
 * the answer is malformed, with the signal's reason when it aborts; a body that then breaks off
 * errors its stream (with the bytes received and expected).
 */
export async function plainHttpRequest(url: URL, request: PlainRequest = {}): Promise<PlainAnswer> {
  const { signal, body: sent } = request;
  const method = request.method ?? 'GET';
  const chunkBytes = request.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  if (!(chunkBytes >= 1)) throw new RangeError(`chunkBytes must be at least 1, not ${chunkBytes}`);
  signal?.throwIfAborted();
  const sentBytes = sent === undefined ? null : sent instanceof Blob ? sent.size : sent.byteLength;
  const head = requestHead(url, method, request.headers ?? {}, sentBytes);
  const transport =
    url.protocol === 'https:'
      ? { tls: await nodeModule<typeof Tls>('node:tls') }
      : { net: await nodeModule<typeof Net>('node:net') };
  signal?.throwIfAborted();
  const target = `${method} ${url.href}`;

  return new Promise<PlainAnswer>((resolve, reject) => {
    /** Where the answer's head is read (and, after it, the first bytes of the body). */
    const scratch = new Uint8Array(MAX_HEAD_BYTES);
    let headBytes = 0;
    /** The array of the body being filled, how much of it is, and the body's bytes before it. */
    let chunk: Uint8Array | null = null;
    let filled = 0;
    let before = 0;
    let total = 0;
    /** The answer's head was read: bytes now go to the body. */
    let answered = false;
    let controller: ReadableStreamDefaultController<Uint8Array> | null = null;
    /** The exchange is over (the body closed, failed or cancelled, or the answer left to fetch). */
    let done = false;
    /** Reading stopped for a consumer that is behind (`socket.isPaused()` does not show it). */
    let stopped = false;

    const finish = (): void => {
      done = true;
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
    };
    const fail = (err: unknown): void => {
      if (done) return;
      finish();
      if (answered) controller?.error(err);
      else reject(err);
    };
    const onAbort = (): void => fail(signal?.reason);

    /** Bytes of the body received into `chunk`: true to read on, false to pause until the consumer pulls. */
    const onBodyBytes = (n: number): boolean => {
      filled += n;
      if (chunk === null || filled < chunk.byteLength) return true;
      controller?.enqueue(chunk);
      before += filled;
      filled = 0;
      chunk = before === total ? null : new Uint8Array(Math.min(chunkBytes, total - before));
      if (chunk === null) {
        finish();
        controller?.close();
        return false;
      }
      stopped = (controller?.desiredSize ?? 1) <= 0;
      return !stopped;
    };

    /** The head is complete at `end` (the blank line's last byte + 1): decide what to do with the answer. */
    const onHead = (end: number): boolean => {
      const parsed = parseHead(new TextDecoder('latin1').decode(scratch.subarray(0, end - 4)));
      if (parsed === null) {
        fail(new Error(`${target}: a malformed HTTP answer`));
        return false;
      }
      if (parsed.unsupported !== null) {
        finish();
        resolve({ kind: 'unsupported', reason: parsed.unsupported });
        return false;
      }
      total = parsed.length;
      const early = scratch.subarray(end, headBytes);
      if (early.byteLength > total) {
        fail(new Error(`${target}: more bytes than its content-length (${total})`));
        return false;
      }
      answered = true;
      const body = new ReadableStream<Uint8Array>(
        {
          start: (c) => {
            controller = c;
          },
          pull: () => {
            if (done || !stopped) return;
            stopped = false;
            socket.resume();
          },
          cancel: () => {
            if (!done) finish();
          },
        },
        { highWaterMark: CHUNKS_AHEAD },
      );
      resolve({ kind: 'answer', ...parsed, body, bytes: total });
      chunk = total === 0 ? null : new Uint8Array(Math.min(chunkBytes, total));
      if (chunk === null) {
        finish();
        controller!.close();
        return false;
      }
      // the body's first bytes came with the head: into the arrays they belong to
      let readOn = true;
      for (let at = 0; at < early.byteLength && chunk !== null;) {
        const n = Math.min(early.byteLength - at, chunk.byteLength - filled);
        chunk.set(early.subarray(at, at + n), filled);
        at += n;
        readOn = onBodyBytes(n);
      }
      return readOn;
    };

    const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
    const onread = {
      // called before each read: the kernel (or OpenSSL, decrypting) writes straight into what this returns
      buffer: () =>
        answered && chunk !== null
          ? chunk.subarray(filled)
          : scratch.subarray(Math.min(headBytes, MAX_HEAD_BYTES - 1)),
      callback: (n: number) => {
        if (done) return false;
        if (answered) return onBodyBytes(n);
        const from = Math.max(0, headBytes - 3);
        headBytes += n;
        for (let i = from; i + 3 < headBytes; i++) {
          if (scratch[i] === 13 && scratch[i + 1] === 10 && scratch[i + 2] === 13 && scratch[i + 3] === 10)
            return onHead(i + 4);
        }
        if (headBytes >= MAX_HEAD_BYTES - 1) {
          fail(new Error(`${target}: an answer whose head is longer than ${MAX_HEAD_BYTES} bytes`));
          return false;
        }
        return true;
      },
    };
    let socket: Socket;
    if (transport.tls !== undefined) {
      // Node's TLSSocket takes `onread` as net.Socket does (nodejs/node#35753); @types/node leaves it out
      const options: Tls.ConnectionOptions & { onread: Net.OnReadOpts } = {
        host,
        port: url.port === '' ? 443 : Number(url.port),
        // SNI names a host, never an address
        ...(/^[\d.]+$/.test(host) || host.includes(':') ? {} : { servername: host }),
        ALPNProtocols: ['http/1.1'],
        ...(request.ca !== undefined ? { ca: request.ca } : {}),
        onread,
      };
      socket = transport.tls.connect(options);
    } else {
      socket = transport.net.connect({ host, port: url.port === '' ? 80 : Number(url.port), onread });
    }
    socket.setNoDelay(true);
    socket.setTimeout(IDLE_TIMEOUT_MS, () =>
      fail(new Error(`${target}: nothing received for ${IDLE_TIMEOUT_MS / 1000} s`)),
    );
    socket.on('error', (err) => fail(new Error(`${target}: ${err.message}`, { cause: err })));
    socket.on('close', () =>
      fail(
        new Error(
          answered
            ? `${target}: the connection closed after ${before + filled} of ${total} bytes`
            : `${target}: the connection closed before an answer`,
        ),
      ),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.write(head);
    if (sent instanceof Blob) void sendBlob(socket, sent, () => done).catch(fail);
    else if (sent !== undefined && sent.byteLength > 0) socket.write(sent);
  });
}

/** Writes `blob` to `socket` as it is read, waiting for the socket to drain, until done. */
async function sendBlob(socket: Socket, blob: Blob, isDone: () => boolean): Promise<void> {
  const reader = blob.stream().getReader();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done || isDone()) return;
      if (!socket.write(value)) {
        await new Promise<void>((resolve) => {
          const go = (): void => {
            socket.off('drain', go);
            socket.off('close', go);
            resolve();
          };
          socket.on('drain', go);
          socket.on('close', go);
        });
      }
    }
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}
