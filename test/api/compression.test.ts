// The dashboard and the docs travel compressed (issue 24, part 4): brotli or gzip as the browser
// asks, identical bytes once decoded, kept after the first request; API answers and event streams
// are left alone.
import { brotliDecompressSync, gunzipSync } from 'node:zlib';
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { chooseEncoding } from '../../apps/coordinator/src/common/static-compression.js';
import { startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

let c: TestCoordinator;
beforeAll(async () => {
  c = await startTestCoordinator();
});
afterAll(async () => {
  await c?.close();
});

/** A raw GET (fetch would decode the body and hide the encoding). */
function get(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${c.url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (d: Buffer) => chunks.push(d));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('compression of the dashboard and the docs', () => {
  it('picks brotli, else gzip, as the Accept-Encoding header allows', () => {
    expect(chooseEncoding('gzip, deflate, br, zstd')).toBe('br');
    expect(chooseEncoding('gzip')).toBe('gzip');
    expect(chooseEncoding('br;q=0, gzip;q=0.5')).toBe('gzip');
    expect(chooseEncoding('*')).toBe('br');
    expect(chooseEncoding('identity')).toBeNull();
    expect(chooseEncoding(undefined)).toBeNull();
  });

  it("sends the dashboard's bundle as brotli or gzip, the same bytes once decoded", async () => {
    const index = await get('/dashboard/');
    const bundle = /src="\/dashboard\/(assets\/[^"]+\.js)"/.exec(index.body.toString())?.[1];
    expect(bundle, 'the built index.html names its bundle').toBeDefined();
    const plain = await get(`/dashboard/${bundle}`);
    expect(plain.headers['content-encoding']).toBeUndefined();
    expect(plain.body.length).toBeGreaterThan(100_000);
    const br = await get(`/dashboard/${bundle}`, { 'accept-encoding': 'gzip, deflate, br' });
    expect(br.headers['content-encoding']).toBe('br');
    expect(br.headers.vary).toContain('accept-encoding');
    expect(br.headers['cache-control']).toContain('immutable');
    expect(brotliDecompressSync(br.body).equals(plain.body)).toBe(true);
    expect(br.body.length).toBeLessThan(plain.body.length / 2.5);
    const gz = await get(`/dashboard/${bundle}`, { 'accept-encoding': 'gzip' });
    expect(gz.headers['content-encoding']).toBe('gzip');
    expect(gunzipSync(gz.body).equals(plain.body)).toBe(true);
  });

  it('sends the docs compressed', async () => {
    for (const path of ['/docs/json', '/docs']) {
      const plain = await get(path);
      const br = await get(path, { 'accept-encoding': 'br' });
      expect(br.status, path).toBe(200);
      expect(br.headers['content-encoding'], path).toBe('br');
      expect(brotliDecompressSync(br.body).equals(plain.body), path).toBe(true);
    }
  });

  it('leaves API answers and event streams alone', async () => {
    const api = await get('/v1/account', { authorization: `Bearer ${c.devKey}`, 'accept-encoding': 'br' });
    expect(api.status).toBe(200);
    expect(api.headers['content-encoding']).toBeUndefined();
    const health = await get('/health', { 'accept-encoding': 'br, gzip' });
    expect(health.headers['content-encoding']).toBeUndefined();
  });
});
