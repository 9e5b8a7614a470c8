import { describe, expect, it } from 'vitest';

import { SignatureVerificationError } from './errors.js';
import {
  createPeerBinding,
  peerBindingMessage,
  safeParsePeerBinding,
  verifyPeerBinding,
} from './peer-binding.js';
import {
  COORDINATOR_PEER_ID,
  NOW,
  OTHER_WALLET,
  PROVIDER_PEER_ID,
  PROVIDER_WALLET,
} from './test-fixtures.js';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof SignatureVerificationError) return err.code;
    throw err;
  }
  return 'none';
}

describe('PeerBinding', () => {
  it('binds a peer id to the wallet address and verifies', async () => {
    const binding = await createPeerBinding(PROVIDER_WALLET, PROVIDER_PEER_ID, NOW);
    expect(binding.address).toBe(PROVIDER_WALLET.address.toLowerCase());
    expect(verifyPeerBinding(JSON.parse(JSON.stringify(binding)), { now: NOW })).toEqual(binding);
  });

  it('signs a human-readable statement', () => {
    expect(peerBindingMessage('12D3KooW', '0xABC', 5)).toBe(
      'gpumesh peer binding v1\npeerId: 12D3KooW\naddress: 0xabc\nissuedAt: 5',
    );
  });

  it('rejects a binding whose peer id, address, time or signature was changed', async () => {
    const binding = await createPeerBinding(PROVIDER_WALLET, PROVIDER_PEER_ID, NOW);
    expect(codeOf(() => verifyPeerBinding({ ...binding, peerId: COORDINATOR_PEER_ID }, { now: NOW }))).toBe(
      'BAD_PEER_BINDING',
    );
    expect(codeOf(() => verifyPeerBinding({ ...binding, address: OTHER_WALLET.address }, { now: NOW }))).toBe(
      'BAD_PEER_BINDING',
    );
    expect(codeOf(() => verifyPeerBinding({ ...binding, issuedAt: NOW - 1 }, { now: NOW }))).toBe(
      'BAD_PEER_BINDING',
    );
    const sig = `${binding.signature.slice(0, 10)}${binding.signature[10] === 'a' ? 'b' : 'a'}${binding.signature.slice(11)}`;
    expect(codeOf(() => verifyPeerBinding({ ...binding, signature: sig }, { now: NOW }))).toBe(
      'BAD_PEER_BINDING',
    );
  });

  it('rejects a binding issued in the future', async () => {
    const binding = await createPeerBinding(PROVIDER_WALLET, PROVIDER_PEER_ID, NOW + 3_600_000);
    expect(codeOf(() => verifyPeerBinding(binding, { now: NOW }))).toBe('FROM_FUTURE');
  });

  it('validates its shape, naming the field', () => {
    const result = safeParsePeerBinding({
      peerId: 'not a peer id',
      address: '0x00',
      issuedAt: 1,
      signature: '0x',
    });
    expect(!result.success && result.error.message).toContain('peerId: expected libp2p peer id');
  });
});
