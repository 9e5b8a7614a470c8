import { describe, expect, it } from 'vitest';

import { readInto, wasmHeapView } from './read-into.js';
import { loadTf } from './tf-loader.js';

describe('readInto', () => {
  it('copies a wasm tensor straight from the heap, equal to what data() reads', async () => {
    const { tf: wasmTf } = await loadTf('wasm');
    const a = wasmTf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3]);
    const c = wasmTf.matMul(a, a, false, true);
    expect(wasmHeapView(wasmTf, c)?.byteLength).toBe(16); // the fast path is there (tfjs upgrade guard)
    const out = new Float32Array(new SharedArrayBuffer(16 + 8), 8, 4);
    await readInto(wasmTf, c, out);
    expect(Array.from(out)).toEqual(Array.from(await c.data()));
    const ints = wasmTf.tensor1d([7, -8, 9], 'int32');
    const intOut = new Int32Array(3);
    await readInto(wasmTf, ints, intOut);
    expect(Array.from(intOut)).toEqual([7, -8, 9]);
    await expect(readInto(wasmTf, c, new Float32Array(3))).rejects.toThrow(RangeError);
    wasmTf.dispose([a, c, ints]);
  });

  it('falls back to data() on other backends', async () => {
    const { tf: cpuTf } = await loadTf('cpu');
    const t = cpuTf.tensor1d([1.5, -2.5]);
    expect(wasmHeapView(cpuTf, t)).toBeNull();
    const out = new Float32Array(2);
    await readInto(cpuTf, t, out);
    expect(Array.from(out)).toEqual([1.5, -2.5]);
    t.dispose();
  });
});
