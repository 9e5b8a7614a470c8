import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';

import { batchLeafHash, batchRootOf, batchTree } from './batch-merkle.js';
import { SignatureVerificationError } from './errors.js';
import { BatchSigner, signPayload, signPayloads, verifySigned } from './signing.js';
import {
  COORDINATOR_WALLET,
  NOW,
  OTHER_WALLET,
  PROVIDER_WALLET,
  offerInput,
  receiptInput,
} from './test-fixtures.js';

const receipts = (n: number): Record<string, unknown>[] =>
  Array.from({ length: n }, (_, i) => ({ ...receiptInput(), attempt: i + 1 }));

describe('batch Merkle tree', () => {
  it('every leaf of every size proves the same root, and no other leaf or position does (property)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 70 }), (size) => {
        const leaves = Array.from({ length: size }, (_, i) => batchLeafHash(Buffer.from(`leaf ${i}`)));
        const { root, proofs } = batchTree(leaves);
        for (let i = 0; i < size; i++) {
          expect(batchRootOf(leaves[i], i, size, proofs[i])).toBe(root);
          if (size > 1) {
            const other = (i + 1) % size;
            expect(batchRootOf(leaves[other], i, size, proofs[i])).not.toBe(root);
          }
        }
      }),
      { numRuns: 40 },
    );
  });

  it('hashes leaves and nodes as the protocol defines: SHA-256 of 0x00 ‖ bytes, of 0x01 ‖ left ‖ right', () => {
    // Written out independently, so a faster implementation cannot drift from what peers compute.
    const sha = (...parts: Uint8Array[]): string => {
      const h = createHash('sha256');
      for (const p of parts) h.update(p);
      return h.digest('hex');
    };
    const leaves = ['a', 'bb', 'ccc'].map((t) => new TextEncoder().encode(t));
    const l = leaves.map((b) => sha(Uint8Array.of(0), b));
    expect(leaves.map(batchLeafHash)).toEqual(l);
    const node = (a: string, b: string): string =>
      sha(Uint8Array.of(1), Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
    expect(batchTree(l).root).toBe(node(node(l[0], l[1]), l[2]));
  });

  it('a proof of the wrong length for its position leads nowhere', () => {
    const leaves = ['a', 'b', 'c', 'd', 'e'].map((s) => batchLeafHash(Buffer.from(s)));
    const { proofs } = batchTree(leaves);
    expect(batchRootOf(leaves[0], 0, 5, proofs[0].slice(1))).toBeNull();
    expect(batchRootOf(leaves[0], 0, 5, [...proofs[0], proofs[0][0]])).toBeNull();
  });
});

describe('signPayloads: one signature for a batch', () => {
  it('each envelope verifies alone, after a JSON round trip, with the batch signer', async () => {
    const signed = await signPayloads('receipt', receipts(7), PROVIDER_WALLET);
    expect(new Set(signed.map((s) => s.signature)).size).toBe(1);
    for (const [i, s] of signed.entries()) {
      expect(s.batch).toMatchObject({ index: i, size: 7 });
      const back = verifySigned('receipt', JSON.parse(JSON.stringify(s)), {
        expectedSigner: PROVIDER_WALLET.address,
        now: NOW,
      });
      expect(back.payload.attempt).toBe(i + 1);
    }
  });

  it('one payload is signed as signPayload signs it (no batch)', async () => {
    const [one] = await signPayloads('receipt', receipts(1), PROVIDER_WALLET);
    expect(one).toEqual(await signPayload('receipt', receipts(1)[0], PROVIDER_WALLET));
    expect(one.batch).toBeUndefined();
  });

  it('a tampered payload, proof, index or signer fails with BAD_SIGNATURE', async () => {
    const signed = await signPayloads('receipt', receipts(4), PROVIDER_WALLET);
    const s = JSON.parse(JSON.stringify(signed[2])) as (typeof signed)[number];
    const cases = [
      { ...s, payload: { ...s.payload, outputHash: 'aa'.repeat(32) } },
      { ...s, batch: { ...s.batch!, index: 1 } },
      { ...s, batch: { ...s.batch!, size: 5 } },
      { ...s, batch: { ...s.batch!, proof: [...s.batch!.proof].reverse() } },
      // another member's payload under this member's proof
      { ...s, payload: signed[3].payload },
      { ...s, signer: OTHER_WALLET.address.toLowerCase() },
    ];
    for (const bad of cases) {
      expect(() => verifySigned('receipt', bad, { now: NOW })).toThrow(SignatureVerificationError);
    }
  });

  it('a batch signature is bound to its kind: receipts and offers never pass for each other', async () => {
    const offers = await signPayloads(
      'offer',
      [offerInput(), { ...offerInput(), attempt: 2 }],
      COORDINATOR_WALLET,
    );
    expect(verifySigned('offer', offers[1], { now: NOW }).payload.attempt).toBe(2);
    // The same bytes re-labelled: the root was signed under the offer-batch tag.
    const forged = { ...offers[0], payload: receipts(1)[0] };
    expect(() => verifySigned('receipt', forged, { now: NOW })).toThrow();
  });

  it('adverts are never accepted in batch form', async () => {
    const [r] = await signPayloads('receipt', receipts(2), PROVIDER_WALLET);
    const { advertInput } = await import('./test-fixtures.js');
    const advert = await signPayload('advert', await advertInput(), PROVIDER_WALLET);
    expect(() => verifySigned('advert', { ...advert, batch: r.batch }, { now: NOW })).toThrow(
      /signature does not match/,
    );
  });
});

describe('BatchSigner', () => {
  it('signs what is asked within one turn together, and a bad payload fails alone', async () => {
    const signer = new BatchSigner('receipt', PROVIDER_WALLET);
    const good = receipts(3).map((r) => signer.sign(r));
    const bad = signer.sign({ ...receiptInput(), attempt: 0 });
    const signed = await Promise.all(good);
    await expect(bad).rejects.toThrow(/attempt/);
    for (const s of signed) expect(verifySigned('receipt', s, { now: NOW }).signer).toBe(s.signer);
    const later = await signer.sign(receipts(1)[0]);
    expect(later.batch).toBeUndefined();
  });

  it('a full turn of requests costs one signature', async () => {
    const signer = new BatchSigner('receipt', PROVIDER_WALLET);
    const signed = await Promise.all(receipts(50).map((r) => signer.sign(r)));
    expect(new Set(signed.map((s) => s.signature)).size).toBe(1);
    expect(signed.map((s) => s.batch?.index)).toEqual(signed.map((_, i) => i));
  });
});
