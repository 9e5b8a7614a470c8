import { createHash } from 'node:crypto';

import { describe, expect, it } from 'vitest';

import { hashArtifact } from './artifact-protocol.js';

describe('hashArtifact', () => {
  const model = { weightsManifest: [{ paths: ['w.bin'] }], format: 'layers-model' };
  const weights = Uint8Array.from([1, 2, 3, 4, 5]);

  it('is sha256 of the canonical model.json bytes followed by the weights', () => {
    const canonical = '{"format":"layers-model","weightsManifest":[{"paths":["w.bin"]}]}';
    const expected = createHash('sha256').update(canonical).update(weights).digest('hex');
    expect(hashArtifact(model, weights)).toBe(expected);
  });

  it('ignores key order and shard boundaries, but not content', () => {
    const reordered = { format: 'layers-model', weightsManifest: [{ paths: ['w.bin'] }] };
    const h = hashArtifact(model, weights);
    expect(hashArtifact(reordered, [weights.subarray(0, 2), weights.subarray(2)])).toBe(h);
    expect(hashArtifact(model, Uint8Array.from([1, 2, 3, 4, 6]))).not.toBe(h);
    expect(hashArtifact({ ...model, format: 'graph-model' }, weights)).not.toBe(h);
  });
});
