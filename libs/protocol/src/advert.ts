import { z } from 'zod';

import { BackendSchema, type Backend } from './backend.js';
import {
  GPU_MODEL_PATTERN,
  MAX_ADVERT_TTL_MS,
  MAX_GFLOPS_PER_GPU,
  MAX_GFLOPS_WITHOUT_GPU,
  MAX_GPU_MODEL_LENGTH,
  MAX_GPU_VRAM_MIB,
  MAX_GPUS_PER_ADVERT,
  MAX_SLOTS,
} from './constants.js';
import { PeerBindingSchema } from './peer-binding.js';
import {
  AddressSchema,
  AmountSchema,
  IdStringSchema,
  NonNegativeIntSchema,
  PeerIdStringSchema,
  ProtocolVersionSchema,
  TimestampMsSchema,
} from './primitives.js';
import { parseWith, safeParseWith, type SafeParseResult } from './validation.js';

export const GpuInfoSchema = z.strictObject(
  {
    model: IdStringSchema,
    vramMiB: z
      .number({ error: 'expected positive integer MiB' })
      .int({ error: 'expected positive integer MiB' })
      .min(1, { error: 'expected positive integer MiB' }),
    computeCapability: z
      .string({ error: 'expected compute capability string' })
      .regex(/^[0-9]{1,2}\.[0-9]{1,2}$/, { error: 'expected compute capability like "8.6"' })
      .optional(),
  },
  { error: 'expected GPU { model, vramMiB, computeCapability? }' },
);
export type GpuInfo = z.output<typeof GpuInfoSchema>;

/**
 * Backends that compute on a GPU, and so the only ones whose adverts may list GPUs: tensorflow-gpu
 * (CUDA) and webgpu on a hardware adapter (a webgpu agent on a software adapter lists none). A CPU
 * backend listing a GPU claims hardware its jobs never touch.
 */
export const GPU_BACKENDS: readonly Backend[] = ['tensorflow-gpu', 'webgpu'];

/**
 * What a provider offers, gossiped on `ADVERTS_TOPIC` and signed by its wallet. `seq` grows with
 * every advert from the same signer so an older one can never displace a newer one.
 */
export const ProviderAdvertSchema = z
  .strictObject({
    version: ProtocolVersionSchema,
    peerId: PeerIdStringSchema,
    address: AddressSchema,
    operatorId: IdStringSchema,
    seq: NonNegativeIntSchema,
    issuedAt: TimestampMsSchema,
    expiresAt: TimestampMsSchema,
    backend: BackendSchema,
    // Counts and magnitudes are bounded in advertRangeIssues (code ADVERT_OUT_OF_RANGE).
    gpus: z.array(GpuInfoSchema, { error: 'expected array of GPUs' }),
    gflops: z
      .number({ error: 'expected finite number > 0' })
      .positive({ error: 'expected finite number > 0' }),
    pricePerUnit: AmountSchema,
    slots: z
      .number({ error: 'expected integer' })
      .int({ error: 'expected integer' })
      .min(1, { error: `expected 1..${MAX_SLOTS}` }),
    freeSlots: NonNegativeIntSchema,
    region: IdStringSchema.optional(),
    binding: PeerBindingSchema,
  })
  .superRefine((a, ctx) => {
    for (const issue of advertRangeIssues(a)) {
      ctx.addIssue({ code: 'custom', ...issue, params: { code: 'ADVERT_OUT_OF_RANGE' } });
    }
    if (a.expiresAt <= a.issuedAt) {
      ctx.addIssue({ code: 'custom', path: ['expiresAt'], message: 'expected expiresAt > issuedAt' });
    } else if (a.expiresAt - a.issuedAt > MAX_ADVERT_TTL_MS) {
      ctx.addIssue({
        code: 'custom',
        path: ['expiresAt'],
        message: `expected at most ${MAX_ADVERT_TTL_MS} ms after issuedAt (MAX_ADVERT_TTL_MS)`,
      });
    }
    if (a.freeSlots > a.slots) {
      ctx.addIssue({ code: 'custom', path: ['freeSlots'], message: 'expected freeSlots <= slots' });
    }
    if (a.binding.peerId !== a.peerId) {
      ctx.addIssue({ code: 'custom', path: ['binding', 'peerId'], message: 'expected the advert peerId' });
    }
    if (a.binding.address !== a.address) {
      ctx.addIssue({ code: 'custom', path: ['binding', 'address'], message: 'expected the advert address' });
    }
  });

export type ProviderAdvert = z.output<typeof ProviderAdvertSchema>;

/** The most GFLOP/s an advert listing `gpuCount` GPUs may claim (MAX_GFLOPS_PER_GPU each, or none). */
export function maxAdvertGflops(gpuCount: number): number {
  return gpuCount > 0 ? gpuCount * MAX_GFLOPS_PER_GPU : MAX_GFLOPS_WITHOUT_GPU;
}

/**
 * What a well-typed advert claims beyond the protocol's limits: GFLOP/s (per GPU and in all), GPU
 * count, VRAM, model names, slots. A claim within them is still only a ceiling: the coordinator
 * measures every provider's speed itself (timed known-answer jobs) and schedules by what it measured.
 */
export function advertRangeIssues(a: {
  gflops: number;
  gpus: readonly { model: string; vramMiB: number }[];
  slots: number;
  backend?: Backend;
}): { path: (string | number)[]; message: string }[] {
  const issues: { path: (string | number)[]; message: string }[] = [];
  if (a.backend !== undefined && a.gpus.length > 0 && !GPU_BACKENDS.includes(a.backend)) {
    issues.push({
      path: ['gpus'],
      message: `expected no GPUs on the ${a.backend} backend (only ${GPU_BACKENDS.join(' and ')} compute on one)`,
    });
  }
  if (a.gpus.length > MAX_GPUS_PER_ADVERT) {
    issues.push({
      path: ['gpus'],
      message: `expected at most ${MAX_GPUS_PER_ADVERT} GPUs (MAX_GPUS_PER_ADVERT)`,
    });
    return issues; // not worth reading each of them
  }
  const maxGflops = maxAdvertGflops(a.gpus.length);
  if (!Number.isFinite(a.gflops) || a.gflops > maxGflops) {
    issues.push({
      path: ['gflops'],
      message:
        a.gpus.length > 0
          ? `expected at most ${maxGflops} GFLOP/s for ${a.gpus.length} GPU(s) (MAX_GFLOPS_PER_GPU = ${MAX_GFLOPS_PER_GPU})`
          : `expected at most ${maxGflops} GFLOP/s without a GPU (MAX_GFLOPS_WITHOUT_GPU)`,
    });
  }
  a.gpus.forEach((g, i) => {
    if (g.model.length > MAX_GPU_MODEL_LENGTH || !GPU_MODEL_PATTERN.test(g.model)) {
      issues.push({
        path: ['gpus', i, 'model'],
        message: `expected a GPU model name of at most ${MAX_GPU_MODEL_LENGTH} letters, digits and " ._-()[]+/,:@#"`,
      });
    }
    if (g.vramMiB > MAX_GPU_VRAM_MIB) {
      issues.push({
        path: ['gpus', i, 'vramMiB'],
        message: `expected at most ${MAX_GPU_VRAM_MIB} MiB (1 TiB)`,
      });
    }
  });
  if (a.slots > MAX_SLOTS) issues.push({ path: ['slots'], message: `expected 1..${MAX_SLOTS} (MAX_SLOTS)` });
  return issues;
}
export type ProviderAdvertInput = z.input<typeof ProviderAdvertSchema>;

export function parseProviderAdvert(input: unknown): ProviderAdvert {
  return parseWith('ProviderAdvert', ProviderAdvertSchema, input);
}

export function safeParseProviderAdvert(input: unknown): SafeParseResult<ProviderAdvert> {
  return safeParseWith('ProviderAdvert', ProviderAdvertSchema, input);
}
