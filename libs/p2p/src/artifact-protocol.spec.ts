import { describe, expect, it } from 'vitest';
import {
  DEFAULT_ARTIFACT_TIMEOUT_MS,
  TENSOR_TRANSFER_MIN_BYTES_PER_SECOND,
  tensorTransferTimeoutMs,
} from './artifact-protocol.js';

describe('tensorTransferTimeoutMs', () => {
  it('gives a tensor the base deadline plus its size at the slowest pace a paced coordinator shares out', () => {
    expect(tensorTransferTimeoutMs(0)).toBe(DEFAULT_ARTIFACT_TIMEOUT_MS);
    const gib = 1024 * 1024 * 1024;
    expect(tensorTransferTimeoutMs(gib)).toBe(
      DEFAULT_ARTIFACT_TIMEOUT_MS + (gib / TENSOR_TRANSFER_MIN_BYTES_PER_SECOND) * 1000,
    );
    expect(tensorTransferTimeoutMs(gib)).toBe(376_000); // 120 s + 256 s
  });
});
