import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { advertRangeIssues, maxAdvertGflops, safeParseProviderAdvert } from './advert.js';
import {
  MAX_GFLOPS_PER_GPU,
  MAX_GFLOPS_WITHOUT_GPU,
  MAX_GPU_MODEL_LENGTH,
  MAX_GPU_VRAM_MIB,
  MAX_GPUS_PER_ADVERT,
  MAX_SLOTS,
} from './constants.js';
import { gossipActionFor } from './errors.js';
import { advertInput } from './test-fixtures.js';

const H100 = { model: 'NVIDIA H100 80GB HBM3', vramMiB: 81_559 };

async function parse(
  overrides: Record<string, unknown>,
): Promise<ReturnType<typeof safeParseProviderAdvert>> {
  return safeParseProviderAdvert({ ...(await advertInput()), ...overrides });
}

async function expectOutOfRange(overrides: Record<string, unknown>, path: string): Promise<void> {
  const result = await parse(overrides);
  expect(result.success).toBe(false);
  if (result.success) return;
  expect(result.error.code).toBe('ADVERT_OUT_OF_RANGE');
  expect(gossipActionFor(result.error.code)).toBe('REJECT');
  expect(result.error.issues.map((i) => i.path)).toContain(path);
}

describe('ProviderAdvert protocol limits', () => {
  it('gives the webgpu backend name no GPU allowance: without a GPU listed it is capped like the CPU', async () => {
    expect((await parse({ gflops: MAX_GFLOPS_WITHOUT_GPU, gpus: [], backend: 'webgpu' })).success).toBe(true);
    await expectOutOfRange({ gflops: MAX_GFLOPS_WITHOUT_GPU + 1, gpus: [], backend: 'webgpu' }, 'gflops');
  });

  it('lets only GPU backends list GPUs: a hardware webgpu adapter gets the GPU allowance, a CPU backend no GPU', async () => {
    const rtx = { model: 'NVIDIA GeForce RTX 4090', vramMiB: 24_564 };
    expect(
      (await parse({ gflops: MAX_GFLOPS_WITHOUT_GPU + 1, gpus: [rtx], backend: 'webgpu' })).success,
    ).toBe(true);
    for (const backend of ['tensorflow', 'wasm', 'cpu']) {
      await expectOutOfRange({ gflops: 10, gpus: [rtx], backend }, 'gpus');
      expect((await parse({ gflops: 10, gpus: [], backend })).success).toBe(true);
    }
  });

  it('rejects absurd speeds with ADVERT_OUT_OF_RANGE', async () => {
    await expectOutOfRange({ gflops: 1e300, gpus: [H100] }, 'gflops');
    await expectOutOfRange({ gflops: 1e300, gpus: Array.from({ length: 8 }, () => H100) }, 'gflops');
    await expectOutOfRange({ gflops: MAX_GFLOPS_PER_GPU + 1, gpus: [H100] }, 'gflops');
    await expectOutOfRange({ gflops: MAX_GFLOPS_WITHOUT_GPU * 2, gpus: [], backend: 'cpu' }, 'gflops');
  });

  it('keeps infinite and non-positive speeds invalid', async () => {
    for (const gflops of [Infinity, -1, 0, Number.NaN]) {
      const result = await parse({ gflops });
      expect(result.success).toBe(false);
    }
  });

  it('accepts a liar within the limits (8 H100 at 400,000 GFLOP/s): measurement, not parsing, catches it', async () => {
    const result = await parse({ gflops: 400_000, gpus: Array.from({ length: 8 }, () => H100) });
    expect(result.success).toBe(true);
  });

  it('bounds the GPU count, VRAM, model names and slots', async () => {
    await expectOutOfRange({ gpus: Array.from({ length: 10_000 }, () => H100) }, 'gpus');
    await expectOutOfRange({ gpus: Array.from({ length: MAX_GPUS_PER_ADVERT + 1 }, () => H100) }, 'gpus');
    await expectOutOfRange({ gpus: [{ ...H100, vramMiB: MAX_GPU_VRAM_MIB + 1 }] }, 'gpus[0].vramMiB');
    await expectOutOfRange(
      { gpus: [{ ...H100, model: 'x'.repeat(MAX_GPU_MODEL_LENGTH + 1) }] },
      'gpus[0].model',
    );
    for (const model of ['<script>alert(1)</script>', ' NVIDIA', 'H100 ', 'H100\n', 'H100"', '']) {
      const result = await parse({ gpus: [{ ...H100, model }] });
      expect(result.success, JSON.stringify(model)).toBe(false);
    }
    await expectOutOfRange({ slots: MAX_SLOTS + 1, freeSlots: 1 }, 'slots');
  });

  it('accepts real GPU model names', async () => {
    for (const model of [
      'NVIDIA H100 80GB HBM3',
      'NVIDIA GeForce RTX 4090',
      'Tesla V100-SXM2-16GB',
      'NVIDIA A100-SXM4-40GB',
      'AMD Instinct MI300X',
      'Apple M2 Max',
      'Radeon RX 7900 XTX (gfx1100)',
      'GA102 [GeForce RTX 3090]',
      'Intel(R) UHD Graphics 630',
    ]) {
      const result = await parse({ gpus: [{ ...H100, model }] });
      expect(result.success, model).toBe(true);
    }
  });

  it('any speed up to the limit for the GPU count is in range, any above is not (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_GPUS_PER_ADVERT }),
        fc.double({ min: 0.001, max: 1e12, noNaN: true }),
        (count, gflops) => {
          const issues = advertRangeIssues({
            gflops,
            slots: 1,
            gpus: Array.from({ length: count }, () => H100),
          });
          expect(issues.length === 0).toBe(gflops <= maxAdvertGflops(count));
        },
      ),
    );
  });
});
