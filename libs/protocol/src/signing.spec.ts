import { verifyMessage } from 'ethers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicalBytes } from './canonical.js';
import {
  ProtocolError,
  ProtocolValidationError,
  SignatureVerificationError,
  gossipActionFor,
} from './errors.js';
import { parseJobSpec } from './job-spec.js';
import type { Signed } from './signed.js';
import { parseSigned, signPayload, verifySigned, type SignedMessageKind } from './signing.js';
import {
  COORDINATOR_WALLET,
  NOW,
  OTHER_WALLET,
  PROVIDER_WALLET,
  advertInput,
  epochAnnouncementInput,
  inferenceSpecInput,
  offerInput,
  receiptInput,
} from './test-fixtures.js';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

async function signedOf(kind: SignedMessageKind): Promise<Signed<unknown>> {
  if (kind === 'advert') return signPayload('advert', await advertInput(), PROVIDER_WALLET);
  if (kind === 'offer') return signPayload('offer', offerInput(), COORDINATOR_WALLET);
  if (kind === 'epoch') return signPayload('epoch', epochAnnouncementInput(), COORDINATOR_WALLET);
  return signPayload('receipt', receiptInput(), PROVIDER_WALLET);
}

/** Paths of every leaf (string, number, boolean) of a JSON value. */
function leafPaths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  if (Array.isArray(value)) return value.flatMap((v, i) => leafPaths(v, [...prefix, i]));
  if (value !== null && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => leafPaths(v, [...prefix, k]));
  }
  return [prefix];
}

function mutateAt(value: Json, path: (string | number)[]): Json {
  const copy = structuredClone(value);
  let parent = copy as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1];
  const leaf = parent[last];
  if (typeof leaf === 'number') parent[last] = leaf + 1;
  else if (typeof leaf === 'boolean') parent[last] = !leaf;
  else if (typeof leaf === 'string') {
    const c = leaf.charAt(leaf.length - 1);
    parent[last] = leaf.slice(0, -1) + (c === '0' ? '1' : c === 'A' ? 'B' : '0');
  }
  return copy;
}

function failure(fn: () => unknown): ProtocolError {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err;
    throw err;
  }
  throw new Error('expected verification to fail');
}

const KINDS: SignedMessageKind[] = ['advert', 'offer', 'receipt', 'epoch'];
const SIGNERS = {
  advert: PROVIDER_WALLET,
  offer: COORDINATOR_WALLET,
  receipt: PROVIDER_WALLET,
  epoch: COORDINATOR_WALLET,
};

describe.each(KINDS)('signed %s', (kind) => {
  it('verifies after a JSON round trip and returns the normalised payload', async () => {
    const signed = await signedOf(kind);
    const wire = JSON.parse(JSON.stringify(signed)) as unknown;
    const verified = verifySigned(kind, wire, { now: NOW, expectedSigner: SIGNERS[kind].address });
    expect(verified).toEqual(signed);
    expect(verified.signer).toBe(SIGNERS[kind].address.toLowerCase());
    expect(parseSigned(kind, wire)).toEqual(signed);
  });

  it('fails verification when any payload field is tampered with (property)', async () => {
    const signed = JSON.parse(JSON.stringify(await signedOf(kind))) as { payload: Json };
    const paths = leafPaths(signed.payload);
    fc.assert(
      fc.property(fc.constantFrom(...paths), (path) => {
        const tampered = { ...signed, payload: mutateAt(signed.payload, path) };
        const err = failure(() => verifySigned(kind, tampered, { now: NOW }));
        expect(err.code).not.toBe('EXPIRED');
      }),
      { numRuns: Math.min(60, paths.length * 2) },
    );
  });

  it('fails verification when any signature byte is tampered with (property)', async () => {
    const signed = await signedOf(kind);
    const bytes = Buffer.from(signed.signature.slice(2), 'hex');
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 64 }), fc.integer({ min: 1, max: 255 }), (index, xor) => {
        const copy = Buffer.from(bytes);
        copy[index] ^= xor;
        const err = failure(() =>
          verifySigned(kind, { ...signed, signature: `0x${copy.toString('hex')}` }, { now: NOW }),
        );
        expect(err.code).toBe('BAD_SIGNATURE');
      }),
      { numRuns: 60 },
    );
  });

  it('rejects a claimed signer that did not sign', async () => {
    const signed = await signedOf(kind);
    const err = failure(() => verifySigned(kind, { ...signed, signer: OTHER_WALLET.address }, { now: NOW }));
    expect(err).toBeInstanceOf(SignatureVerificationError);
    expect(err.code).toBe('BAD_SIGNATURE');
    expect(gossipActionFor(err.code)).toBe('REJECT');
  });

  it('rejects an unexpected signer with SIGNER_MISMATCH', async () => {
    const signed = await signedOf(kind);
    const err = failure(() => verifySigned(kind, signed, { now: NOW, expectedSigner: OTHER_WALLET.address }));
    expect(err.code).toBe('SIGNER_MISMATCH');
  });

  it('rejects messages from the future with FROM_FUTURE', async () => {
    const signed = await signedOf(kind);
    const err = failure(() => verifySigned(kind, signed, { now: NOW - 60_000, maxSkewMs: 1000 }));
    expect(err.code).toBe('FROM_FUTURE');
    expect(gossipActionFor(err.code)).toBe('IGNORE');
    expect(verifySigned(kind, signed, { now: NOW - 500, maxSkewMs: 1000 }).payload).toEqual(signed.payload);
  });

  it('rejects unknown envelope fields, naming them', async () => {
    const signed = await signedOf(kind);
    const err = failure(() => verifySigned(kind, { ...signed, extra: 1 }, { now: NOW }));
    expect(err).toBeInstanceOf(ProtocolValidationError);
    expect(err.message).toContain('extra: unknown field');
  });
});

describe('signatures are bound to their message type', () => {
  it('a signature over one domain never verifies under another', async () => {
    const signed = await signPayload('receipt', receiptInput(), PROVIDER_WALLET);
    const signer = PROVIDER_WALLET.address.toLowerCase();
    expect(verifyMessage(canonicalBytes('receipt', signed.payload), signed.signature).toLowerCase()).toBe(
      signer,
    );
    for (const other of ['advert', 'offer', 'spec', 'inputs', 'outputs'] as const) {
      expect(verifyMessage(canonicalBytes(other, signed.payload), signed.signature).toLowerCase()).not.toBe(
        signer,
      );
    }
  });
});

describe('per-kind checks', () => {
  it('advert: expires, and the address must be the signer', async () => {
    const signed = await signPayload('advert', await advertInput(), PROVIDER_WALLET);
    expect(failure(() => verifySigned('advert', signed, { now: NOW + 120_000 })).code).toBe('EXPIRED');
    const foreign = await signPayload('advert', await advertInput(), OTHER_WALLET).catch((e: unknown) => e);
    expect(foreign).toBeInstanceOf(SignatureVerificationError);
    expect((foreign as SignatureVerificationError).code).toBe('SIGNER_MISMATCH');
  });

  it('advert: a binding signed by another wallet is rejected', async () => {
    const input = await advertInput();
    const otherBinding = (await advertInput(OTHER_WALLET)).binding as Record<string, unknown>;
    const forged = {
      ...input,
      binding: { ...(input.binding as Record<string, unknown>), signature: otherBinding.signature },
    };
    const err = await signPayload('advert', forged, PROVIDER_WALLET).catch((e: unknown) => e);
    expect((err as SignatureVerificationError).code).toBe('BAD_PEER_BINDING');
  });

  it('advert: accepts a checksummed address and stores it lower-case', async () => {
    const signed = await signPayload('advert', await advertInput(), PROVIDER_WALLET);
    expect(signed.payload.address).toBe(PROVIDER_WALLET.address.toLowerCase());
  });

  it('offer: expires at its deadline and must carry the hash of its spec', async () => {
    const signed = await signPayload('offer', offerInput(), COORDINATOR_WALLET);
    expect(failure(() => verifySigned('offer', signed, { now: NOW + 700_000 })).code).toBe('EXPIRED');
    const wrongHash = { ...offerInput(), specHash: 'ab'.repeat(32) };
    const err = await signPayload('offer', wrongHash, COORDINATOR_WALLET).catch((e: unknown) => e);
    expect((err as ProtocolValidationError).message).toContain('specHash: expected hashSpec(spec)');
  });

  it('offer: validation errors name nested spec fields', async () => {
    const spec = parseJobSpec(inferenceSpecInput());
    const bad = { ...offerInput(spec), spec: { ...spec, inputs: [{ ...spec.inputs[0], shape: [8, 0] }] } };
    const err = await signPayload('offer', bad, COORDINATOR_WALLET).catch((e: unknown) => e);
    expect((err as ProtocolValidationError).message).toContain(
      'spec.inputs[0].shape: expected array of positive integers',
    );
  });

  it('receipt: never expires but must be signed by its provider', async () => {
    const signed = await signPayload('receipt', receiptInput(), PROVIDER_WALLET);
    expect(verifySigned('receipt', signed, { now: NOW + 365 * 86_400_000 }).payload.jobId).toBe(
      signed.payload.jobId,
    );
    const err = await signPayload('receipt', receiptInput(), OTHER_WALLET).catch((e: unknown) => e);
    expect((err as SignatureVerificationError).code).toBe('SIGNER_MISMATCH');
  });
});
