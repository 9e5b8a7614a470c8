// Replay protection of every signed message, as the receivers apply it: adverts (seq + expiry, the
// coordinator's gossip validator), offers (nonce + issuedAt/deadline, the agent's offer verifier) and
// receipts (bound to one job attempt, its inputs and outputs, the coordinator's result check). SIWE
// nonces are single-use: test/api/auth.test.ts and test/security/log-secrets.test.ts.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ReplayGuard,
  hashOutputs,
  parseJobSpec,
  signPayload,
  encodeTensor,
  type JobOffer,
  type ResultReceipt,
  type Signed,
} from '@gpumesh/protocol';
import {
  COORDINATOR_PEER_ID,
  COORDINATOR_WALLET,
  NOW,
  PROVIDER_PEER_ID,
  PROVIDER_WALLET,
  advertInput,
  matmulSpecInput,
  offerInput,
  receiptInput,
} from '../../libs/protocol/src/test-fixtures.js';
import {
  GossipValidationError,
  JobProtocolError,
  OfferVerificationError,
  createOfferVerifier,
  validateAdvertGossip,
  verifyJobResult,
} from '@gpumesh/p2p';

const encode = (v: unknown): Uint8Array => new TextEncoder().encode(JSON.stringify(v));

function gossipCode(fn: () => unknown): string {
  try {
    fn();
    return 'OK';
  } catch (err) {
    if (err instanceof GossipValidationError) return `${err.action} ${err.code}`;
    throw err;
  }
}

describe('advert replays (seq + expiry)', () => {
  it('accepts each seq once, in increasing order, and never an expired or future advert (property)', async () => {
    const signed = new Map<number, unknown>();
    for (const seq of [1, 2, 3, 5, 8, 13]) {
      signed.set(seq, await signPayload('advert', { ...(await advertInput()), seq }, PROVIDER_WALLET));
    }
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...signed.keys()), { minLength: 1, maxLength: 20 }),
        async (order) => {
          const replayGuard = new ReplayGuard();
          let highest = -1;
          for (const seq of order) {
            const code = gossipCode(() =>
              validateAdvertGossip(
                { replayGuard, now: () => NOW + 1000 },
                { from: PROVIDER_PEER_ID, data: encode(signed.get(seq)) },
              ),
            );
            if (seq > highest) {
              expect(code).toBe('OK');
              highest = seq;
            } else expect(code).toBe(seq === highest ? 'IGNORE REPLAY' : 'IGNORE STALE');
          }
        },
      ),
      { numRuns: 50, seed: 8 },
    );
    const guard = new ReplayGuard();
    const advert = signed.get(13);
    const at = (now: number): string =>
      gossipCode(() =>
        validateAdvertGossip(
          { replayGuard: guard, now: () => now },
          { from: PROVIDER_PEER_ID, data: encode(advert) },
        ),
      );
    expect(at(NOW + 61_000 + 60_000)).toMatch(/^IGNORE EXPIRED/);
    expect(at(NOW - 3_600_000)).toMatch(/^IGNORE FROM_FUTURE/);
    // neither burned the seq: the advert is still accepted in its window
    expect(at(NOW + 1000)).toBe('OK');
  });

  it('does not let a forged advert burn the seq of a real provider', async () => {
    const replayGuard = new ReplayGuard();
    const real = await signPayload('advert', { ...(await advertInput()), seq: 50 }, PROVIDER_WALLET);
    const forged = { ...real, payload: { ...real.payload, seq: 1_000_000 } };
    expect(
      gossipCode(() =>
        validateAdvertGossip(
          { replayGuard, now: () => NOW },
          { from: PROVIDER_PEER_ID, data: encode(forged) },
        ),
      ),
    ).toBe('REJECT BAD_SIGNATURE');
    expect(
      gossipCode(() =>
        validateAdvertGossip({ replayGuard, now: () => NOW }, { from: PROVIDER_PEER_ID, data: encode(real) }),
      ),
    ).toBe('OK');
  });
});

describe('offer replays (nonce + issuedAt/deadline)', () => {
  const verifier = (now: number) =>
    createOfferVerifier({ coordinatorAddress: COORDINATOR_WALLET.address.toLowerCase(), now: () => now });
  const code = (fn: () => unknown): string => {
    try {
      fn();
      return 'OK';
    } catch (err) {
      if (err instanceof OfferVerificationError) return err.code;
      throw err;
    }
  };

  it('accepts an offer once; its replay, an expired one and one from the future are refused', async () => {
    const offer = (await signPayload('offer', offerInput(), COORDINATOR_WALLET)) as Signed<JobOffer>;
    const verify = verifier(NOW + 1000);
    const meta = { remotePeer: COORDINATOR_PEER_ID };
    expect(code(() => verify(offer, meta))).toBe('OK');
    expect(code(() => verify(offer, meta))).toBe('REPLAY');
    // the same job and attempt under a new nonce is a new offer (a re-dispatch), not a replay
    const again = (await signPayload(
      'offer',
      { ...offerInput(), nonce: 'fedcba9876543210fedcba9876543210' },
      COORDINATOR_WALLET,
    )) as Signed<JobOffer>;
    expect(code(() => verify(again, meta))).toBe('OK');
    expect(code(() => verifier(NOW + 700_000)(offer, meta))).toBe('EXPIRED');
    expect(code(() => verifier(NOW - 3_600_000)(offer, meta))).toBe('FROM_FUTURE');
    // replayed from another peer than the coordinator that signed it
    expect(code(() => verifier(NOW + 1000)(offer, { remotePeer: PROVIDER_PEER_ID }))).toBe(
      'COORDINATOR_PEER_MISMATCH',
    );
  });

  it('never accepts a nonce twice, whatever the interleaving (property)', async () => {
    const nonces = ['a', 'b', 'c', 'd'].map((c) => c.repeat(32));
    const offers = await Promise.all(
      nonces.map(
        async (nonce) =>
          (await signPayload('offer', { ...offerInput(), nonce }, COORDINATOR_WALLET)) as Signed<JobOffer>,
      ),
    );
    fc.assert(
      fc.property(fc.array(fc.nat(offers.length - 1), { maxLength: 30 }), (picks) => {
        const verify = verifier(NOW + 1000);
        const seen = new Set<number>();
        for (const i of picks) {
          expect(code(() => verify(offers[i], { remotePeer: COORDINATOR_PEER_ID }))).toBe(
            seen.has(i) ? 'REPLAY' : 'OK',
          );
          seen.add(i);
        }
      }),
      { numRuns: 100, seed: 8 },
    );
  });
});

describe('receipt replays (bound to one attempt, its inputs and outputs)', () => {
  it('refuses a valid receipt replayed for another attempt, another job or other outputs', async () => {
    const spec = parseJobSpec(matmulSpecInput());
    const offer = { ...(offerInput(spec) as unknown as JobOffer), attempt: 2 };
    const outputs = [encodeTensor('c', 'float32', [2, 4], new Float32Array(8).fill(1))];
    const provider = { peerId: PROVIDER_PEER_ID, address: PROVIDER_WALLET.address.toLowerCase() };
    const sign = async (overrides: Record<string, unknown>): Promise<Signed<ResultReceipt>> =>
      (await signPayload(
        'receipt',
        { ...receiptInput(), outputHash: hashOutputs(outputs), ...overrides },
        PROVIDER_WALLET,
      )) as Signed<ResultReceipt>;
    const bad = (receipt: unknown, outs = outputs): string => {
      try {
        verifyJobResult(offer, provider, outs, receipt, NOW + 1000);
        return 'OK';
      } catch (err) {
        if (err instanceof JobProtocolError) return `${err.code} ${err.message}`;
        throw err;
      }
    };
    expect(bad(await sign({ attempt: 2 }))).toBe('OK');
    expect(bad(await sign({ attempt: 1 }))).toMatch(/^BAD_RECEIPT .*attempt 1 != 2/);
    expect(bad(await sign({ attempt: 2, jobId: '00000000-0000-4000-8000-000000000009' }))).toMatch(
      /^BAD_RECEIPT .*jobId/,
    );
    const otherOutputs = [encodeTensor('c', 'float32', [2, 4], new Float32Array(8).fill(2))];
    expect(bad(await sign({ attempt: 2 }), otherOutputs)).toMatch(/^BAD_RECEIPT .*outputHash/);
    expect(bad(await sign({ attempt: 2, providerPeerId: COORDINATOR_PEER_ID }))).toMatch(
      /^BAD_RECEIPT .*providerPeerId/,
    );
  });
});
