import {
  PROTOCOL_VERSION,
  ReplayGuard,
  createPeerBinding,
  signPayload,
  type ProviderAdvert,
  type Signed,
} from '@gpumesh/protocol';
import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';

import { encodeGossipPayload } from './gossip-topics.js';
import { GossipValidationError, validateAdvertGossip } from './gossip-validation.js';

const WALLET = new Wallet(`0x${'41'.repeat(32)}`);
const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
const OTHER_PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK';
const NOW = 1_750_000_000_000;

async function advert(seq: number, issuedAt = NOW): Promise<Signed<ProviderAdvert>> {
  return signPayload(
    'advert',
    {
      version: PROTOCOL_VERSION,
      peerId: PEER,
      address: WALLET.address,
      operatorId: 'op',
      seq,
      issuedAt,
      expiresAt: issuedAt + 60_000,
      backend: 'cpu',
      gpus: [],
      gflops: 1,
      pricePerUnit: '1',
      slots: 1,
      freeSlots: 1,
      binding: await createPeerBinding(WALLET, PEER, issuedAt - 1),
    },
    WALLET,
  );
}

function verdictOf(fn: () => unknown): { action: string; code: string } | 'ACCEPT' {
  try {
    fn();
    return 'ACCEPT';
  } catch (err) {
    if (!(err instanceof GossipValidationError)) throw err;
    return { action: err.action, code: err.code };
  }
}

describe('validateAdvertGossip', () => {
  const ctx = () => ({ replayGuard: new ReplayGuard(), now: () => NOW });
  const bytes = (value: unknown) => encodeGossipPayload('advert', value as Signed<ProviderAdvert>);

  it('accepts a fresh advert from its own peer', async () => {
    const a = await advert(1);
    expect(validateAdvertGossip(ctx(), { from: PEER, data: bytes(a) })).toEqual(a);
  });

  it('REJECTs unsigned, oversize, undecodable and invalid messages', async () => {
    const c = ctx();
    const a = await advert(1);
    expect(verdictOf(() => validateAdvertGossip(c, { from: undefined, data: bytes(a) }))).toEqual({
      action: 'REJECT',
      code: 'UNSIGNED_MESSAGE',
    });
    expect(verdictOf(() => validateAdvertGossip(c, { from: PEER, data: new Uint8Array(65 * 1024) }))).toEqual(
      {
        action: 'REJECT',
        code: 'MESSAGE_TOO_LARGE',
      },
    );
    expect(
      verdictOf(() => validateAdvertGossip(c, { from: PEER, data: Uint8Array.from([0xff, 0x00]) })),
    ).toEqual({
      action: 'REJECT',
      code: 'UNDECODABLE',
    });
    expect(verdictOf(() => validateAdvertGossip(c, { from: PEER, data: bytes({ payload: {} }) }))).toEqual({
      action: 'REJECT',
      code: 'INVALID_MESSAGE',
    });
  });

  it('REJECTs a tampered payload and an advert published by another peer', async () => {
    const c = ctx();
    const a = await advert(1);
    const tampered = { ...a, payload: { ...a.payload, gflops: 99 } };
    expect(verdictOf(() => validateAdvertGossip(c, { from: PEER, data: bytes(tampered) }))).toEqual({
      action: 'REJECT',
      code: 'BAD_SIGNATURE',
    });
    expect(verdictOf(() => validateAdvertGossip(c, { from: OTHER_PEER, data: bytes(a) }))).toEqual({
      action: 'REJECT',
      code: 'PEER_ID_MISMATCH',
    });
    // neither rejection burnt the provider's sequence number
    expect(validateAdvertGossip(c, { from: PEER, data: bytes(a) })).toEqual(a);
  });

  it('IGNOREs replays, stale sequence numbers, expired and future adverts', async () => {
    const c = ctx();
    validateAdvertGossip(c, { from: PEER, data: bytes(await advert(5)) });
    const results = [
      await advert(6), // replayed below
      await advert(4),
      await advert(7, NOW - 5 * 60_000),
      await advert(8, NOW + 5 * 60_000),
    ];
    validateAdvertGossip(c, { from: PEER, data: bytes(results[0]) });
    expect(verdictOf(() => validateAdvertGossip(c, { from: PEER, data: bytes(results[0]) }))).toEqual({
      action: 'IGNORE',
      code: 'REPLAY',
    });
    expect(verdictOf(() => validateAdvertGossip(c, { from: PEER, data: bytes(results[1]) }))).toEqual({
      action: 'IGNORE',
      code: 'STALE',
    });
    expect(verdictOf(() => validateAdvertGossip(c, { from: PEER, data: bytes(results[2]) }))).toEqual({
      action: 'IGNORE',
      code: 'EXPIRED',
    });
    expect(verdictOf(() => validateAdvertGossip(c, { from: PEER, data: bytes(results[3]) }))).toEqual({
      action: 'IGNORE',
      code: 'FROM_FUTURE',
    });
  });
});
