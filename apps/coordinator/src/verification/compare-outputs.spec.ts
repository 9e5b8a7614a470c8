import { describe, expect, it } from 'vitest';
import { encodeTensor } from '@gpumesh/protocol';
import { compareOutputs } from './compare-outputs.js';

const f = (values: number[]) => encodeTensor('y', 'float32', [values.length], Float32Array.from(values));

describe('compareOutputs', () => {
  it('accepts last-bit float differences and rejects real ones', () => {
    expect(compareOutputs([f([1, 2, 3])], [f([1.0000001, 2, 2.9999998])]).agree).toBe(true);
    const wrong = compareOutputs([f([1, 2, 3])], [f([1, 2, 3.1])]);
    expect(wrong.agree).toBe(false);
    expect(wrong.reason).toContain('output y');
  });

  it('compares integers exactly and checks names and shapes', () => {
    const i = (v: number[]) => encodeTensor('k', 'int32', [v.length], Int32Array.from(v));
    expect(compareOutputs([i([1, 2])], [i([1, 2])]).agree).toBe(true);
    expect(compareOutputs([i([1, 2])], [i([1, 3])]).agree).toBe(false);
    expect(compareOutputs([f([1, 2])], [f([1, 2, 3])]).agree).toBe(false);
    expect(compareOutputs([f([1])], [encodeTensor('z', 'float32', [1], Float32Array.from([1]))]).agree).toBe(
      false,
    );
  });
});
