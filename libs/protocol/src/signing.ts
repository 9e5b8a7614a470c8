import { z } from 'zod';

import { ProviderAdvertSchema, type ProviderAdvert } from './advert.js';
import { canonicalBytes } from './canonical.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS } from './constants.js';
import { SignatureVerificationError } from './errors.js';
import { hashSpec } from './hashing.js';
import { JobOfferSchema, type JobOffer } from './offer.js';
import { verifyPeerBinding } from './peer-binding.js';
import { recoverPersonalSigner, signPersonalMessage, type MessageSigner } from './secp256k1.js';
import { ResultReceiptSchema, type ResultReceipt } from './receipt.js';
import { signedSchema, type Signed } from './signed.js';
import { parseWith, safeParseWith, validationErrorFromIssues, type SafeParseResult } from './validation.js';

/** Message types that travel signed. Each is signed under its own domain tag. */
export const SIGNED_MESSAGE_KINDS = ['advert', 'offer', 'receipt'] as const;
export type SignedMessageKind = (typeof SIGNED_MESSAGE_KINDS)[number];

export interface SignedPayloads {
  advert: ProviderAdvert;
  offer: JobOffer;
  receipt: ResultReceipt;
}

interface KindRules<T> {
  readonly name: string;
  readonly schema: z.ZodType<T, unknown>;
  /** When the message was made and (if it expires) when it stops being valid. */
  readonly window: (payload: T) => { issuedAt: number; expiresAt?: number };
  /** Consistency checks too costly or too cross-cutting for the schema; throw on failure. */
  readonly check: (payload: T, signer: string, options: VerifyOptions) => void;
}

const RULES: { readonly [K in SignedMessageKind]: KindRules<SignedPayloads[K]> } = {
  advert: {
    name: 'ProviderAdvert',
    schema: ProviderAdvertSchema,
    window: (a) => ({ issuedAt: a.issuedAt, expiresAt: a.expiresAt }),
    check: (a, signer, options) => {
      if (a.address !== signer) {
        throw new SignatureVerificationError(
          'SIGNER_MISMATCH',
          `advert address ${a.address} did not sign it`,
        );
      }
      verifyPeerBinding(a.binding, options);
    },
  },
  offer: {
    name: 'JobOffer',
    schema: JobOfferSchema,
    window: (o) => ({ issuedAt: o.issuedAt, expiresAt: o.deadlineAt }),
    check: (o) => assertOfferSpecHash(o),
  },
  receipt: {
    name: 'ResultReceipt',
    schema: ResultReceiptSchema,
    window: (r) => ({ issuedAt: r.finishedAt }),
    check: (r, signer) => {
      if (r.providerAddress !== signer) {
        throw new SignatureVerificationError(
          'SIGNER_MISMATCH',
          `receipt providerAddress ${r.providerAddress} did not sign it`,
        );
      }
    },
  },
};

function rulesFor<K extends SignedMessageKind>(kind: K): KindRules<SignedPayloads[K]> {
  return RULES[kind] as KindRules<SignedPayloads[K]>;
}

/** Throws `INVALID_MESSAGE` unless `offer.specHash === hashSpec(offer.spec)`. */
export function assertOfferSpecHash(offer: JobOffer): void {
  if (hashSpec(offer.spec) !== offer.specHash) {
    throw validationErrorFromIssues('JobOffer', [{ path: 'specHash', message: 'expected hashSpec(spec)' }]);
  }
}

export interface VerifyOptions {
  /** The only address allowed to have signed (e.g. the coordinator's, or the provider's from its advert). */
  readonly expectedSigner?: string;
  /** Clock used for freshness checks; defaults to `Date.now()`. */
  readonly now?: number;
  /** Tolerated clock difference between peers; defaults to `DEFAULT_MAX_CLOCK_SKEW_MS`. */
  readonly maxSkewMs?: number;
}

/** Envelope schema for a signed message of `kind`. */
export function signedMessageSchema<K extends SignedMessageKind>(
  kind: K,
): z.ZodType<Signed<SignedPayloads[K]>, unknown> {
  return signedSchema(rulesFor(kind).schema);
}

/** Validates the shape of a signed envelope of `kind` (no signature check: use `verifySigned`). */
export function parseSigned<K extends SignedMessageKind>(kind: K, input: unknown): Signed<SignedPayloads[K]> {
  return parseWith(`Signed<${rulesFor(kind).name}>`, signedMessageSchema(kind), input);
}

export function safeParseSigned<K extends SignedMessageKind>(
  kind: K,
  input: unknown,
): SafeParseResult<Signed<SignedPayloads[K]>> {
  return safeParseWith(`Signed<${rulesFor(kind).name}>`, signedMessageSchema(kind), input);
}

/**
 * Validates and normalises `payload`, then signs its canonical bytes (domain-tagged by `kind`) with an
 * EIP-191 personal signature. The envelope carries the normalised payload.
 */
export async function signPayload<K extends SignedMessageKind>(
  kind: K,
  payload: unknown,
  wallet: MessageSigner,
): Promise<Signed<SignedPayloads[K]>> {
  const rules = rulesFor(kind);
  const normalised = parseWith(rules.name, rules.schema, payload);
  const signer = (await wallet.getAddress()).toLowerCase();
  rules.check(normalised, signer, { now: Number.MAX_SAFE_INTEGER });
  const signature = await signPersonalMessage(wallet, canonicalBytes(kind, normalised));
  return { payload: normalised, signature, signer };
}

/** Address that produced `signature` over `bytes`, or null when the signature is malformed or non-canonical. */
function recoverSigner(bytes: Uint8Array, signature: string): string | null {
  return recoverPersonalSigner(bytes, signature);
}

/**
 * Verifies a signed message of `kind`: envelope and payload valid, signature recovers `signer`
 * (`BAD_SIGNATURE`), signer is `expectedSigner` and the payload's own address (`SIGNER_MISMATCH`),
 * not issued in the future (`FROM_FUTURE`) nor past its expiry (`EXPIRED`), plus per-kind checks
 * (advert: peer binding; offer: spec hash). The signature covers the payload exactly as received.
 */
export function verifySigned<K extends SignedMessageKind>(
  kind: K,
  signed: unknown,
  options: VerifyOptions = {},
): Signed<SignedPayloads[K]> {
  const rules = rulesFor(kind);
  const envelope = parseSigned(kind, signed);
  const rawPayload = (signed as { payload: unknown }).payload;
  const recovered = recoverSigner(canonicalBytes(kind, rawPayload), envelope.signature);
  if (recovered === null || recovered !== envelope.signer) {
    throw new SignatureVerificationError(
      'BAD_SIGNATURE',
      `${rules.name}: signature does not match signer ${envelope.signer}`,
    );
  }
  if (options.expectedSigner !== undefined && options.expectedSigner.toLowerCase() !== envelope.signer) {
    throw new SignatureVerificationError(
      'SIGNER_MISMATCH',
      `${rules.name}: signed by ${envelope.signer}, expected ${options.expectedSigner.toLowerCase()}`,
    );
  }
  const now = options.now ?? Date.now();
  const skew = options.maxSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS;
  const { issuedAt, expiresAt } = rules.window(envelope.payload);
  if (issuedAt > now + skew) {
    throw new SignatureVerificationError(
      'FROM_FUTURE',
      `${rules.name}: issued ${issuedAt - now} ms in the future`,
    );
  }
  if (expiresAt !== undefined && expiresAt + skew <= now) {
    throw new SignatureVerificationError('EXPIRED', `${rules.name}: expired ${now - expiresAt} ms ago`);
  }
  rules.check(envelope.payload, envelope.signer, { now, maxSkewMs: skew });
  return envelope;
}
