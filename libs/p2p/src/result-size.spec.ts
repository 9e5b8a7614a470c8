import {
  MAX_INPUT_TENSORS,
  PROTOCOL_VERSION,
  encodeTensor,
  parseJobSpec,
  signPayload,
  type JobSpec,
  type TensorWire,
} from '@gpumesh/protocol';
import { Wallet } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { DATA_FRAME_MAX_BYTES } from './frames.js';
import {
  INFERENCE_OUTPUT_BYTES_PER_INPUT_BYTE,
  INFERENCE_OUTPUT_MAX_BYTES,
  INFERENCE_OUTPUT_MIN_BYTES,
  RESULT_FRAME_SLACK_BYTES,
  RESULT_TENSOR_OVERHEAD_BYTES,
  TRAIN_OUTPUT_MAX_BYTES,
  base64Length,
  expectedOutputs,
  expectedResultFrameBytes,
} from './result-size.js';

const PROVIDER = new Wallet(`0x${'a7'.repeat(32)}`);
const MIB = 1024 * 1024;

function matmul(
  aShape: [number, number],
  bShape: [number, number],
  dtype: 'float32' | 'int32' = 'float32',
  params = {},
): JobSpec {
  const zeros = (shape: [number, number]): Float32Array | Int32Array =>
    dtype === 'float32' ? new Float32Array(shape[0] * shape[1]) : new Int32Array(shape[0] * shape[1]);
  return parseJobSpec({
    version: PROTOCOL_VERSION,
    kind: 'matmul',
    inputs: [
      encodeTensor('a', dtype, aShape, zeros(aShape) as never),
      encodeTensor('b', dtype, bShape, zeros(bShape) as never),
    ],
    params,
    maxPricePerUnit: '1',
  });
}

/** The bytes of the `result` frame an honest agent sends (with a real signed receipt), as a batch outcome too. */
async function honestFrameBytes(outputs: TensorWire[]): Promise<{ single: number; batched: number }> {
  const receipt = await signPayload(
    'receipt',
    {
      version: PROTOCOL_VERSION,
      jobId: '6f1c2a4e-8d1b-4c7e-9a3f-2b5d7e9f1a3c',
      attempt: 123_456,
      providerPeerId: '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA',
      providerAddress: PROVIDER.address,
      inputHash: 'ab'.repeat(32),
      outputHash: 'cd'.repeat(32),
      backend: 'tensorflow-gpu',
      timings: { queuedMs: 1_000_000, runMs: 86_400_000, totalMs: 87_400_000 },
      finishedAt: 1_750_000_000_000,
    },
    PROVIDER,
  );
  const single = JSON.stringify({ type: 'result', outputs, receipt }).length;
  const batched = JSON.stringify({
    type: 'results',
    results: [{ type: 'result', index: 127, outputs, receipt }],
  }).length;
  return { single, batched };
}

describe('expectedResultFrameBytes', () => {
  it('is exact for a 2×2 matmul: its honest frame fits, with only the slack to spare', async () => {
    const spec = matmul([2, 2], [2, 2]);
    const cap = expectedResultFrameBytes(spec);
    expect(cap).toBe(base64Length(16) + RESULT_TENSOR_OVERHEAD_BYTES + RESULT_FRAME_SLACK_BYTES);
    const { single, batched } = await honestFrameBytes([
      encodeTensor('c', 'float32', [2, 2], new Float32Array(4)),
    ]);
    expect(single).toBeLessThanOrEqual(cap);
    expect(batched).toBeLessThanOrEqual(cap);
    expect(cap).toBeLessThan(20 * 1024); // not the 96 MiB every stream could buffer before
  });

  it('covers every honest matmul result, transposed or not, float32 or int32 (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 300 }),
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 300 }),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom('float32' as const, 'int32' as const),
        async (m, k, n, transposeA, transposeB, dtype) => {
          const spec = matmul(transposeA ? [k, m] : [m, k], transposeB ? [n, k] : [k, n], dtype, {
            transposeA,
            transposeB,
          });
          expect(expectedOutputs(spec)).toEqual({ bytes: m * n * 4, tensors: 1 });
          const values =
            dtype === 'float32'
              ? new Float32Array(m * n).fill(-1.2345678e-30)
              : new Int32Array(m * n).fill(-2147483648);
          const { single, batched } = await honestFrameBytes([
            encodeTensor('c', dtype, [m, n], values as never),
          ]);
          const cap = expectedResultFrameBytes(spec);
          expect(single).toBeLessThanOrEqual(cap);
          expect(batched).toBeLessThanOrEqual(cap);
          expect(cap - single).toBeLessThan(RESULT_FRAME_SLACK_BYTES + RESULT_TENSOR_OVERHEAD_BYTES);
        },
      ),
      { numRuns: 40 },
    );
  });

  it('never exceeds DATA_FRAME_MAX_BYTES (a 4096×1 by 1×4096 matmul: 64 MiB of output from 32 KiB of input)', () => {
    const spec = matmul([4096, 1], [1, 4096]);
    expect(expectedOutputs(spec).bytes).toBe(64 * MIB);
    expect(expectedResultFrameBytes(spec)).toBe(
      base64Length(64 * MIB) + RESULT_TENSOR_OVERHEAD_BYTES + RESULT_FRAME_SLACK_BYTES,
    );
    const huge = matmul([8192, 1], [1, 8192]);
    expect(expectedResultFrameBytes(huge)).toBe(DATA_FRAME_MAX_BYTES);
  });

  it('derives inference allowances from the inputs, the batch and the declared outputs', () => {
    const base = {
      version: PROTOCOL_VERSION,
      kind: 'inference',
      model: { hash: 'ab'.repeat(32), format: 'layers' },
      maxPricePerUnit: '1',
    };
    const small = parseJobSpec({
      ...base,
      inputs: [encodeTensor('input', 'float32', [1, 4], new Float32Array(4))],
      outputs: ['dense_1'],
    });
    expect(expectedOutputs(small)).toEqual({ bytes: Math.max(INFERENCE_OUTPUT_MIN_BYTES, MIB), tensors: 1 });

    const inputBytes = 256 * 1024;
    const wide = parseJobSpec({
      ...base,
      inputs: [encodeTensor('input', 'float32', [1, inputBytes / 4], new Float32Array(inputBytes / 4))],
    });
    expect(expectedOutputs(wide)).toEqual({
      bytes: inputBytes * INFERENCE_OUTPUT_BYTES_PER_INPUT_BYTE,
      tensors: MAX_INPUT_TENSORS,
    });

    const batched = parseJobSpec({
      ...base,
      inputs: [encodeTensor('input', 'float32', [1, 4], new Float32Array(4))],
      params: { batchSize: 10 },
      outputs: ['a', 'b'],
    });
    expect(expectedOutputs(batched)).toEqual({ bytes: 10 * MIB, tensors: 2 });

    const big = parseJobSpec({
      ...base,
      inputs: [encodeTensor('input', 'float32', [1024, 1024], new Float32Array(1024 * 1024))],
    });
    expect(expectedOutputs(big).bytes).toBe(INFERENCE_OUTPUT_MAX_BYTES);
    expect(expectedResultFrameBytes(big)).toBeLessThanOrEqual(DATA_FRAME_MAX_BYTES);
  });

  it('bounds trained weights by the model when its size is known, else by a per-kind cap', () => {
    const spec = parseJobSpec({
      version: PROTOCOL_VERSION,
      kind: 'train',
      inputs: [
        encodeTensor('x', 'float32', [10, 4], new Float32Array(40)),
        encodeTensor('y', 'float32', [10, 1], new Float32Array(10)),
      ],
      model: { hash: 'cd'.repeat(32), format: 'layers' },
      params: { epochs: 1, batchSize: 2, learningRate: 0.01, optimizer: 'adam', loss: 'meanSquaredError' },
      maxPricePerUnit: '1',
    });
    expect(expectedOutputs(spec).bytes).toBe(TRAIN_OUTPUT_MAX_BYTES);
    expect(expectedOutputs(spec, { modelBytes: 5000 }).bytes).toBe(5000);
    expect(expectedResultFrameBytes(spec, { modelBytes: 5000 })).toBe(
      base64Length(5000) + MAX_INPUT_TENSORS * RESULT_TENSOR_OVERHEAD_BYTES + RESULT_FRAME_SLACK_BYTES,
    );
    expect(expectedResultFrameBytes(spec)).toBeLessThanOrEqual(DATA_FRAME_MAX_BYTES);
  });
});
