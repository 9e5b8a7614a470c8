import { z } from 'zod';

import { ProviderAdvertSchema, type ProviderAdvert } from './advert.js';
import { EpochAnnouncementSchema, type EpochAnnouncement } from './epoch-announcement.js';
import { batchLeafHash, batchRootOf, batchTree } from './batch-merkle.js';
import { canonicalBytes } from './canonical.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS } from './constants.js';
import { SignatureVerificationError } from './errors.js';
import { hashParsedSpec } from './hashing.js';
import { JobOfferSchema, type JobOffer } from './offer.js';
import { verifyPeerBinding } from './peer-binding.js';
import { recoverPersonalSigner, signPersonalMessage, type MessageSigner } from './secp256k1.js';
import { ResultReceiptSchema, type ResultReceipt } from './receipt.js';
import { MAX_SIGNED_BATCH, signedSchema, type Signed } from './signed.js';
import { parseWith, safeParseWith, validationErrorFromIssues, type SafeParseResult } from './validation.js';

/** Message types that travel signed. Each is signed under its own domain tag. */
export const SIGNED_MESSAGE_KINDS = ['advert', 'offer', 'receipt', 'epoch'] as const;
export type SignedMessageKind = (typeof SIGNED_MESSAGE_KINDS)[number];

export interface SignedPayloads {
  advert: ProviderAdvert;
  offer: JobOffer;
  receipt: ResultReceipt;
  epoch: EpochAnnouncement;
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
  epoch: {
    name: 'EpochAnnouncement',
    schema: EpochAnnouncementSchema,
    window: (a) => ({ issuedAt: a.issuedAt, expiresAt: a.expiresAt }),
    // Who may announce is the receiver's policy (an agent listens to its coordinator's wallet).
    check: () => undefined,
  },
};

function rulesFor<K extends SignedMessageKind>(kind: K): KindRules<SignedPayloads[K]> {
  return RULES[kind] as KindRules<SignedPayloads[K]>;
}

/**
 * Throws `INVALID_MESSAGE` unless `offer.specHash === hashSpec(offer.spec)`. The offer is a parsed one
 * (its spec normalised by the offer schema), as `signPayload` and `verifySigned` hand it over.
 */
export function assertOfferSpecHash(offer: JobOffer): void {
  if (hashParsedSpec(offer.spec) !== offer.specHash) {
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
  return ENVELOPES[kind] as z.ZodType<Signed<SignedPayloads[K]>, unknown>;
}

// Built once: a zod schema is compiled on its first parses, so a fresh one per message costs far more.
const ENVELOPES: { readonly [K in SignedMessageKind]: z.ZodType<Signed<SignedPayloads[K]>, unknown> } = {
  advert: signedSchema(RULES.advert.schema),
  offer: signedSchema(RULES.offer.schema),
  receipt: signedSchema(RULES.receipt.schema),
  epoch: signedSchema(RULES.epoch.schema),
};

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

/** Message kinds that may be signed in batches (gossip travels alone: adverts, epoch announcements). */
export type BatchableKind = Exclude<SignedMessageKind, 'advert' | 'epoch'>;

/** The bytes a batch signature covers: the batch's Merkle root and size under the kind's batch tag. */
function batchRootBytes(kind: BatchableKind, root: string, size: number): Uint8Array {
  return canonicalBytes(`${kind}-batch`, { root, size });
}

/**
 * Signs many payloads of `kind` with one signature: each envelope carries the signature of the
 * batch's Merkle root and its own `batch` proof, and verifies alone (`verifySigned`). One payload is
 * signed as by `signPayload` (no `batch`).
 */
export async function signPayloads<K extends BatchableKind>(
  kind: K,
  payloads: readonly unknown[],
  wallet: MessageSigner,
): Promise<Signed<SignedPayloads[K]>[]> {
  if (payloads.length <= 1) return Promise.all(payloads.map((p) => signPayload(kind, p, wallet)));
  if (payloads.length > MAX_SIGNED_BATCH) {
    const parts: Signed<SignedPayloads[K]>[] = [];
    for (let i = 0; i < payloads.length; i += MAX_SIGNED_BATCH) {
      parts.push(...(await signPayloads(kind, payloads.slice(i, i + MAX_SIGNED_BATCH), wallet)));
    }
    return parts;
  }
  const rules = rulesFor(kind);
  const signer = (await wallet.getAddress()).toLowerCase();
  const normalised = payloads.map((p) => {
    const payload = parseWith(rules.name, rules.schema, p);
    rules.check(payload, signer, { now: Number.MAX_SAFE_INTEGER });
    return payload;
  });
  const { root, proofs } = batchTree(normalised.map((p) => batchLeafHash(canonicalBytes(kind, p))));
  const size = normalised.length;
  const signature = await signPersonalMessage(wallet, batchRootBytes(kind, root, size));
  return normalised.map((payload, index) => ({
    payload,
    signature,
    signer,
    batch: { index, size, proof: proofs[index] },
  }));
}

export interface BatchSignerOptions {
  /**
   * How many more payloads may soon join the batch (e.g. jobs still running). While it exceeds what
   * is waiting, the batch waits up to `lingerMs` for them; default: never wait.
   */
  readonly expected?: () => number;
  readonly lingerMs?: number;
}

/**
 * Signs payloads of one kind as they come: everything asked for within one turn of the event loop
 * is signed together (`signPayloads`), so a burst costs one signature and a lone payload waits for
 * nothing but the end of the current turn. With `expected`, a batch also waits (up to `lingerMs`)
 * for the payloads it expects, so results that finish one after another still share a signature.
 */
export class BatchSigner<K extends BatchableKind> {
  private pending: {
    payload: unknown;
    resolve: (signed: Signed<SignedPayloads[K]>) => void;
    reject: (err: unknown) => void;
  }[] = [];
  private timer: ReturnType<typeof setTimeout> | undefined;
  private immediate: ReturnType<typeof setImmediate> | undefined;

  constructor(
    private readonly kind: K,
    private readonly wallet: MessageSigner,
    private readonly options: BatchSignerOptions = {},
  ) {}

  sign(payload: unknown): Promise<Signed<SignedPayloads[K]>> {
    return new Promise((resolve, reject) => {
      this.pending.push({ payload, resolve, reject });
      if (this.immediate !== undefined) return;
      const { expected, lingerMs = 0 } = this.options;
      const more = expected !== undefined && lingerMs > 0 && expected() > this.pending.length;
      if (more) {
        this.timer ??= setTimeout(() => this.flushSoon(), lingerMs);
        return;
      }
      this.flushSoon();
    });
  }

  private flushSoon(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.immediate ??= setImmediate(() => void this.flush());
  }

  private async flush(): Promise<void> {
    this.immediate = undefined;
    const batch = this.pending;
    this.pending = [];
    try {
      const signed = await signPayloads(
        this.kind,
        batch.map((b) => b.payload),
        this.wallet,
      );
      batch.forEach((b, i) => b.resolve(signed[i]));
    } catch {
      // Something in the batch did not validate: sign one by one, so only what is wrong fails.
      for (const b of batch) signPayload(this.kind, b.payload, this.wallet).then(b.resolve, b.reject);
    }
  }
}

/** Address that produced `signature` over `bytes`, or null when the signature is malformed or non-canonical. */
function recoverSigner(bytes: Uint8Array, signature: string): string | null {
  return recoverPersonalSigner(bytes, signature);
}

/**
 * Signers recovered from batch roots, so the other members of a batch cost a few hashes instead of
 * a recovery. Keyed by everything the signature covers plus the signature itself.
 */
const BATCH_SIGNERS_KEPT = 1024;
const batchSigners = new Map<string, string | null>();

function recoverBatchSigner(
  kind: SignedMessageKind,
  payload: unknown,
  signed: Signed<unknown>,
): string | null {
  const batch = signed.batch;
  if (batch === undefined) return recoverSigner(canonicalBytes(kind, payload), signed.signature);
  if (kind === 'advert' || kind === 'epoch') return null;
  const root = batchRootOf(
    batchLeafHash(canonicalBytes(kind, payload)),
    batch.index,
    batch.size,
    batch.proof,
  );
  if (root === null) return null;
  const key = `${kind}:${root}:${batch.size}:${signed.signature}`;
  const cached = batchSigners.get(key);
  if (cached !== undefined) return cached;
  const recovered = recoverSigner(batchRootBytes(kind, root, batch.size), signed.signature);
  if (batchSigners.size >= BATCH_SIGNERS_KEPT) {
    const oldest = batchSigners.keys().next().value;
    if (oldest !== undefined) batchSigners.delete(oldest);
  }
  batchSigners.set(key, recovered);
  return recovered;
}

/**
 * Verifies a signed message of `kind`: envelope and payload valid, signature recovers `signer`
 * (`BAD_SIGNATURE`), signer is `expectedSigner` and the payload's own address (`SIGNER_MISMATCH`),
 * not issued in the future (`FROM_FUTURE`) nor past its expiry (`EXPIRED`), plus per-kind checks
 * (advert: peer binding; offer: spec hash). The signature covers the payload exactly as received,
 * alone or (offers and receipts with `batch`) as one leaf of a batch whose root it signs.
 */
export function verifySigned<K extends SignedMessageKind>(
  kind: K,
  signed: unknown,
  options: VerifyOptions = {},
): Signed<SignedPayloads[K]> {
  const rules = rulesFor(kind);
  const envelope = parseSigned(kind, signed);
  const rawPayload = (signed as { payload: unknown }).payload;
  const recovered = recoverBatchSigner(kind, rawPayload, envelope);
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
