import { z } from 'zod';

import { BackendSchema } from './backend.js';
import {
  AddressSchema,
  NonNegativeIntSchema,
  PeerIdStringSchema,
  PositiveIntSchema,
  ProtocolVersionSchema,
  Sha256HexSchema,
  TimestampMsSchema,
  UuidSchema,
} from './primitives.js';
import { parseWith, safeParseWith, type SafeParseResult } from './validation.js';

export const ReceiptTimingsSchema = z
  .strictObject(
    { queuedMs: NonNegativeIntSchema, runMs: NonNegativeIntSchema, totalMs: NonNegativeIntSchema },
    { error: 'expected timings { queuedMs, runMs, totalMs }' },
  )
  .superRefine((t, ctx) => {
    if (t.totalMs < t.runMs)
      ctx.addIssue({ code: 'custom', path: ['totalMs'], message: 'expected totalMs >= runMs' });
  });
export type ReceiptTimings = z.output<typeof ReceiptTimingsSchema>;

/**
 * A provider's signed statement of what it computed: the evidence that justifies payment (and,
 * when its output disagrees with the verified one, a slash).
 */
export const ResultReceiptSchema = z.strictObject({
  version: ProtocolVersionSchema,
  /** The offer's `jobId` and `attempt` as received (per-attempt opaque ids, see JobOfferSchema). */
  jobId: UuidSchema,
  attempt: PositiveIntSchema,
  providerPeerId: PeerIdStringSchema,
  providerAddress: AddressSchema,
  inputHash: Sha256HexSchema,
  outputHash: Sha256HexSchema,
  backend: BackendSchema,
  timings: ReceiptTimingsSchema,
  finishedAt: TimestampMsSchema,
});

export type ResultReceipt = z.output<typeof ResultReceiptSchema>;
export type ResultReceiptInput = z.input<typeof ResultReceiptSchema>;

export function parseResultReceipt(input: unknown): ResultReceipt {
  return parseWith('ResultReceipt', ResultReceiptSchema, input);
}

export function safeParseResultReceipt(input: unknown): SafeParseResult<ResultReceipt> {
  return safeParseWith('ResultReceipt', ResultReceiptSchema, input);
}
