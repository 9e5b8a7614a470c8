import { describe, expect, it } from 'vitest';

import { MAX_REF_TENSOR_BYTES, MAX_TENSOR_BYTES } from './constants.js';
import { hashSpec, hashTensors, sha256Hex } from './hashing.js';
import { parseJobSpec, safeParseJobSpec } from './job-spec.js';
import { tensorBytes, type TensorWire } from './tensor.js';
import { refTensorByteLength, type TensorRef } from './tensor-ref.js';
import { matmulSpecInput } from './test-fixtures.js';

/** The stored form of an inline input: what the coordinator keeps when the same tensor was uploaded. */
function asRef(t: TensorWire): TensorRef {
  const sha256 = sha256Hex(tensorBytes(t));
  return { name: t.name, ref: `sha256:${sha256}`, dtype: t.dtype, shape: [...t.shape], sha256 };
}

describe('job inputs by ref', () => {
  it('a job whose inputs are refs has the spec hash and input hash of the same job sent inline', () => {
    const inline = parseJobSpec(matmulSpecInput(3, 4, 5));
    const byRef = parseJobSpec({ ...inline, inputs: inline.inputs.map((t) => asRef(t as TensorWire)) });
    expect(byRef.inputs.every((t) => 'ref' in t)).toBe(true);
    expect(hashSpec(byRef)).toBe(hashSpec(inline));
    expect(hashTensors(byRef.inputs)).toBe(hashTensors(inline.inputs));
    // one ref, one inline: still the same job
    const mixed = parseJobSpec({
      ...inline,
      inputs: [asRef(inline.inputs[0] as TensorWire), inline.inputs[1]],
    });
    expect(hashSpec(mixed)).toBe(hashSpec(inline));
    // another tensor behind the ref is another job
    const other = {
      ...asRef(inline.inputs[0] as TensorWire),
      sha256: 'ab'.repeat(32),
      ref: `sha256:${'ab'.repeat(32)}`,
    };
    expect(hashSpec(parseJobSpec({ ...inline, inputs: [other, inline.inputs[1]] }))).not.toBe(
      hashSpec(inline),
    );
  });

  it('refs are bounded by MAX_REF_TENSOR_BYTES, not by the inline caps', () => {
    const spec = matmulSpecInput();
    const side = 4096; // 64 MiB per input, 128 MiB per job: over MAX_TENSOR_BYTES and MAX_INPUT_BYTES_TOTAL
    const ref = (name: string): TensorRef => ({
      name,
      ref: `sha256:${(name === 'a' ? 'aa' : 'bb').repeat(32)}`,
      dtype: 'float32',
      shape: [side, side],
      sha256: (name === 'a' ? 'aa' : 'bb').repeat(32),
    });
    expect(refTensorByteLength('float32', [side, side])).toBeGreaterThan(MAX_TENSOR_BYTES);
    expect(safeParseJobSpec({ ...spec, inputs: [ref('a'), ref('b')] }).success).toBe(true);
    const huge = { ...ref('a'), shape: [MAX_REF_TENSOR_BYTES / 4 + 1] };
    const result = safeParseJobSpec({ ...spec, inputs: [huge, ref('b')] });
    expect(result.success).toBe(false);
    if (!result.success) {
      expect(result.error.code).toBe('TENSOR_TOO_LARGE');
      expect(result.error.message).toContain('inputs[0].shape');
    }
  });

  it('ref and sha256 must agree, and a bad inline tensor still names its own field', () => {
    const spec = matmulSpecInput();
    const inputs = (spec.inputs as TensorWire[]).map((t) => asRef(t));
    const wrong = safeParseJobSpec({
      ...spec,
      inputs: [{ ...inputs[0], ref: `sha256:${'0'.repeat(64)}` }, inputs[1]],
    });
    expect(wrong.success).toBe(false);
    if (!wrong.success) expect(wrong.error.message).toContain('inputs[0].ref');
    const badData = safeParseJobSpec({
      ...spec,
      inputs: [{ ...(spec.inputs as TensorWire[])[0], data: '!!!!' }, inputs[1]],
    });
    expect(badData.success).toBe(false);
    if (!badData.success) expect(badData.error.message).toMatch(/inputs\[0\]\.data: .*base64/);
  });
});
