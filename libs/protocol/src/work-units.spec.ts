import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { parseJobSpec } from './job-spec.js';
import { encodeTensor } from './tensor.js';
import { inferenceSpecInput, matmulSpecInput, trainSpecInput } from './test-fixtures.js';
import { WORK_UNIT_FLOPS, flopsToWorkUnits, jobFlops, workUnitsForSpec } from './work-units.js';

const denseModel = {
  format: 'layers-model',
  modelTopology: {
    class_name: 'Sequential',
    config: { layers: [{ class_name: 'Dense', config: { units: 1000, batch_input_shape: [null, 4] } }] },
  },
};

describe('work units', () => {
  it('1 work unit = 1 MFLOP, rounded up, minimum 1', () => {
    expect(WORK_UNIT_FLOPS).toBe(1_000_000n);
    expect(flopsToWorkUnits(0n)).toBe(1n);
    expect(flopsToWorkUnits(1n)).toBe(1n);
    expect(flopsToWorkUnits(1_000_000n)).toBe(1n);
    expect(flopsToWorkUnits(1_000_001n)).toBe(2n);
  });

  it('is monotone in FLOPs (property)', () => {
    fc.assert(
      fc.property(
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
        fc.bigInt({ min: 0n, max: 10n ** 24n }),
        (a, b) => {
          const [lo, hi] = a <= b ? [a, b] : [b, a];
          expect(flopsToWorkUnits(lo) <= flopsToWorkUnits(hi)).toBe(true);
          expect(flopsToWorkUnits(hi) * WORK_UNIT_FLOPS >= hi).toBe(true);
        },
      ),
    );
  });

  it('matmul costs 2·m·n·k, respecting transposes', () => {
    expect(jobFlops(parseJobSpec(matmulSpecInput(2, 3, 4)))).toBe(2n * 2n * 3n * 4n);
    const a = encodeTensor('a', 'float32', [300, 200], new Float32Array(60_000)); // transposed: m=200, k=300
    const b = encodeTensor('b', 'float32', [500, 300], new Float32Array(150_000)); // transposed: n=500
    const spec = parseJobSpec({
      ...matmulSpecInput(),
      inputs: [a, b],
      params: { transposeA: true, transposeB: true },
    });
    expect(jobFlops(spec)).toBe(2n * 200n * 500n * 300n);
    expect(workUnitsForSpec(spec)).toBe(60n);
  });

  it('inference costs forward FLOPs × batch; train 3 × forward × samples × epochs', () => {
    const forward = 2n * 4n * 1000n;
    const inference = parseJobSpec(inferenceSpecInput());
    expect(jobFlops(inference, forward)).toBe(forward * 8n);
    expect(workUnitsForSpec(inference, denseModel)).toBe(1n);
    const train = parseJobSpec(trainSpecInput());
    expect(jobFlops(train, forward)).toBe(3n * forward * 10n * 5n);
    expect(workUnitsForSpec(train, denseModel)).toBe(2n);
  });

  it('needs the model to price inference and train', () => {
    expect(() => workUnitsForSpec(parseJobSpec(inferenceSpecInput()))).toThrow(/model.json/);
    expect(() => jobFlops(parseJobSpec(trainSpecInput()))).toThrow(/model's FLOPs/);
  });
});
