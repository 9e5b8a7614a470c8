import { describe, expect, it } from 'vitest';

import { BACKENDS } from './backend.js';
import { backendsAbleToRun, jobErrorFault, placeableBackends } from './job-errors.js';
import { parseJobSpec } from './job-spec.js';
import { encodeTensor } from './tensor.js';
import { inferenceSpecInput, matmulSpecInput } from './test-fixtures.js';

function int32Matmul(backends?: string[]): ReturnType<typeof parseJobSpec> {
  return parseJobSpec({
    ...matmulSpecInput(),
    inputs: [
      encodeTensor('a', 'int32', [2, 2], new Int32Array([1, 2, 3, 4])),
      encodeTensor('b', 'int32', [2, 2], new Int32Array([1, 0, 0, 1])),
    ],
    ...(backends ? { requirements: { backends } } : {}),
  });
}

describe('jobErrorFault', () => {
  it('reads the input-fault codes as the input’s fault and everything else as the provider’s', () => {
    expect(jobErrorFault('BAD_INPUT')).toBe('input');
    expect(jobErrorFault('MODEL_LOAD_FAILED')).toBe('input');
    expect(jobErrorFault('UNSUPPORTED_OP')).toBe('input');
    for (const code of ['EXECUTION_FAILED', 'TIMEOUT', 'MEMORY_LIMIT', 'WORKER_CRASHED', 'CANCELLED', 'X']) {
      expect(jobErrorFault(code)).toBe('provider');
    }
  });
});

describe('backendsAbleToRun / placeableBackends', () => {
  it('lets every backend run a float32 matmul and an inference', () => {
    expect(backendsAbleToRun(parseJobSpec(matmulSpecInput()))).toEqual(BACKENDS);
    expect(backendsAbleToRun(parseJobSpec(inferenceSpecInput()))).toEqual(BACKENDS);
  });

  it('keeps an int32 matmul off wasm', () => {
    expect(backendsAbleToRun(int32Matmul())).not.toContain('wasm');
    expect(placeableBackends(int32Matmul())).toEqual(['tensorflow-gpu', 'tensorflow', 'cpu']);
  });

  it('intersects with the backends the job allows, possibly to nothing', () => {
    expect(placeableBackends(int32Matmul(['wasm', 'cpu']))).toEqual(['cpu']);
    expect(placeableBackends(int32Matmul(['wasm']))).toEqual([]);
    expect(
      placeableBackends(parseJobSpec({ ...matmulSpecInput(), requirements: { backends: ['wasm'] } })),
    ).toEqual(['wasm']);
  });
});
