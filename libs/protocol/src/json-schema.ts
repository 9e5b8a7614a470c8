import { z } from 'zod';

import { ProviderAdvertSchema } from './advert.js';
import { JobSpecSchema } from './job-spec.js';
import { JobOfferSchema } from './offer.js';
import { ResultReceiptSchema } from './receipt.js';

/** JSON Schema of what a client may submit as a job spec (for OpenAPI docs; zod stays the validator). */
export function jobSpecJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(JobSpecSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

export function providerAdvertJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ProviderAdvertSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
}

export function jobOfferJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(JobOfferSchema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

export function resultReceiptJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(ResultReceiptSchema, { io: 'input', unrepresentable: 'any' }) as Record<
    string,
    unknown
  >;
}
