import { describe, expect, it } from 'vitest';

import { encodeTensor, parseJobSpec } from '@gpumesh/protocol';

import { arenaLayout, InputArenas } from './arena.js';

describe('InputArenas', () => {
  it('hands back the smallest free arena that fits, else a new one', () => {
    const arenas = new InputArenas(3);
    const big = arenas.take(1024);
    const small = arenas.take(256);
    arenas.give(big);
    arenas.give(small);
    expect(arenas.take(200)).toBe(small);
    expect(arenas.take(200)).toBe(big);
    const fresh = arenas.take(200);
    expect(fresh).not.toBe(small);
    expect(fresh.byteLength).toBe(200);
  });

  it('keeps only the largest `keep` arenas', () => {
    const arenas = new InputArenas(2);
    for (const size of [100, 300, 200]) arenas.give(new SharedArrayBuffer(size));
    expect(arenas.freeBytes).toBe(500);
    expect(arenas.take(1).byteLength).toBe(200);
  });
});

describe('arenaLayout', () => {
  it('places each input at an 8-byte aligned offset after the one before', () => {
    const spec = parseJobSpec({
      version: 1,
      kind: 'matmul',
      inputs: [
        encodeTensor('a', 'float32', [3, 1], new Float32Array(3)),
        encodeTensor('b', 'float32', [1, 2], new Float32Array(2)),
      ],
      maxPricePerUnit: '1',
    });
    expect(arenaLayout(spec)).toEqual({ offsets: [0, 16], bytes: 24 });
  });
});
