import { describe, expect, it } from 'vitest';
import { encodeTensor, parseJobSpec, type JobSpec } from '@gpumesh/protocol';
import { staticIssues } from './static-checks.js';

function matmul(over: Record<string, unknown> = {}, dtype: 'float32' | 'int32' = 'float32'): JobSpec {
  const values = dtype === 'int32' ? new Int32Array([1, 2, 3, 4]) : new Float32Array([1, 2, 3, 4]);
  return parseJobSpec({
    version: 1,
    kind: 'matmul',
    inputs: [encodeTensor('a', dtype, [2, 2], values), encodeTensor('b', dtype, [2, 2], values)],
    maxPricePerUnit: '1',
    ...over,
  });
}

describe('staticIssues', () => {
  it('passes a job that some provider could run', () => {
    expect(staticIssues(matmul())).toEqual([]);
    expect(staticIssues(matmul({}, 'int32'))).toEqual([]);
    expect(staticIssues(matmul({ requirements: { backends: ['wasm', 'cpu'] } }, 'int32'))).toEqual([]);
  });

  it('takes a 4096² matmul by ref, and refuses one whose product is over the result cap', () => {
    const ref = (name: string, shape: number[]): Record<string, unknown> => {
      const sha256 = (name === 'a' ? 'aa' : 'bb').repeat(32);
      return { name, ref: `sha256:${sha256}`, dtype: 'float32', shape, sha256 };
    };
    // 64 MiB inputs, 4 MiB product: the inline caps do not bound refs
    expect(staticIssues(matmul({ inputs: [ref('a', [1024, 16384]), ref('b', [16384, 1024])] }))).toEqual([]);
    // a 64 MiB product comes back by ref (default cap: 1 GiB)
    const big = matmul({ inputs: [ref('a', [4096, 4096]), ref('b', [4096, 4096])] });
    expect(staticIssues(big)).toEqual([]);
    // ... unless the coordinator's MAX_RESULT_TENSOR_BYTES is lower
    expect(staticIssues(big, { maxResultTensorBytes: 32 * 1024 * 1024 })).toEqual([
      { path: 'inputs', message: expect.stringContaining('float32[4096,4096], 67108864 bytes') as string },
    ]);
    // and never above MAX_REF_TENSOR_BYTES (1 GiB): a 32768² float32 product is 4 GiB
    const huge = matmul({ inputs: [ref('a', [32768, 128]), ref('b', [128, 32768])] });
    expect(staticIssues(huge, { maxResultTensorBytes: Number.MAX_SAFE_INTEGER })[0].message).toContain(
      'at most 1073741824 bytes',
    );
  });

  it('refuses a max price of 0, naming the field', () => {
    expect(staticIssues(matmul({ maxPricePerUnit: '0' }))).toEqual([
      { path: 'maxPricePerUnit', message: expect.stringContaining('at least 1') as string },
    ]);
  });

  it('refuses an int32 matmul that may only run where int32 matmuls cannot', () => {
    const [issue] = staticIssues(matmul({ requirements: { backends: ['wasm'] } }, 'int32'));
    expect(issue.path).toBe('requirements.backends');
    expect(issue.message).toContain('inputs[0].dtype int32 runs on tensorflow-gpu, tensorflow, cpu only');
  });

  it('refuses NaN and Infinity in an input, naming the input and the element', () => {
    const finite = matmul();
    const b = encodeTensor('b', 'float32', [2, 2], new Float32Array([1, 2, Number.NaN, 4]));
    expect(staticIssues({ ...finite, inputs: [finite.inputs[0], b] })).toEqual([
      { path: 'inputs[1].data', message: expect.stringContaining('element 2 is NaN') as string },
    ]);
    const a = encodeTensor('a', 'float32', [2, 2], new Float32Array([-Infinity, 2, 3, 4]));
    expect(staticIssues({ ...finite, inputs: [a, finite.inputs[1]] })[0].message).toContain('-Infinity');
  });
});
