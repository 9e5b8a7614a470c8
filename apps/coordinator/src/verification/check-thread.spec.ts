import { describe, expect, it } from 'vitest';
import { encodeTensor, parseJobSpec, tensorView, type DecodedTensor } from '@gpumesh/protocol';
import { checkResultSanity } from '@gpumesh/verification';
import { OFF_LOOP_MIN_ELEMENTS, checkResultSanityOffLoop, compareResultsOffLoop } from './check-thread.js';
import { compareResults } from './compare.js';

const [M, K, N] = [1024, 4, 1024]; // a 1024×1024 product: 2 × 1 Mi elements, over the threshold
const spec = parseJobSpec({
  version: 1,
  kind: 'matmul',
  maxPricePerUnit: '1',
  inputs: [
    encodeTensor('a', 'float32', [M, K], new Float32Array(M * K).fill(0.5)),
    encodeTensor('b', 'float32', [K, N], new Float32Array(K * N).fill(0.25)),
  ],
});

/** A product as read back from the store: values in shared memory, with its (made-up) sha256. */
function product(sha: string, change?: (values: Float32Array) => void, rows = M): DecodedTensor {
  const bytes = new Uint8Array(new SharedArrayBuffer(rows * N * 4));
  const values = new Float32Array(bytes.buffer);
  for (let i = 0; i < values.length; i++) values[i] = 0.5 + ((i * 7919) % 1000) / 1000;
  change?.(values);
  return Object.assign(tensorView('c', 'float32', [rows, N], bytes), { sha256: sha.repeat(64) });
}

describe('result checks on the check thread', () => {
  it('gives the agreement the loop gives, for copies whose bytes differ', async () => {
    expect(2 * M * N).toBeGreaterThanOrEqual(OFF_LOOP_MIN_ELEMENTS);
    const base = product('a');
    const cases = [
      product('b'), // same values, another hash: compared, not short-cut
      product('c', (v) => (v[12345] *= 1 + 1e-6)), // within tolerance
      product('d', (v) => (v[777] += 50)), // far off
      product('e', (v) => (v[5] = Number.NaN)), // NaN where the other has a number
    ];
    for (const other of cases) {
      const onLoop = compareResults([base], [other], { spec });
      expect(await compareResultsOffLoop([base], [other], { spec })).toEqual(onLoop);
    }
    expect((await compareResultsOffLoop([base], [cases[1]], { spec })).agree).toBe(true);
    const far = await compareResultsOffLoop([base], [cases[2]], { spec });
    expect(far.agree).toBe(false);
    expect(far.reason).toContain('c');
    expect((await compareResultsOffLoop([base], [cases[3]], { spec })).agree).toBe(false);
  });

  it('keeps the event loop free while it compares', async () => {
    const rows = 4 * M; // 2 × 4 Mi elements
    const [a, b] = [product('f', undefined, rows), product('g', (v) => (v[1] += 1e-6), rows)];
    const bigSpec = parseJobSpec({
      ...spec,
      inputs: [
        encodeTensor('a', 'float32', [rows, K], new Float32Array(rows * K).fill(0.5)),
        encodeTensor('b', 'float32', [K, N], new Float32Array(K * N).fill(0.25)),
      ],
    });
    await compareResultsOffLoop([a], [b], { spec: bigSpec }); // the thread is started
    let started = performance.now();
    compareResults([a], [b], { spec: bigSpec });
    const onLoopMs = performance.now() - started;
    started = performance.now();
    const pending = compareResultsOffLoop([a], [b], { spec: bigSpec });
    const blockedMs = performance.now() - started;
    let turns = 0;
    const ticker = setInterval(() => turns++, 1);
    const agreement = await pending;
    clearInterval(ticker);
    expect(agreement.agree).toBe(true);
    expect(blockedMs).toBeLessThan(onLoopMs / 2);
    expect(turns).toBeGreaterThan(0);
  });

  it('runs the sanity check of a large result as the loop does', async () => {
    const finite = product('h');
    const inf = product('i', (v) => (v[4096] = Number.POSITIVE_INFINITY));
    expect(await checkResultSanityOffLoop(spec, [finite])).toEqual(checkResultSanity(spec, [finite]));
    const verdict = await checkResultSanityOffLoop(spec, [inf]);
    expect(verdict).toEqual(checkResultSanity(spec, [inf]));
    expect(verdict).toMatchObject({ ok: false, code: 'NON_FINITE_OUTPUT' });
  });
});
