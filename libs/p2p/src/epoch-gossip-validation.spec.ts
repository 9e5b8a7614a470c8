import {
  PROTOCOL_VERSION,
  ReplayGuard,
  signPayload,
  type EpochAnnouncement,
  type Signed,
} from '@gpumesh/protocol';
import { Wallet } from 'ethers';
import { describe, expect, it } from 'vitest';

import { encodeGossipPayload } from './gossip-topics.js';
import { GossipValidationError, validateEpochAnnouncementGossip } from './gossip-validation.js';

const COORDINATOR = new Wallet(`0x${'42'.repeat(32)}`);
const STRANGER = new Wallet(`0x${'43'.repeat(32)}`);
const PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
const OTHER_PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK';
const NOW = 1_750_000_000_000;

async function announcement(
  seq: number,
  options: { wallet?: Wallet; issuedAt?: number; size?: number } = {},
): Promise<Signed<EpochAnnouncement>> {
  const issuedAt = options.issuedAt ?? NOW;
  return signPayload(
    'epoch',
    {
      version: PROTOCOL_VERSION,
      peerId: PEER,
      seq,
      issuedAt,
      expiresAt: issuedAt + 60_000,
      chainId: 31337,
      distributor: `0x${'ab'.repeat(20)}`,
      epoch: 4,
      root: `0x${'cd'.repeat(32)}`,
      fileHash: `0x${'ef'.repeat(32)}`,
      size: options.size ?? 2048,
    },
    options.wallet ?? COORDINATOR,
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

describe('validateEpochAnnouncementGossip', () => {
  const trusted = (signer: string): boolean => signer === COORDINATOR.address.toLowerCase();

  it('accepts a fresh announcement of the followed signer once; replays and stale seqs are ignored', async () => {
    const ctx = { replayGuard: new ReplayGuard(), now: () => NOW, isTrustedAnnouncer: trusted };
    const data = encodeGossipPayload('epoch', await announcement(5));
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data }))).toBe('ACCEPT');
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data }))).toEqual({
      action: 'IGNORE',
      code: 'REPLAY',
    });
    const older = encodeGossipPayload('epoch', await announcement(4));
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data: older }))).toEqual({
      action: 'IGNORE',
      code: 'STALE',
    });
  });

  it('ignores strangers and expired announcements, rejects forgeries and the wrong originator', async () => {
    const ctx = { replayGuard: new ReplayGuard(), now: () => NOW, isTrustedAnnouncer: trusted };
    const stranger = encodeGossipPayload('epoch', await announcement(1, { wallet: STRANGER }));
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data: stranger }))).toEqual({
      action: 'IGNORE',
      code: 'UNTRUSTED_ANNOUNCER',
    });
    const expired = encodeGossipPayload('epoch', await announcement(2, { issuedAt: NOW - 3_600_000 }));
    expect(
      verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data: expired })),
    ).toMatchObject({
      action: 'IGNORE',
      code: 'EXPIRED',
    });
    const signed = await announcement(3);
    const moved = encodeGossipPayload('epoch', signed);
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: OTHER_PEER, data: moved }))).toEqual({
      action: 'REJECT',
      code: 'PEER_ID_MISMATCH',
    });
    const forged = encodeGossipPayload('epoch', { ...signed, payload: { ...signed.payload, epoch: 5 } });
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data: forged }))).toMatchObject(
      {
        action: 'REJECT',
        code: 'BAD_SIGNATURE',
      },
    );
    const unsigned = encodeGossipPayload('epoch', signed);
    expect(
      verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: undefined, data: unsigned })),
    ).toEqual({
      action: 'REJECT',
      code: 'UNSIGNED_MESSAGE',
    });
    const junk = new TextEncoder().encode(`{"payload":"${'x'.repeat(5000)}"}`);
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data: junk }))).toEqual({
      action: 'REJECT',
      code: 'MESSAGE_TOO_LARGE',
    });
    // The replay guard was not touched by any of them: the followed signer's seq 1 is still fresh.
    const first = encodeGossipPayload('epoch', await announcement(1));
    expect(verdictOf(() => validateEpochAnnouncementGossip(ctx, { from: PEER, data: first }))).toBe('ACCEPT');
  });
});
