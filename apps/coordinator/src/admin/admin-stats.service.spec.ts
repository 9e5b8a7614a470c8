import { describe, expect, it } from 'vitest';
import { gpusByModel } from './admin-stats.service.js';

describe('gpusByModel', () => {
  it('counts GPUs by model and CPU-only providers by backend, most first', () => {
    expect(
      gpusByModel([
        { backend: 'tensorflow-gpu', gpus: [{ model: 'RTX 4090' }, { model: 'RTX 4090' }] },
        { backend: 'tensorflow-gpu', gpus: [{ model: 'A100' }] },
        { backend: 'wasm', gpus: [] },
        { backend: 'cpu', gpus: null },
      ]),
    ).toEqual([
      { label: 'RTX 4090', count: 2 },
      { label: 'A100', count: 1 },
      { label: 'CPU (cpu)', count: 1 },
      { label: 'CPU (wasm)', count: 1 },
    ]);
  });
});
