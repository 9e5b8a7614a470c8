// The direct socket download against local servers: a raw TCP one that writes answers in whatever
// pieces a test wants (heads split anywhere, bodies cut short) and node:http for ordinary answers.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTcpServer, type Server as TcpServer, type Socket } from 'node:net';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { canRequestPlainly, plainHttpRequest, toResponse } from './plain-http.js';

const servers: (HttpServer | TcpServer)[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
});

async function listen(server: HttpServer | TcpServer): Promise<URL> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return new URL(`http://127.0.0.1:${address.port}/v1/tensors/x?a=1`);
}

/** A TCP server that, once a request's head arrived, hands the socket and the head to `answer`. */
function rawServer(answer: (socket: Socket, head: string) => void): Promise<URL> {
  return listen(
    createTcpServer((socket) => {
      let head = '';
      let answered = false;
      socket.on('data', (d: Buffer) => {
        if (answered) return; // a request's body: not read
        head += d.toString('latin1');
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        answered = true;
        answer(socket, head.slice(0, end + 4));
      });
      socket.on('error', () => undefined);
    }),
  );
}

function patterned(length: number, seed = 1): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = (i * 31 + seed + (i >>> 11)) & 255;
  return bytes;
}

async function readAll(body: ReadableStream<Uint8Array>, delayMs = 0): Promise<Uint8Array[]> {
  const chunks: Uint8Array[] = [];
  for await (const chunk of body as AsyncIterable<Uint8Array>) {
    chunks.push(chunk);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  }
  return chunks;
}

/** Whether the chunks hold `bytes` (toEqual walks a typed array element by element: seconds for MiBs). */
function holds(chunks: Uint8Array[], bytes: Uint8Array): boolean {
  return Buffer.concat(chunks).equals(bytes);
}

describe('plainHttpRequest', () => {
  it('reads a 200 body in chunks of chunkBytes, whatever pieces the server writes it in', async () => {
    let current: { bytes: Uint8Array; cuts: number[] } = { bytes: new Uint8Array(0), cuts: [] };
    const url = await rawServer((socket) => {
      const { bytes, cuts } = current;
      const answer = Buffer.concat([
        Buffer.from(
          `HTTP/1.1 200 OK\r\ncontent-type: application/x-npy\r\ncontent-length: ${bytes.length}\r\n\r\n`,
        ),
        bytes,
      ]);
      // the answer in pieces cut at `cuts`, each written on its own turn of the event loop
      const points = [...new Set(cuts.map((c) => c % (answer.length + 1)))].sort((a, b) => a - b);
      let from = 0;
      const next = (): void => {
        const to = points.shift() ?? answer.length;
        socket.write(answer.subarray(from, to));
        from = to;
        if (from < answer.length) setImmediate(next);
        else socket.end();
      };
      next();
    });
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: 150_000 }),
        fc.array(fc.nat(), { maxLength: 12 }),
        fc.oneof(fc.integer({ min: 1, max: 70_000 }), fc.constant(Number.POSITIVE_INFINITY)),
        async (length, cuts, chunkBytes) => {
          current = { bytes: patterned(length, cuts.length), cuts };
          const answer = await plainHttpRequest(url, { chunkBytes });
          if (answer.kind !== 'answer') throw new Error(answer.reason);
          expect(answer.bytes).toBe(length);
          const chunks = await readAll(answer.body);
          expect(holds(chunks, current.bytes)).toBe(true);
          const size = Math.min(chunkBytes, length);
          for (const chunk of chunks.slice(0, -1)) expect(chunk.byteLength).toBe(size);
          if (chunkBytes === Number.POSITIVE_INFINITY) expect(chunks.length).toBe(length === 0 ? 0 : 1);
        },
      ),
      { numRuns: 60 },
    );
  }, 30_000);

  it('sends the path, host and headers, and holds a whole body in the one array it arrived in', async () => {
    const body = patterned(8 * 1024 * 1024);
    let seen: { url?: string; host?: string; authorization?: string } = {};
    const url = await listen(
      createHttpServer((req, res) => {
        seen = { url: req.url, host: req.headers.host, authorization: req.headers.authorization };
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      }),
    );
    const answer = await plainHttpRequest(url, {
      headers: { authorization: 'Bearer k', accept: 'application/x-npy' },
      chunkBytes: Number.POSITIVE_INFINITY,
    });
    if (answer.kind !== 'answer') throw new Error(answer.reason);
    const chunks = await readAll(answer.body);
    expect(chunks).toHaveLength(1);
    expect(holds(chunks, body)).toBe(true);
    expect(seen).toEqual({ url: '/v1/tensors/x?a=1', host: url.host, authorization: 'Bearer k' });
  });

  it('pauses the socket for a consumer that is behind and resumes it as it reads on', async () => {
    const body = patterned(6 * 1024 * 1024, 7);
    const url = await listen(
      createHttpServer((_req, res) => {
        res.writeHead(200, { 'content-length': body.length });
        res.end(body);
      }),
    );
    const answer = await plainHttpRequest(url, { chunkBytes: 256 * 1024 });
    if (answer.kind !== 'answer') throw new Error(answer.reason);
    // nothing read for a while: at most the chunks ahead (and the one being filled) are taken
    await new Promise((r) => setTimeout(r, 200));
    const chunks = await readAll(answer.body, 2);
    expect(chunks).toHaveLength(24);
    expect(holds(chunks, body)).toBe(true);
  });

  it('hands an error answer back whole, and leaves chunked or compressed answers to fetch', async () => {
    const error = JSON.stringify({
      statusCode: 404,
      error: { code: 'TENSOR_NOT_FOUND', message: 'no tensor' },
    });
    const url = await listen(
      createHttpServer((req, res) => {
        if (req.url?.startsWith('/missing')) {
          res.writeHead(404, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(error),
          });
          res.end(error);
        } else if (req.url?.startsWith('/gzip')) {
          res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': 3 });
          res.end('abc');
        } else if (req.url?.startsWith('/moved')) {
          res.writeHead(302, { location: '/elsewhere', 'content-length': 0 });
          res.end();
        } else {
          res.write('no length: chunked'); // node:http sends it chunked
          res.end();
        }
      }),
    );
    const missing = await plainHttpRequest(new URL('/missing', url));
    if (missing.kind !== 'answer') throw new Error(missing.reason);
    const response = toResponse(missing);
    expect(response.status).toBe(404);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(await response.json()).toEqual(JSON.parse(error));
    expect(await plainHttpRequest(new URL('/chunked', url))).toEqual({
      kind: 'unsupported',
      reason: 'transfer-encoding chunked',
    });
    expect(await plainHttpRequest(new URL('/gzip', url))).toEqual({
      kind: 'unsupported',
      reason: 'content-encoding gzip',
    });
    expect(await plainHttpRequest(new URL('/moved', url))).toEqual({
      kind: 'unsupported',
      reason: 'status 302',
    });
  });

  it('errors the stream of a body cut short, with what came and what was announced', async () => {
    const url = await rawServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n');
      socket.end(Buffer.alloc(600, 1));
    });
    const answer = await plainHttpRequest(url, { chunkBytes: 256 });
    if (answer.kind !== 'answer') throw new Error(answer.reason);
    await expect(readAll(answer.body)).rejects.toThrow(/closed after 600 of 1000 bytes/);
  });

  it('rejects a malformed answer, one without an answer, and a head past 64 KiB', async () => {
    const url = await rawServer((socket, head) => {
      if (head.startsWith('GET /garbage')) socket.end('SSH-2.0-OpenSSH\r\n\r\n');
      else if (head.startsWith('GET /silent')) socket.end();
      else {
        socket.write('HTTP/1.1 200 OK\r\n');
        socket.end(`x-padding: ${'a'.repeat(70_000)}\r\n\r\n`);
      }
    });
    await expect(plainHttpRequest(new URL('/garbage', url))).rejects.toThrow(/a malformed HTTP answer/);
    await expect(plainHttpRequest(new URL('/silent', url))).rejects.toThrow(/closed before an answer/);
    await expect(plainHttpRequest(new URL('/long', url))).rejects.toThrow(/head is longer than 65536 bytes/);
  });

  it('aborts with the signal, before the answer and in the middle of the body', async () => {
    const url = await rawServer((socket, head) => {
      if (head.startsWith('GET /never')) return; // holds the request
      socket.write('HTTP/1.1 200 OK\r\ncontent-length: 100000\r\n\r\n');
      socket.write(Buffer.alloc(10_000)); // and never the rest
    });
    const early = new AbortController();
    const pending = plainHttpRequest(new URL('/never', url), { signal: early.signal });
    setTimeout(() => early.abort(new Error('stop waiting')), 50);
    await expect(pending).rejects.toThrow('stop waiting');

    const late = new AbortController();
    const answer = await plainHttpRequest(url, { signal: late.signal, chunkBytes: 1000 });
    if (answer.kind !== 'answer') throw new Error(answer.reason);
    const reader = answer.body.getReader();
    expect((await reader.read()).value?.byteLength).toBe(1000);
    late.abort(new Error('enough'));
    await expect(
      readAll(
        new ReadableStream({
          pull: async (c) => {
            const { done, value } = await reader.read();
            if (done) c.close();
            else c.enqueue(value);
          },
        }),
      ),
    ).rejects.toThrow('enough');
  });

  it('refuses header values that would split the request, and names the URL when it cannot connect', async () => {
    const url = new URL('http://127.0.0.1:9/x');
    await expect(
      plainHttpRequest(url, { headers: { authorization: 'Bearer k\r\nx-evil: 1' } }),
    ).rejects.toThrow(TypeError);
    await expect(plainHttpRequest(url, { headers: { 'bad name': 'v' } })).rejects.toThrow(TypeError);
    await expect(plainHttpRequest(url, { method: 'GET /x HTTP/1.1' })).rejects.toThrow(TypeError);
    await expect(plainHttpRequest(url)).rejects.toThrow(/^GET http:\/\/127\.0\.0\.1:9\/x: .*ECONNREFUSED/);
  });

  it('sends a body with its length, from an array or streamed from a Blob, and reads the answer', async () => {
    const received: { method?: string; length?: string; sha?: string }[] = [];
    const url = await listen(
      createHttpServer((req, res) => {
        const hash = createHash('sha256');
        req.on('data', (d: Buffer) => hash.update(d));
        req.on('end', () => {
          received.push({
            method: req.method,
            length: req.headers['content-length'],
            sha: hash.digest('hex'),
          });
          const answer = JSON.stringify({ ref: 'sha256:x' });
          res.writeHead(201, { 'content-type': 'application/json', 'content-length': answer.length });
          res.end(answer);
        });
      }),
    );
    const bytes = patterned(5 * 1024 * 1024 + 3, 9);
    const sha = createHash('sha256').update(bytes).digest('hex');
    for (const body of [bytes, new Blob([bytes.subarray(0, 1000), bytes.subarray(1000)])]) {
      // a content-length of the caller's is replaced by the body's own
      const answer = await plainHttpRequest(url, {
        method: 'POST',
        body,
        headers: { 'content-length': '1' },
      });
      if (answer.kind !== 'answer') throw new Error(answer.reason);
      expect(answer.status).toBe(201);
      expect(await toResponse(answer).json()).toEqual({ ref: 'sha256:x' });
    }
    expect(received).toEqual([
      { method: 'POST', length: String(bytes.length), sha },
      { method: 'POST', length: String(bytes.length), sha },
    ]);
  });

  it('takes an answer the server gives before the whole body was sent', async () => {
    const url = await rawServer((socket) => {
      socket.end('HTTP/1.1 413 Payload Too Large\r\ncontent-length: 2\r\n\r\n{}');
    });
    const answer = await plainHttpRequest(url, { method: 'POST', body: new Uint8Array(64 * 1024 * 1024) });
    if (answer.kind !== 'answer') throw new Error(answer.reason);
    expect(answer.status).toBe(413);
    expect(Buffer.concat(await readAll(answer.body)).toString()).toBe('{}');
  });

  it('speaks https: reads and sends bodies byte-exact over TLS, and checks the certificate', async () => {
    // a certificate for localhost and 127.0.0.1, made for this test by openssl (Debian's, as in CI)
    const dir = mkdtempSync(join(tmpdir(), 'plain-https-'));
    try {
      execFileSync('openssl', [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '1',
        '-subj', '/CN=localhost', '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
      ], { stdio: 'ignore' }); // prettier-ignore
      const key = readFileSync(join(dir, 'key.pem'), 'utf8');
      const ca = readFileSync(join(dir, 'cert.pem'), 'utf8');
      const bytes = patterned(3 * 1024 * 1024 + 5, 4);
      const sha = createHash('sha256').update(bytes).digest('hex');
      const server = createHttpsServer({ key, cert: ca }, (req, res) => {
        const hash = createHash('sha256');
        req.on('data', (d: Buffer) => hash.update(d));
        req.on('end', () => {
          const answer = req.method === 'POST' ? Buffer.from(hash.digest('hex')) : bytes;
          res.writeHead(200, { 'content-length': answer.length });
          res.end(answer);
        });
      });
      const { port } = await listen(server); // its URL says http: only the port is taken
      for (const host of ['localhost', '127.0.0.1']) {
        const url = new URL(`https://${host}:${port}/v1/tensors/x`);
        const got = await plainHttpRequest(url, { ca, chunkBytes: 1024 * 1024 });
        if (got.kind !== 'answer') throw new Error(got.reason);
        const chunks = await readAll(got.body);
        expect(chunks.map((c) => c.byteLength)).toEqual([1048576, 1048576, 1048576, 5]);
        expect(holds(chunks, bytes)).toBe(true);
        const sent = await plainHttpRequest(url, { ca, method: 'POST', body: new Blob([bytes]) });
        if (sent.kind !== 'answer') throw new Error(sent.reason);
        expect(await toResponse(sent).text()).toBe(sha);
      }
      // not signed by a certificate it trusts: refused before anything is sent
      await expect(plainHttpRequest(new URL(`https://localhost:${port}/`))).rejects.toThrow(
        /self-signed certificate/,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('is used for http and https on Node, unless fetch would go through a proxy', () => {
    expect(canRequestPlainly(new URL('http://127.0.0.1:8080/'))).toBe(true);
    expect(canRequestPlainly(new URL('https://api.gpumesh.dev/'))).toBe(true);
    expect(canRequestPlainly(new URL('ftp://api.gpumesh.dev/'))).toBe(false);
    const saved = { ...process.env };
    try {
      process.env.NODE_USE_ENV_PROXY = '1';
      process.env.https_proxy = 'http://proxy.internal:3128';
      expect(canRequestPlainly(new URL('https://api.gpumesh.dev/'))).toBe(false);
      expect(canRequestPlainly(new URL('http://127.0.0.1:8080/'))).toBe(true);
      process.env.http_proxy = 'http://proxy.internal:3128';
      expect(canRequestPlainly(new URL('http://127.0.0.1:8080/'))).toBe(false);
    } finally {
      for (const name of ['NODE_USE_ENV_PROXY', 'https_proxy', 'http_proxy']) {
        if (saved[name] === undefined) delete process.env[name];
        else process.env[name] = saved[name];
      }
    }
  });
});
