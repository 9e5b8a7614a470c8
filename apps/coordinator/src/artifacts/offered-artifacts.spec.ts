import { describe, expect, it } from 'vitest';
import { ARTIFACT_FETCHES_PER_OFFER, OfferedArtifacts } from './offered-artifacts.js';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

describe('OfferedArtifacts', () => {
  it('allows a peer the models of its open offers only, until each offer ends', () => {
    const offered = new OfferedArtifacts();
    expect(offered.take('peer1', A)).toBe(false);
    const first = offered.grant('peer1', A);
    const second = offered.grant('peer1', A);
    expect(offered.take('peer1', A)).toBe(true);
    expect(offered.take('peer1', B)).toBe(false);
    expect(offered.take('peer2', A)).toBe(false);
    first();
    first(); // ending twice ends once
    expect(offered.allows('peer1', A)).toBe(true);
    second();
    expect(offered.allows('peer1', A)).toBe(false);
    expect(offered.take('peer1', A)).toBe(false);
    expect(offered.size).toBe(0);
  });

  it('allows a few fetches per open offer, not endless ones', () => {
    const offered = new OfferedArtifacts();
    const end = offered.grant('peer1', A);
    for (let i = 0; i < ARTIFACT_FETCHES_PER_OFFER; i += 1) expect(offered.take('peer1', A)).toBe(true);
    expect(offered.take('peer1', A)).toBe(false);
    // a second offer of the same model brings its own fetches
    const other = offered.grant('peer1', A);
    for (let i = 0; i < ARTIFACT_FETCHES_PER_OFFER; i += 1) expect(offered.take('peer1', A)).toBe(true);
    expect(offered.take('peer1', A)).toBe(false);
    other();
    end();
    expect(offered.size).toBe(0);
  });
});
