import { randomBytes } from 'node:crypto';

import { z } from 'zod';

import { MAX_WORK_UNITS } from './constants.js';
import { JobSpecSchema } from './job-spec.js';
import {
  AmountSchema,
  PeerIdStringSchema,
  PositiveIntSchema,
  ProtocolVersionSchema,
  Sha256HexSchema,
  TimestampMsSchema,
  UuidSchema,
  uintStringSchema,
  uintStringValue,
} from './primitives.js';
import { parseWith, safeParseWith, type SafeParseResult } from './validation.js';

/** A one-time token: 16..128 characters of `[A-Za-z0-9_-]`. */
export const NonceSchema = z
  .string({ error: 'expected nonce string' })
  .regex(/^[A-Za-z0-9_-]{16,128}$/, { error: 'expected nonce of 16..128 characters [A-Za-z0-9_-]' });

/** A fresh random nonce (128 bits, hex). */
export function randomNonce(): string {
  return randomBytes(16).toString('hex');
}

/**
 * The coordinator's signed request to one provider to run one attempt of a job. `specHash` must be
 * `hashSpec(spec)` (checked by `verifySigned('offer', ...)`), `pricePerUnit` at most what the spec allows.
 */
export const JobOfferSchema = z
  .strictObject({
    version: ProtocolVersionSchema,
    /**
     * An opaque id of what is offered: the coordinator sends each attempt of a job (redundant
     * copies, tie-breaks, retries) under its own unrelated uuid with `attempt` 1, so copies cannot
     * be linked by id; a repeated offer of one attempt repeats its id. Receipts echo it.
     */
    jobId: UuidSchema,
    attempt: PositiveIntSchema,
    spec: JobSpecSchema,
    specHash: Sha256HexSchema,
    pricePerUnit: AmountSchema,
    /**
     * The platform fee on this attempt's payment, in basis points, signed with the price: the
     * provider's net (price × workUnits × (1 − feeBps/10,000)) is fixed when it accepts, and a fee
     * change applies to later offers only. Absent from offers of coordinators before it (the fee
     * of the day applied then).
     */
    feeBps: z.number().int().min(0).max(10_000).optional(),
    workUnits: uintStringSchema(MAX_WORK_UNITS).refine((s) => s !== '0', {
      error: 'expected at least 1 work unit',
    }),
    deadlineAt: TimestampMsSchema,
    coordinatorPeerId: PeerIdStringSchema,
    nonce: NonceSchema,
    issuedAt: TimestampMsSchema,
  })
  .superRefine((o, ctx) => {
    if (o.deadlineAt <= o.issuedAt) {
      ctx.addIssue({ code: 'custom', path: ['deadlineAt'], message: 'expected deadlineAt > issuedAt' });
    }
    const price = uintStringValue(o.pricePerUnit);
    const max = uintStringValue(o.spec.maxPricePerUnit);
    if (price !== undefined && max !== undefined && price > max) {
      ctx.addIssue({
        code: 'custom',
        path: ['pricePerUnit'],
        message: 'expected at most spec.maxPricePerUnit',
      });
    }
  });

export type JobOffer = z.output<typeof JobOfferSchema>;
export type JobOfferInput = z.input<typeof JobOfferSchema>;

export function parseJobOffer(input: unknown): JobOffer {
  return parseWith('JobOffer', JobOfferSchema, input);
}

export function safeParseJobOffer(input: unknown): SafeParseResult<JobOffer> {
  return safeParseWith('JobOffer', JobOfferSchema, input);
}
