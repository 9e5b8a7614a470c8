// A webgpu provider is GPU-class exactly when its advert lists the hardware adapter as a GPU; one on a
// software adapter (llvmpipe) lists none and competes as CPU-class. The listed GPU earns placement on
// GPU requirements, never speed: that stays what the coordinator measured (or probation until then).
import { describe, expect, it } from 'vitest';
import { NOW, job, provider } from '../test/arbitraries.js';
import { Scheduler } from './scheduler.js';

const RTX = { model: 'NVIDIA GeForce RTX 4090', vramMiB: 24_564 };
const PROBATION = 50;

function scheduler(...ps: ReturnType<typeof provider>[]): Scheduler {
  const s = new Scheduler({ explorationShare: 0, probationGflops: PROBATION });
  for (const p of ps) s.upsertProvider(p, NOW);
  return s;
}

const picked = (s: Scheduler, j: ReturnType<typeof job>): string[] =>
  s.select(j, NOW, { explore: false }).placements.map((p) => p.peerId);

describe('webgpu providers in placement', () => {
  const hardware = provider(1, { backend: 'webgpu', gpus: [RTX], gflops: 20_000, measuredGflops: 18_000 });
  const software = provider(2, { backend: 'webgpu', gpus: [], gflops: 2.2, measuredGflops: 2 });
  const cuda = provider(3, {
    backend: 'tensorflow-gpu',
    gpus: [RTX],
    gflops: 60_000,
    measuredGflops: 50_000,
  });

  it('places a job that needs GPU memory or a GPU model on a hardware webgpu adapter, never on llvmpipe', () => {
    const s = scheduler(hardware, software);
    expect(picked(s, job('vram', { requirements: { minVramMiB: 16_384 } }))).toEqual(['p1']);
    expect(picked(s, job('model', { requirements: { gpuModels: ['nvidia geforce rtx 4090'] } }))).toEqual([
      'p1',
    ]);
    const e = s.explain(job('vram', { redundancy: 2, requirements: { minVramMiB: 16_384 } }), NOW);
    expect(e.excluded).toMatchObject({ vram: 1 });
  });

  it('matches the same GPU model on the CUDA and the webgpu path', () => {
    const s = scheduler(hardware, cuda);
    const j = job('either', { redundancy: 2, requirements: { gpuModels: ['NVIDIA GeForce RTX 4090'] } });
    expect(picked(s, j).sort()).toEqual(['p1', 'p3']);
  });

  it('credits a listed GPU no speed: unmeasured, a webgpu "RTX 4090" advertising 80 TFLOP/s gets probation', () => {
    const liar = provider(4, { backend: 'webgpu', gpus: [RTX], gflops: 80_000, measuredGflops: undefined });
    const s = scheduler(liar);
    // 100,000 work units by a deadline 10 s away need 10 GFLOP/s... fine at probation (50);
    expect(picked(s, job('ok', { workUnits: 100_000n, deadlineAt: NOW + 10_000 }))).toEqual(['p4']);
    // ...but 10,000,000 in 10 s need 1,000 GFLOP/s, far below its claim and above what it is credited.
    expect(picked(s, job('fast', { workUnits: 10_000_000n, deadlineAt: NOW + 10_000 }))).toEqual([]);
    // Measured slow, it is credited what it showed.
    s.upsertProvider({ ...liar, measuredGflops: 3 }, NOW);
    expect(picked(s, job('mid', { workUnits: 100_000n, deadlineAt: NOW + 10_000 }))).toEqual([]);
  });
});
