import { z } from 'zod';

import { BackendSchema } from './backend.js';
import { MAX_ADVERT_TTL_MS, MAX_GPUS_PER_ADVERT, MAX_SLOTS } from './constants.js';
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
      .min(1, { error: 'expected positive integer MiB' })
      .max(16 * 1024 * 1024, { error: 'expected at most 16 TiB' }),
    computeCapability: z
      .string({ error: 'expected compute capability string' })
      .regex(/^[0-9]{1,2}\.[0-9]{1,2}$/, { error: 'expected compute capability like "8.6"' })
      .optional(),
  },
  { error: 'expected GPU { model, vramMiB, computeCapability? }' },
);
export type GpuInfo = z.output<typeof GpuInfoSchema>;

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
    gpus: z
      .array(GpuInfoSchema, { error: 'expected array of GPUs' })
      .max(MAX_GPUS_PER_ADVERT, { error: `expected at most ${MAX_GPUS_PER_ADVERT} GPUs` }),
    gflops: z
      .number({ error: 'expected finite number > 0' })
      .positive({ error: 'expected finite number > 0' }),
    pricePerUnit: AmountSchema,
    slots: z
      .number({ error: 'expected integer' })
      .int({ error: 'expected integer' })
      .min(1, { error: `expected 1..${MAX_SLOTS}` })
      .max(MAX_SLOTS, { error: `expected 1..${MAX_SLOTS}` }),
    freeSlots: NonNegativeIntSchema,
    region: IdStringSchema.optional(),
    binding: PeerBindingSchema,
  })
  .superRefine((a, ctx) => {
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
export type ProviderAdvertInput = z.input<typeof ProviderAdvertSchema>;

export function parseProviderAdvert(input: unknown): ProviderAdvert {
  return parseWith('ProviderAdvert', ProviderAdvertSchema, input);
}

export function safeParseProviderAdvert(input: unknown): SafeParseResult<ProviderAdvert> {
  return safeParseWith('ProviderAdvert', ProviderAdvertSchema, input);
}
