import { z } from 'zod';

import { AddressSchema, Sha256HexSchema } from './primitives.js';

/** Lower-case 65-byte signature hex, exactly as ethers produces it (the only accepted encoding). */
export const CanonicalSignatureSchema = z
  .string({ error: 'expected signature hex string' })
  .regex(/^0x[0-9a-f]{130}$/, { error: 'expected 65-byte signature as 0x + 130 lower-case hex characters' });

/** Most messages one batch signature may cover (a proof then has at most 12 hashes). */
export const MAX_SIGNED_BATCH = 4096;

/**
 * Where a payload sits in a batch signed at once: `signature` then covers the Merkle root of the
 * batch, and `proof` (sibling hashes from the leaf up) leads from this payload's leaf to that root.
 */
export const BatchProofSchema = z
  .strictObject(
    {
      index: z.number().int().min(0),
      size: z.number().int().min(2).max(MAX_SIGNED_BATCH),
      proof: z.array(Sha256HexSchema).max(12),
    },
    { error: 'expected batch { index, size, proof }' },
  )
  .refine((b) => b.index < b.size, { error: 'expected batch index < size', path: ['index'] });
export type BatchProof = z.output<typeof BatchProofSchema>;

/**
 * A payload with the EIP-191 signature of its canonical bytes and the (lower-case) address that made
 * it; or, with `batch`, the signature of the root of a batch this payload is one leaf of.
 */
export interface Signed<T> {
  readonly payload: T;
  readonly signature: string;
  readonly signer: string;
  readonly batch?: BatchProof;
}

/** Envelope schema around a payload schema. */
export function signedSchema<S extends z.ZodType>(payload: S): z.ZodType<Signed<z.output<S>>, unknown> {
  const envelope = z.strictObject(
    {
      payload,
      signature: CanonicalSignatureSchema,
      signer: AddressSchema,
      batch: BatchProofSchema.optional(),
    },
    { error: 'expected signed envelope { payload, signature, signer, batch? }' },
  );
  // zod cannot see through the generic payload schema; the object above has exactly this output.
  return envelope as unknown as z.ZodType<Signed<z.output<S>>, unknown>;
}
