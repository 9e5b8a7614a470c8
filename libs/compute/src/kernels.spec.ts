import { jobErrorFault } from '@gpumesh/protocol';
import { describe, expect, it } from 'vitest';

import { TaskError, executionError } from './kernels.js';

describe('executionError', () => {
  it('classes what no backend can run as the input’s fault', () => {
    const shape = executionError(
      new Error('Error when checking : expected dense_input to have shape [null,4]'),
    );
    expect(shape.code).toBe('BAD_INPUT');
    const op = executionError(new Error('Tensorflow Op is not supported: FancyOp'));
    expect(op.code).toBe('UNSUPPORTED_OP');
    for (const err of [shape, op]) expect(jobErrorFault(err.code)).toBe('input');
  });

  it('classes a kernel its backend lacks, or any other failure, as the provider’s', () => {
    // tfjs-backend-wasm's answer to an int32 matmul: another backend runs it.
    const wasm = executionError(new Error('BatchMatMul for non non-float32 tensors not yet supported.'));
    expect(wasm.code).toBe('EXECUTION_FAILED');
    expect(jobErrorFault(wasm.code)).toBe('provider');
    expect(jobErrorFault(executionError(new Error('out of memory')).code)).toBe('provider');
  });

  it('keeps a TaskError’s own code', () => {
    const err = new TaskError('MODEL_LOAD_FAILED', 'cannot load layers model: Unknown layer: Foo');
    expect(executionError(err)).toBe(err);
    expect(jobErrorFault(err.code)).toBe('input');
  });
});
