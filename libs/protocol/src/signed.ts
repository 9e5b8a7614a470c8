import { z } from 'zod';

import { AddressSchema } from './primitives.js';

/** Lower-case 65-byte signature hex, exactly as ethers produces it (the only accepted encoding). */
export const CanonicalSignatureSchema = z
  .string({ error: 'expected signature hex string' })
  .regex(/^0x[0-9a-f]{130}$/, { error: 'expected 65-byte signature as 0x + 130 lower-case hex characters' });

/** A payload with the EIP-191 signature of its canonical bytes and the (lower-case) address that made it. */
export interface Signed<T> {
  readonly payload: T;
  readonly signature: string;
  readonly signer: string;
}

/** Envelope schema around a payload schema. */
export function signedSchema<S extends z.ZodType>(payload: S): z.ZodType<Signed<z.output<S>>, unknown> {
  const envelope = z.strictObject(
    { payload, signature: CanonicalSignatureSchema, signer: AddressSchema },
    { error: 'expected signed envelope { payload, signature, signer }' },
  );
  // zod cannot see through the generic payload schema; the object above has exactly this output.
  return envelope as unknown as z.ZodType<Signed<z.output<S>>, unknown>;
}
