import { describe, expect, it } from 'vitest';
import { OfferedArtifacts } from './offered-artifacts.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('OfferedArtifacts', () => {
  it('allows a peer the models of its open offers only, until each offer ends', () => {
    const offered = new OfferedArtifacts();
    expect(offered.allows('peer1', A)).toBe(false);
    const first = offered.grant('peer1', A);
    const second = offered.grant('peer1', A);
    expect(offered.allows('peer1', A)).toBe(true);
    expect(offered.allows('peer1', B)).toBe(false);
    expect(offered.allows('peer2', A)).toBe(false);
    first();
    first(); // ending twice ends once
    expect(offered.allows('peer1', A)).toBe(true);
    second();
    expect(offered.allows('peer1', A)).toBe(false);
    expect(offered.size).toBe(0);
  });
});
