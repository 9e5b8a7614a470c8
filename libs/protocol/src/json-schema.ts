import { z } from 'zod';

import { ProviderAdvertSchema } from './advert.js';
import { JobSpecSchema } from './job-spec.js';
import { JobOfferSchema } from './offer.js';
import { ResultReceiptSchema } from './receipt.js';

/**
 * JSON Schema of what a client may send for `schema` (for OpenAPI docs; zod stays the validator).
 * Types JSON Schema cannot express (bigint refinements, transforms) become unconstrained (`{}`).
 */
function inputJsonSchema(schema: z.ZodType): Record<string, unknown> {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** JSON Schema of a job spec a client submits. */
export function jobSpecJsonSchema(): Record<string, unknown> {
  return inputJsonSchema(JobSpecSchema);
}

export function providerAdvertJsonSchema(): Record<string, unknown> {
  return inputJsonSchema(ProviderAdvertSchema);
}

export function jobOfferJsonSchema(): Record<string, unknown> {
  return inputJsonSchema(JobOfferSchema);
}

export function resultReceiptJsonSchema(): Record<string, unknown> {
  return inputJsonSchema(ResultReceiptSchema);
}
