import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { MAX_INPUT_BYTES_TOTAL } from './constants.js';
import { jobSampleCount, parseJobSpec, safeParseJobSpec } from './job-spec.js';
import { encodeTensor } from './tensor.js';
import { inferenceSpecInput, matmulSpecInput, trainSpecInput } from './test-fixtures.js';

function errorOf(input: unknown): string {
  const result = safeParseJobSpec(input);
  if (result.success) throw new Error('expected the spec to be rejected');
  return result.error.message;
}

describe('JobSpec', () => {
  it('parses each kind and applies defaults', () => {
    const matmul = parseJobSpec(matmulSpecInput());
    expect(matmul).toMatchObject({
      kind: 'matmul',
      redundancy: 1,
      deadlineSeconds: 600,
      requirements: {},
      params: {},
    });
    expect(parseJobSpec(inferenceSpecInput())).toMatchObject({
      kind: 'inference',
      redundancy: 2,
      params: { batchSize: 8 },
    });
    expect(parseJobSpec(trainSpecInput())).toMatchObject({ kind: 'train', params: { epochs: 5 } });
  });

  it('is idempotent and survives JSON (property over matmul sizes)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        fc.integer({ min: 1, max: 6 }),
        (m, k, n) => {
          const once = parseJobSpec(matmulSpecInput(m, k, n));
          expect(parseJobSpec(JSON.parse(JSON.stringify(once)))).toEqual(once);
        },
      ),
      { numRuns: 50 },
    );
  });

  it('names the bad field path in errors', () => {
    const spec = matmulSpecInput();
    const inputs = spec.inputs as Record<string, unknown>[];
    expect(errorOf({ ...spec, inputs: [{ ...inputs[0], shape: [2, -3] }, inputs[1]] })).toContain(
      'inputs[0].shape: expected array of positive integers',
    );
    expect(errorOf({ ...spec, maxPricePerUnit: '1.5' })).toContain(
      'maxPricePerUnit: expected decimal integer string',
    );
    expect(errorOf({ ...spec, maxPricePerUnit: 100 })).toContain(
      'maxPricePerUnit: expected decimal integer string',
    );
    expect(errorOf({ ...spec, maxPricePerUnit: (10n ** 30n + 1n).toString() })).toContain(
      'maxPricePerUnit: expected integer string <=',
    );
    expect(errorOf({ ...spec, redundancy: 4 })).toContain('redundancy: expected 1..3');
    expect(errorOf({ ...spec, deadlineSeconds: 86_401 })).toContain(
      'deadlineSeconds: expected 1..86400 seconds',
    );
    expect(errorOf({ ...spec, requirements: { backends: ['cuda'] } })).toContain(
      'requirements.backends[0]: expected one of',
    );
    expect(errorOf({ ...spec, kind: 'render' })).toContain('kind: ');
    expect(errorOf({ ...spec, surprise: true })).toContain('surprise: unknown field');
  });

  it('rejects duplicate input names', () => {
    const spec = matmulSpecInput();
    const inputs = spec.inputs as Record<string, unknown>[];
    expect(errorOf({ ...spec, inputs: [inputs[0], { ...inputs[1], name: 'a' }] })).toContain(
      'inputs[1].name: duplicate tensor name "a"',
    );
  });

  it('forbids a model on matmul and requires one for inference and train', () => {
    expect(errorOf({ ...matmulSpecInput(), model: { hash: 'ab'.repeat(32), format: 'layers' } })).toContain(
      'model: model is not allowed for matmul jobs',
    );
    const { model: _inference, ...noModel } = inferenceSpecInput();
    expect(errorOf(noModel)).toContain('model: model is required for inference and train jobs');
    const { model: _train, ...noTrainModel } = trainSpecInput();
    expect(errorOf(noTrainModel)).toContain('model: model is required');
    expect(
      errorOf({ ...inferenceSpecInput(), model: { hash: 'AB'.repeat(32), format: 'layers' } }),
    ).toContain('model.hash: expected sha256 as 64 lower-case hex characters');
  });

  it('checks matmul inputs: names, rank and inner dimensions, honouring transposes', () => {
    const a = encodeTensor('a', 'float32', [2, 3], new Float32Array(6));
    const b = encodeTensor('b', 'float32', [4, 3], new Float32Array(12));
    const base = { ...matmulSpecInput(), inputs: [a, b] };
    expect(errorOf(base)).toContain('inputs[1].shape: inner dimensions differ: a gives 3, b gives 4');
    expect(parseJobSpec({ ...base, params: { transposeB: true } }).kind).toBe('matmul');
    expect(errorOf({ ...base, inputs: [a] })).toContain('inputs: matmul requires an input named "b"');
    const c = encodeTensor('c', 'float32', [3], new Float32Array(3));
    expect(errorOf({ ...base, inputs: [a, b, c] })).toContain(
      'inputs[2].name: matmul takes only inputs "a" and "b"',
    );
    expect(errorOf({ ...base, inputs: [a, { ...c, name: 'b' }] })).toContain(
      'inputs[1].shape: matmul input must be 2-D',
    );
  });

  it('checks train inputs x and y and its params', () => {
    const spec = trainSpecInput();
    const inputs = spec.inputs as Record<string, unknown>[];
    expect(errorOf({ ...spec, inputs: [inputs[0]] })).toContain('inputs: train requires an input named "y"');
    const y = encodeTensor('y', 'float32', [9, 1], new Float32Array(9));
    expect(errorOf({ ...spec, inputs: [inputs[0], y] })).toContain(
      'inputs[1].shape: x and y must have the same number',
    );
    const params = spec.params as Record<string, unknown>;
    expect(errorOf({ ...spec, params: { ...params, epochs: 1001 } })).toContain(
      'params.epochs: expected 1..1000',
    );
    expect(errorOf({ ...spec, params: { ...params, optimizer: 'rmsprop' } })).toContain(
      'params.optimizer: expected one of sgd, adam',
    );
    expect(errorOf({ ...spec, params: { ...params, learningRate: Number.POSITIVE_INFINITY } })).toContain(
      'params.learningRate',
    );
  });

  it('caps the total input bytes', () => {
    const big = (name: string): ReturnType<typeof encodeTensor> =>
      // 16 MiB each: five of them exceed the 64 MiB total.
      encodeTensor(name, 'bool', [4096, 4096], new Uint8Array(4096 * 4096));
    const input = { ...inferenceSpecInput(), inputs: ['i0', 'i1', 'i2', 'i3', 'i4'].map(big) };
    const result = safeParseJobSpec(input);
    expect(result.success).toBe(false);
    if (!result.success) {
      expect(result.error.code).toBe('TENSOR_TOO_LARGE');
      expect(result.error.message).toContain(`max is ${MAX_INPUT_BYTES_TOTAL}`);
    }
  });

  it('counts samples per kind', () => {
    expect(jobSampleCount(parseJobSpec(matmulSpecInput()))).toBe(1);
    expect(jobSampleCount(parseJobSpec(inferenceSpecInput()))).toBe(8);
    expect(jobSampleCount(parseJobSpec({ ...inferenceSpecInput(), params: {} }))).toBe(8);
    expect(jobSampleCount(parseJobSpec(trainSpecInput()))).toBe(10);
  });
});
