import { describe, expect, it } from 'vitest';

import { generatePeerKey, peerIdStringOf, peerKeyFromHex, peerKeyToHex } from './peer-key.js';

describe('peer key (de)serialisation', () => {
  it('round-trips an Ed25519 key through protobuf hex and keeps the peer id', async () => {
    const key = await generatePeerKey();
    const hex = peerKeyToHex(key);
    expect(hex).toMatch(/^[0-9a-f]+$/);
    const restored = peerKeyFromHex(hex);
    expect(restored.equals(key)).toBe(true);
    expect(peerIdStringOf(restored)).toBe(peerIdStringOf(key));
    expect(peerIdStringOf(key)).toMatch(/^12D3KooW/);
    expect(peerKeyFromHex(`0x${hex}`).equals(key)).toBe(true);
  });

  it('refuses text that is not hex', () => {
    expect(() => peerKeyFromHex('not hex')).toThrow(/expected hex/);
  });
});
