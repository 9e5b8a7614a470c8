// A plain node:http client for fuzzing: no retries, no JSON helpers, any method, path, header and body.
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';

export interface RawRequest {
  method: string;
  /** Path and query, sent as is (the caller encodes). */
  path: string;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  /** The response was a live event stream (cut after its headers). */
  stream: boolean;
}

/** The reason a request never got a response (refused by our own client, reset, timeout). */
export class NoResponse extends Error {}

/**
 * Sends one request and reads the whole response (at most 1 MiB of it). Event streams are cut after
 * their headers. Rejects with `NoResponse` when the connection fails or nothing comes within `timeoutMs`.
 */
export function send(base: string, req: RawRequest, timeoutMs = 15_000): Promise<RawResponse> {
  const url = new URL(base);
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (fn: () => void): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn();
    };
    let r: ReturnType<typeof httpRequest>;
    try {
      r = httpRequest({
        host: url.hostname,
        port: url.port,
        method: req.method,
        path: req.path,
        headers: req.headers,
        agent: false,
        insecureHTTPParser: false,
      });
    } catch (err) {
      // node:http refused to send it (an invalid header or path): not the server's fault
      reject(new NoResponse(`client refused: ${(err as Error).message}`));
      return;
    }
    const timer = setTimeout(() => {
      done(() => reject(new NoResponse(`no response in ${timeoutMs} ms`)));
      r.destroy();
    }, timeoutMs);
    r.on('error', (err) => done(() => reject(new NoResponse(err.message))));
    r.on('response', (res) => {
      const type = String(res.headers['content-type'] ?? '');
      if (type.startsWith('text/event-stream')) {
        done(() => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: '', stream: true }));
        res.destroy();
        r.destroy();
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (d: Buffer) => {
        size += d.length;
        if (size <= 1024 * 1024) chunks.push(d);
      });
      res.on('error', (err) => done(() => reject(new NoResponse(err.message))));
      res.on('end', () =>
        done(() =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
            stream: false,
          }),
        ),
      );
    });
    if (req.body !== undefined) r.end(req.body);
    else r.end();
  });
}

/** Why a 4xx response does not carry the API's error envelope, or null when it does. */
export function envelopeProblem(res: RawResponse, method: string): string | null {
  if (method === 'HEAD') return null;
  let body: unknown;
  try {
    body = JSON.parse(res.text);
  } catch {
    return `not JSON: ${res.text.slice(0, 120)}`;
  }
  const b = body as { statusCode?: unknown; error?: { code?: unknown; message?: unknown } };
  if (typeof b !== 'object' || b === null || typeof b.error !== 'object' || b.error === null)
    return `no error object: ${res.text.slice(0, 120)}`;
  if (typeof b.error.code !== 'string' || !/^[A-Z][A-Z0-9_]+$/.test(b.error.code))
    return `no error.code: ${res.text.slice(0, 120)}`;
  if (typeof b.error.message !== 'string' || b.error.message.trim().length < 3)
    return `no error.message: ${res.text.slice(0, 120)}`;
  if (b.statusCode !== res.status) return `statusCode ${String(b.statusCode)} != ${res.status}`;
  return null;
}
