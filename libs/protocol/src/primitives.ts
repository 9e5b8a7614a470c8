import { z } from 'zod';

import { MAX_AMOUNT, MAX_ID_LENGTH, PROTOCOL_VERSION } from './constants.js';

/** `version: 1` on every message. */
export const ProtocolVersionSchema = z.literal(PROTOCOL_VERSION, {
  error: `expected protocol version ${PROTOCOL_VERSION}`,
});

const UINT_STRING = /^(0|[1-9][0-9]*)$/;

/**
 * A non-negative integer amount as a decimal string (`"1500"`), never a float. Used for prices,
 * work units and balances in base units; bounded by `max` (default 10^30).
 */
export function uintStringSchema(max: bigint = MAX_AMOUNT): z.ZodString {
  return z
    .string({ error: 'expected decimal integer string' })
    .regex(UINT_STRING, { error: 'expected decimal integer string without sign, fraction or leading zeros' })
    .refine((s) => !UINT_STRING.test(s) || (s.length <= 40 && BigInt(s) <= max), {
      error: `expected integer string <= ${max}`,
    });
}

export const AmountSchema = uintStringSchema();

/** The value of a decimal integer string, or undefined when it is not one (never throws). */
export function uintStringValue(amount: string): bigint | undefined {
  return UINT_STRING.test(amount) && amount.length <= 64 ? BigInt(amount) : undefined;
}

/** Lower-case hex SHA-256 digest (64 characters, no `0x`). */
export const Sha256HexSchema = z
  .string({ error: 'expected sha256 hex string' })
  .regex(/^[0-9a-f]{64}$/, { error: 'expected sha256 as 64 lower-case hex characters' });

/**
 * A 20-byte EVM address in hex, any case (the EIP-55 checksum is not checked here: it costs a keccak).
 * The one address pattern: everything that checks an address uses this or LOWER_CASE_ADDRESS_PATTERN.
 */
export const ADDRESS_PATTERN = /^0x[0-9a-fA-F]{40}$/;
/** An address as gpumesh stores, signs and files it: lower-case hex. */
export const LOWER_CASE_ADDRESS_PATTERN = /^0x[0-9a-f]{40}$/;

/** EVM address, checksummed or lower-case on input; always lower-case after parsing. */
export const AddressSchema = z
  .string({ error: 'expected EVM address' })
  .regex(ADDRESS_PATTERN, { error: 'expected EVM address (0x + 40 hex characters)' })
  .transform((s) => s.toLowerCase());

/** 65-byte secp256k1 signature, 0x-prefixed hex. */
export const SignatureHexSchema = z
  .string({ error: 'expected signature hex string' })
  .regex(/^0x[0-9a-fA-F]{130}$/, { error: 'expected 65-byte signature as 0x + 130 hex characters' });

/** A bounded non-empty identifier (peer id, operator id, nonce, GPU model...). */
export const IdStringSchema = z
  .string({ error: 'expected string' })
  .min(1, { error: 'expected non-empty string' })
  .max(MAX_ID_LENGTH, { error: `expected at most ${MAX_ID_LENGTH} characters` });

/** A libp2p peer id in its string form (base58btc or CID); the format itself is checked by libp2p. */
export const PeerIdStringSchema = z
  .string({ error: 'expected peer id string' })
  .regex(/^[1-9A-HJ-NP-Za-km-z]{32,128}$|^b[a-z2-7]{32,128}$/, {
    error: 'expected libp2p peer id (base58btc or base32 CID)',
  });

/** Unix time in milliseconds. */
export const TimestampMsSchema = z
  .number({ error: 'expected timestamp in ms' })
  .int({ error: 'expected integer timestamp in ms' })
  .min(0, { error: 'expected non-negative timestamp in ms' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'expected safe integer timestamp in ms' });

export const UuidSchema = z.uuid({ error: 'expected UUID' });

export const NonNegativeIntSchema = z
  .number({ error: 'expected non-negative integer' })
  .int({ error: 'expected non-negative integer' })
  .min(0, { error: 'expected non-negative integer' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'expected safe integer' });

export const PositiveIntSchema = z
  .number({ error: 'expected positive integer' })
  .int({ error: 'expected positive integer' })
  .min(1, { error: 'expected positive integer' })
  .max(Number.MAX_SAFE_INTEGER, { error: 'expected safe integer' });
