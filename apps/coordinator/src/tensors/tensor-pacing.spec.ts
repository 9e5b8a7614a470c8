import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ByteRate,
  DEFAULT_P2P_TENSOR_BYTES_PER_SECOND,
  p2pTensorBytesPerSecond,
  pacedChunks,
} from './tensor-pacing.js';

describe('ByteRate (a token bucket over bytes)', () => {
  it('never lets through more than the burst plus the rate over the time elapsed, when callers wait as told', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.integer({ min: 1, max: 4_000_000 }),
        fc.array(fc.record({ bytes: fc.integer({ min: 0, max: 2_000_000 }), gapMs: fc.nat(2_000) }), {
          maxLength: 60,
        }),
        (rate, burst, takes) => {
          const bucket = new ByteRate(rate, burst, 0);
          let now = 0;
          let sent = 0;
          for (const t of takes) {
            now += t.gapMs;
            now += bucket.take(t.bytes, now); // the caller waits, then sends
            sent += t.bytes;
            // 1e-6 relative: the wait is computed in floating point
            expect(sent).toBeLessThanOrEqual((burst + (rate * now) / 1000) * (1 + 1e-9) + 1e-6);
          }
        },
      ),
    );
  });

  it('lets a burst through at once, then spaces what follows at the rate', () => {
    const bucket = new ByteRate(1000, 4000, 0);
    expect(bucket.take(4000, 0)).toBe(0);
    expect(bucket.take(1000, 0)).toBeCloseTo(1000); // 1,000 bytes at 1,000 B/s
    expect(bucket.take(500, 0)).toBeCloseTo(1500); // queued behind the first
    // a long idle spell refills the bucket to the burst, not beyond
    const idle = new ByteRate(1000, 4000, 0);
    idle.take(4000, 0);
    expect(idle.take(4000, 1_000_000)).toBe(0);
    expect(idle.take(1, 1_000_000)).toBeGreaterThan(0);
  });

  it('ignores a clock that goes back, and refuses a rate or burst that is not positive', () => {
    const bucket = new ByteRate(1000, 1000, 5000);
    bucket.take(1000, 5000);
    expect(bucket.take(1000, 0)).toBeCloseTo(1000);
    expect(() => new ByteRate(0, 1, 0)).toThrow(RangeError);
    expect(() => new ByteRate(1, 0, 0)).toThrow(RangeError);
  });
});

describe('pacedChunks', () => {
  async function* source(chunks: number, bytes: number): AsyncGenerator<Uint8Array> {
    for (let i = 0; i < chunks; i++) yield new Uint8Array(bytes).fill(i);
  }

  it('yields every chunk, in order, unchanged; unpaced without a rate', async () => {
    const out: number[] = [];
    for await (const c of pacedChunks(source(5, 3), undefined)) out.push(c[0], c.byteLength);
    expect(out).toEqual([0, 3, 1, 3, 2, 3, 3, 3, 4, 3]);
  });

  it('holds chunks past the burst back to the rate', async () => {
    // 64 KiB burst, 1 MiB/s: eight 32 KiB chunks need (256 - 64) KiB / 1 MiB/s = 187.5 ms at least
    const started = performance.now();
    let n = 0;
    for await (const c of pacedChunks(source(8, 32 * 1024), new ByteRate(1024 * 1024, 64 * 1024, started))) {
      n += c.byteLength;
    }
    expect(n).toBe(256 * 1024);
    expect(performance.now() - started).toBeGreaterThanOrEqual(180);
  });
});

describe('p2pTensorBytesPerSecond', () => {
  it('paces a process that also answers the API, not a worker of its own, unless configured', () => {
    expect(p2pTensorBytesPerSecond('all', undefined)).toBe(DEFAULT_P2P_TENSOR_BYTES_PER_SECOND);
    expect(p2pTensorBytesPerSecond('worker', undefined)).toBe(0);
    expect(p2pTensorBytesPerSecond('worker', 1234)).toBe(1234);
    expect(p2pTensorBytesPerSecond('all', 0)).toBe(0);
  });
});
