import './polyfills.js';

import { streamPair } from '@libp2p/utils';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';

import { StreamError } from './errors.js';
import { FramedStream, decodeVarint, encodeFrame, encodeVarint } from './frames.js';

const Hello = z.strictObject({ type: z.literal('hello'), n: z.number().int() });

async function framedPair(options: ConstructorParameters<typeof FramedStream>[1] = {}) {
  const [a, b] = await streamPair();
  return { a: new FramedStream(a, options), b: new FramedStream(b, options), rawA: a, rawB: b };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(StreamError);
  return (err as StreamError).code;
}

describe('varint', () => {
  it('round-trips values across byte boundaries', () => {
    for (const n of [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 21, 96 * 1024 * 1024, 2 ** 32]) {
      const bytes = encodeVarint(n);
      expect(decodeVarint(bytes)).toEqual({ value: n, bytes: bytes.length });
    }
  });

  it('reports incomplete, non-minimal and over-long prefixes', () => {
    expect(decodeVarint(Uint8Array.from([0x80]))).toBe('incomplete');
    expect(decodeVarint(Uint8Array.from([0x80, 0x00]))).toBe('malformed');
    expect(decodeVarint(Uint8Array.from([0xff, 0xff, 0xff, 0xff, 0xff, 0x01]))).toBe('malformed');
  });
});

describe('FramedStream', () => {
  it('carries JSON and binary frames in order, split or coalesced', async () => {
    const { a, b, rawA } = await framedPair();
    await a.write({ type: 'hello', n: 1 });
    await a.writeBytes(Uint8Array.from([1, 2, 3]));
    // one frame delivered a byte at a time
    const frame = encodeFrame(new TextEncoder().encode(JSON.stringify({ type: 'hello', n: 2 }))).subarray();
    for (const byte of frame) rawA.send(Uint8Array.of(byte));
    await a.close();

    expect(await b.read(Hello)).toEqual({ type: 'hello', n: 1 });
    expect([...(await b.readBytes())]).toEqual([1, 2, 3]);
    expect(await b.read(Hello, { timeoutMs: 1000 })).toEqual({ type: 'hello', n: 2 });
    expect(await b.readOrEnd(Hello)).toBeUndefined();
  });

  it('fails with BAD_FRAME on garbage and resets the stream', async () => {
    const { b, rawA } = await framedPair();
    rawA.send(encodeFrame(new TextEncoder().encode('{not json')));
    expect(await codeOf(b.read(Hello))).toBe('BAD_FRAME');
    expect(b.error?.code).toBe('BAD_FRAME');
    // sticky: later reads fail the same way
    expect(await codeOf(b.read(Hello))).toBe('BAD_FRAME');
  });

  it('fails with BAD_FRAME when JSON does not match the schema', async () => {
    const { a, b } = await framedPair();
    await a.write({ type: 'hello', n: 'one' });
    expect(await codeOf(b.read(Hello))).toBe('BAD_FRAME');
  });

  it('fails with FRAME_TOO_LARGE on an oversize length prefix, before the body arrives', async () => {
    const { b, rawA } = await framedPair();
    rawA.send(encodeVarint(2 * 1024 * 1024));
    expect(await codeOf(b.read(Hello, { maxBytes: 1024 * 1024 }))).toBe('FRAME_TOO_LARGE');
  });

  it('cuts off a peer that floods beyond the buffer cap', async () => {
    const { b, rawA } = await framedPair({ maxFrameBytes: 1024, maxBufferedBytes: 4096 });
    for (let i = 0; i < 10; i++) rawA.send(encodeFrame(new Uint8Array(1000)));
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(b.error?.code).toBe('FRAME_TOO_LARGE');
  });

  it('pauses the stream while the reader is behind (pauseAboveBytes) and loses nothing when the remote closes meanwhile', async () => {
    // (libp2p's async iterator would end at the remote's close with the paused bytes unread)
    const { a, b } = await framedPair({
      maxFrameBytes: 1024,
      maxBufferedBytes: 1024 * 1024,
      pauseAboveBytes: 2048,
    });
    const sent = (async () => {
      for (let i = 0; i < 200; i++) await a.writeBytes(new Uint8Array(1000).fill(i));
      await a.close();
    })();
    const received: number[] = [];
    for (;;) {
      await new Promise((resolve) => setTimeout(resolve, 2)); // a slow reader
      const frame = await b.readBytesOrEnd({ timeoutMs: 5_000 });
      if (frame === undefined) break;
      received.push(frame[0]);
    }
    await sent;
    expect(b.error).toBeUndefined();
    expect(received).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it('times out a read and aborts only that stream', async () => {
    const { b, rawB } = await framedPair();
    expect(await codeOf(b.read(Hello, { timeoutMs: 30 }))).toBe('TIMEOUT');
    expect(rawB.status).toBe('aborted');
  });

  it('times out on silence (no byte for idleTimeoutMs), also in the middle of a frame', async () => {
    const { b, rawA } = await framedPair();
    rawA.send(Uint8Array.from([100, 1, 2, 3])); // a 100-byte frame: its prefix and 3 bytes
    const started = performance.now();
    const err = await b.read(Hello, { idleTimeoutMs: 60 }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'TIMEOUT' });
    expect((err as StreamError).message).toMatch(/4 bytes of an unfinished frame/);
    expect(performance.now() - started).toBeLessThan(1000);
  });

  it('does not cut a frame that arrives slowly, byte after byte, within the silence window', async () => {
    const { b, rawA } = await framedPair();
    const body = new TextEncoder().encode(JSON.stringify({ type: 'hello', n: 7 }));
    const framed = encodeFrame(body).subarray();
    const reading = b.read(Hello, { idleTimeoutMs: 80 });
    // ~20 ms a byte: the whole frame takes far longer than the window, no gap reaches it.
    for (const byte of framed) {
      rawA.send(Uint8Array.from([byte]));
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(framed.byteLength * 20).toBeGreaterThan(4 * 80);
    expect(await reading).toEqual({ type: 'hello', n: 7 });
  });

  it('asks admit for room for a frame above the buffer cap but within the frame cap', async () => {
    const asked: number[] = [];
    let grant: () => void = () => undefined;
    const { a, b } = await framedPair({
      maxFrameBytes: 200_000,
      maxBufferedBytes: 70_000,
      admit: (bytes) => {
        asked.push(bytes);
        return new Promise<void>((resolve) => (grant = resolve));
      },
    });
    const body = new Uint8Array(150_000).fill(7);
    const reading = b.readBytes({ idleTimeoutMs: 100 });
    await a.writeBytes(body);
    await new Promise((resolve) => setTimeout(resolve, 300)); // held back: not silence
    expect(asked.length).toBe(1);
    expect(asked[0]).toBeGreaterThanOrEqual(150_000);
    expect(asked[0]).toBeLessThanOrEqual(150_000 + 3 + 64 * 1024);
    grant();
    expect((await reading).byteLength).toBe(150_000);
  });

  it('fails with FRAME_TOO_LARGE when admit refuses, or the frame passes the frame cap', async () => {
    const refused = await framedPair({
      maxFrameBytes: 200_000,
      maxBufferedBytes: 70_000,
      admit: () => Promise.reject(new Error('no room')),
    });
    const reading = refused.b.readBytes();
    await refused.a.writeBytes(new Uint8Array(150_000));
    expect(await codeOf(reading)).toBe('FRAME_TOO_LARGE');

    let asked = 0;
    const over = await framedPair({
      maxFrameBytes: 200_000,
      maxBufferedBytes: 70_000,
      admit: async () => {
        asked += 1;
      },
    });
    over.rawA.send(encodeVarint(300_000));
    over.rawA.send(new Uint8Array(100_000));
    expect(await codeOf(over.b.readBytes())).toBe('FRAME_TOO_LARGE');
    expect(asked).toBe(0);
  });

  it('fails with STREAM_CLOSED when the stream ends before the frame, and BAD_FRAME inside one', async () => {
    const first = await framedPair();
    await first.a.close();
    expect(await codeOf(first.b.read(Hello))).toBe('STREAM_CLOSED');

    const second = await framedPair();
    second.rawA.send(Uint8Array.from([10, 1, 2]));
    await second.a.close();
    expect(await codeOf(second.b.read(Hello))).toBe('BAD_FRAME');
  });

  it('surfaces a remote abort as STREAM_RESET', async () => {
    const { b, rawA } = await framedPair();
    const pending = b.read(Hello);
    rawA.abort(new Error('boom'));
    expect(await codeOf(pending)).toBe('STREAM_RESET');
  });

  it('refuses to write a frame above its write cap', async () => {
    const { a } = await framedPair({ maxWriteFrameBytes: 10 });
    expect(await codeOf(a.writeBytes(new Uint8Array(11)))).toBe('FRAME_TOO_LARGE');
  });
});
