// Brotli or gzip for the dashboard's files and the API docs (/dashboard/, /docs): a 311 KiB bundle
// travels as ~90 KiB, the 2 MB docs page as a fraction. Compressed once per file version and kept
// (they are static), off the event loop (zlib's thread pool). Only these paths: API responses and
// event streams are left as they are (a stream must not be buffered; JSON bodies are small or
// tensors, which do not compress).
import { promisify } from 'node:util';
import { brotliCompress, constants, gzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

const brotli = promisify(brotliCompress);
const gzipAsync = promisify(gzip);

const PATHS = /^\/(dashboard\/|docs(\/|$|\?))/;
const COMPRESSIBLE = /^(text\/(?!event-stream)|application\/(json|javascript|xml)|image\/svg\+xml)/i;
/** Smaller bodies gain nothing worth a header. */
const MIN_BYTES = 1024;
/** Larger bodies are sent as they are (nothing under these paths is this big). */
const MAX_BYTES = 16 * 1024 * 1024;
const CACHE_ENTRIES = 64;

export type Encoding = 'br' | 'gzip';

/** The encoding to answer with for an Accept-Encoding header: br, else gzip, else none. */
export function chooseEncoding(acceptEncoding: string | undefined): Encoding | null {
  if (!acceptEncoding) return null;
  const offered = new Map<string, number>();
  for (const part of acceptEncoding.toLowerCase().split(',')) {
    const [name, ...params] = part.trim().split(';');
    const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
    if (name) offered.set(name.trim(), q === undefined ? 1 : Number(q));
  }
  const weight = (name: string): number => offered.get(name) ?? offered.get('*') ?? 0;
  if (weight('br') > 0) return 'br';
  if (weight('gzip') > 0) return 'gzip';
  return null;
}

async function bytesOf(payload: unknown): Promise<Buffer | null> {
  if (typeof payload === 'string') return Buffer.from(payload);
  if (Buffer.isBuffer(payload)) return payload;
  if (payload && typeof (payload as Readable).pipe === 'function') {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of payload as Readable) {
      const buf = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += buf.length;
      if (size > MAX_BYTES) return null;
      chunks.push(buf);
    }
    return Buffer.concat(chunks);
  }
  return null;
}

/** Adds the onSend hook. */
export function registerStaticCompression(fastify: FastifyInstance): void {
  const cache = new Map<string, Buffer>();
  fastify.addHook('onSend', async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    if (request.method !== 'GET' || reply.statusCode !== 200 || !PATHS.test(request.url)) return payload;
    if (reply.getHeader('content-encoding') !== undefined) return payload;
    const type = String(reply.getHeader('content-type') ?? '');
    const encoding = chooseEncoding(request.headers['accept-encoding']);
    if (!COMPRESSIBLE.test(type) || encoding === null) return payload;
    const length = Number(reply.getHeader('content-length') ?? NaN);
    if (length < MIN_BYTES) return payload;
    const bytes = await bytesOf(payload);
    if (bytes === null) return payload; // too big: it was not read, so it goes as it is
    // appended: a Vary set before (CORS's Origin) still holds
    const vary = String(reply.getHeader('vary') ?? '');
    if (!/\baccept-encoding\b/i.test(vary))
      reply.header('vary', vary ? `${vary}, accept-encoding` : 'accept-encoding');
    if (bytes.length < MIN_BYTES) return bytes;
    const version = String(reply.getHeader('etag') ?? reply.getHeader('last-modified') ?? '');
    const key = `${encoding} ${request.url} ${version} ${bytes.length}`;
    let packed = cache.get(key);
    if (!packed) {
      packed =
        encoding === 'br'
          ? await brotli(bytes, {
              params: {
                [constants.BROTLI_PARAM_QUALITY]: 9,
                [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
              },
            })
          : await gzipAsync(bytes, { level: 9 });
      if (cache.size >= CACHE_ENTRIES) cache.delete(cache.keys().next().value!);
      cache.set(key, packed);
    }
    reply.header('content-encoding', encoding);
    reply.removeHeader('content-length');
    return packed;
  });
}
