import { describe, expect, it } from 'vitest';

import {
  BANNED_BEFORE_DECAY_MS,
  DENY_AFTER_DISCONNECT_MS,
  MIN_SCORE,
  PEER_ACTION_SCORE,
  PeerAction,
  PeerScoreStore,
  SCORE_HALFLIFE_MS,
  scoreStateOf,
  type ScoreState,
} from './peer-score.js';

function storeAt(start = 1_000_000) {
  let now = start;
  const events: { peerId: string; state: ScoreState }[] = [];
  const store = new PeerScoreStore({
    now: () => now,
    onPenalised: (peerId, state) => events.push({ peerId, state }),
  });
  return { store, events, advance: (ms: number) => (now += ms) };
}

describe('PeerScoreStore', () => {
  it('applies each named action by its table delta', () => {
    const { store } = storeAt();
    store.applyAction('p', PeerAction.HighToleranceError, 'replay');
    expect(store.getScore('p')).toBe(PEER_ACTION_SCORE.HighToleranceError);
    store.applyAction('p', PeerAction.MidToleranceError, 'garbage');
    expect(store.getScore('p')).toBe(-6);
    expect(store.getState('p')).toBe('healthy');
  });

  it('disconnects at the disconnect threshold and bans at the ban threshold', () => {
    const { store, events } = storeAt();
    store.applyAction('p', PeerAction.LowToleranceError, 'forged');
    expect(events).toEqual([]);
    expect(store.applyAction('p', PeerAction.LowToleranceError, 'forged')).toBe('disconnect');
    for (let i = 0; i < 3; i++) store.applyAction('p', PeerAction.LowToleranceError, 'forged');
    expect(store.isBanned('p')).toBe(true);
    expect(events.map((e) => e.state)).toEqual(['disconnect', 'disconnect', 'disconnect', 'banned']);
  });

  it('bans at once on a fatal action and never goes below MIN_SCORE', () => {
    const { store } = storeAt();
    store.applyAction('p', PeerAction.Fatal, 'fatal');
    store.applyAction('p', PeerAction.Fatal, 'fatal');
    expect(store.getScore('p')).toBe(MIN_SCORE);
    expect(store.isBanned('p')).toBe(true);
  });

  it('halves the score every half-life and forgets it near zero', () => {
    const { store, advance } = storeAt();
    store.applyAction('p', PeerAction.LowToleranceError, 'x');
    advance(SCORE_HALFLIFE_MS);
    expect(store.getScore('p')).toBeCloseTo(-5, 6);
    advance(10 * SCORE_HALFLIFE_MS);
    expect(store.getScore('p')).toBe(0);
    expect(store.size).toBe(0);
  });

  it('freezes a banned score for BANNED_BEFORE_DECAY_MS, then lets it decay', () => {
    const { store, advance } = storeAt();
    store.applyAction('p', PeerAction.Fatal, 'fatal');
    advance(BANNED_BEFORE_DECAY_MS - 1);
    expect(store.getScore('p')).toBe(MIN_SCORE);
    advance(1 + 2 * SCORE_HALFLIFE_MS);
    expect(store.getScore('p')).toBeCloseTo(MIN_SCORE / 4, 6);
    expect(store.getState('p')).toBe('disconnect');
  });

  it('stays bounded, forgetting healthy peers before banned ones', () => {
    let now = 0;
    const store = new PeerScoreStore({ now: () => now, maxPeers: 3 });
    store.applyAction('banned', PeerAction.Fatal, 'x');
    for (const p of ['a', 'b', 'c', 'd']) {
      now += 1;
      store.applyAction(p, PeerAction.HighToleranceError, 'x');
    }
    expect(store.size).toBe(3);
    expect(store.isBanned('banned')).toBe(true);
    expect(store.getScore('a')).toBe(0);
  });

  it('maps scores to states by the named thresholds', () => {
    expect(scoreStateOf(0)).toBe('healthy');
    expect(scoreStateOf(-19.9)).toBe('healthy');
    expect(scoreStateOf(-20)).toBe('disconnect');
    expect(scoreStateOf(-50)).toBe('banned');
  });
});

describe('PeerScoreStore.isDenied', () => {
  it('refuses a peer hung up on for a while after its penalty, then lets it back', () => {
    const { store, advance } = storeAt();
    store.applyAction('p', PeerAction.LowToleranceError, 'forgery');
    expect(store.isDenied('p')).toBe(false); // still healthy at -10
    store.applyAction('p', PeerAction.LowToleranceError, 'forgery');
    expect(store.getState('p')).toBe('disconnect');
    expect(store.isDenied('p')).toBe(true);
    advance(DENY_AFTER_DISCONNECT_MS - 1);
    expect(store.isDenied('p')).toBe(true);
    advance(2);
    expect(store.isDenied('p')).toBe(false);
  });

  it('refuses a banned peer until its score has decayed above the ban threshold', () => {
    const { store, advance } = storeAt();
    store.applyAction('p', PeerAction.Fatal, 'provably malicious');
    advance(BANNED_BEFORE_DECAY_MS);
    expect(store.isDenied('p')).toBe(true);
    advance(SCORE_HALFLIFE_MS * 2);
    expect(store.isBanned('p')).toBe(false);
    expect(store.isDenied('p')).toBe(false);
  });
});
