/**
 * Application-level peer penalties (lodestar style): every penalty is one named action from one
 * table, scores decay towards 0 with a half-life, stay within [MIN_SCORE, MAX_SCORE], and every
 * threshold is a named constant. Gossipsub keeps its own router score; this one covers what only
 * the application can judge (bad signatures, forged adverts, garbage frames).
 */

/** Named penalties, from "drop this peer now" to "probably a glitch". */
export const PeerAction = {
  /** Provably malicious: banned at once. */
  Fatal: 'Fatal',
  /** Clearly bad (forged signature, peer binding mismatch): a handful gets a peer banned. */
  LowToleranceError: 'LowToleranceError',
  /** Bad but possibly a bug (undecodable or invalid message, garbage frame). */
  MidToleranceError: 'MidToleranceError',
  /** Mostly harmless, only bad when repeated (replays). */
  HighToleranceError: 'HighToleranceError',
} as const;
export type PeerAction = (typeof PeerAction)[keyof typeof PeerAction];

export const MAX_SCORE = 100;
export const MIN_SCORE = -100;
/** At or below this a peer is disconnected (it may come back once its score decays). */
export const MIN_SCORE_BEFORE_DISCONNECT = -20;
/** At or below this a peer is banned: disconnected, refused and its messages ignored. */
export const MIN_SCORE_BEFORE_BAN = -50;
/**
 * A peer hung up on for its score (at or below MIN_SCORE_BEFORE_DISCONNECT) is refused for this long
 * after its last penalty, so a hang-up is not undone by an instant reconnect.
 */
export const DENY_AFTER_DISCONNECT_MS = 60 * 1000;
/** Scores halve every this many ms. */
export const SCORE_HALFLIFE_MS = 10 * 60 * 1000;
/** A banned peer's score does not decay for this long after its last penalty. */
export const BANNED_BEFORE_DECAY_MS = 30 * 60 * 1000;
/** Scores closer to 0 than this are forgotten. */
export const SCORE_FORGET_THRESHOLD = 0.5;
/** Most peers tracked; the least recently penalised healthy peer is forgotten first. */
export const DEFAULT_MAX_TRACKED_PEERS = 10_000;

/** Score delta of each action. */
export const PEER_ACTION_SCORE: Readonly<Record<PeerAction, number>> = {
  Fatal: MIN_SCORE - MAX_SCORE,
  LowToleranceError: -10,
  MidToleranceError: -5,
  HighToleranceError: -1,
};

export type ScoreState = 'healthy' | 'disconnect' | 'banned';

/** Which state a score falls in. */
export function scoreStateOf(score: number): ScoreState {
  if (score <= MIN_SCORE_BEFORE_BAN) return 'banned';
  if (score <= MIN_SCORE_BEFORE_DISCONNECT) return 'disconnect';
  return 'healthy';
}

export interface PeerScoreStoreOptions {
  /** Clock (ms); defaults to `Date.now`. */
  readonly now?: () => number;
  readonly maxPeers?: number;
  /**
   * Called after a penalty moves a peer to `disconnect` or `banned` (each penalty at or below the
   * disconnect threshold calls it again). The gossip layer uses it to hang up on the peer.
   */
  readonly onPenalised?: (peerId: string, state: ScoreState, score: number, reason: string) => void;
}

interface ScoreEntry {
  score: number;
  lastUpdate: number;
  /** Until when the score is frozen (banned peers). */
  frozenUntil: number;
  /** Until when the peer is refused after a penalty that hung up on it. */
  deniedUntil: number;
}

/** Scores of remote peers, by peer id string. */
export class PeerScoreStore {
  private readonly entries = new Map<string, ScoreEntry>();
  private readonly now: () => number;
  private readonly maxPeers: number;
  private readonly onPenalised?: PeerScoreStoreOptions['onPenalised'];

  constructor(options: PeerScoreStoreOptions = {}) {
    this.now = options.now ?? Date.now;
    this.maxPeers = options.maxPeers ?? DEFAULT_MAX_TRACKED_PEERS;
    this.onPenalised = options.onPenalised;
  }

  /** Applies `action` to `peerId`, returns the peer's new state. */
  applyAction(peerId: string, action: PeerAction, reason: string): ScoreState {
    const now = this.now();
    const entry = this.decayed(peerId, now) ?? { score: 0, lastUpdate: now, frozenUntil: 0, deniedUntil: 0 };
    entry.score = Math.max(MIN_SCORE, Math.min(MAX_SCORE, entry.score + PEER_ACTION_SCORE[action]));
    entry.lastUpdate = now;
    const state = scoreStateOf(entry.score);
    if (state === 'banned') entry.frozenUntil = now + BANNED_BEFORE_DECAY_MS;
    if (state !== 'healthy') entry.deniedUntil = now + DENY_AFTER_DISCONNECT_MS;
    this.entries.delete(peerId); // re-insert: the map's order is least recently penalised first
    this.entries.set(peerId, entry);
    this.evictIfFull();
    if (state !== 'healthy') this.onPenalised?.(peerId, state, entry.score, reason);
    return state;
  }

  /** Current (decayed) score; 0 for an unknown peer. */
  getScore(peerId: string): number {
    return this.decayed(peerId, this.now())?.score ?? 0;
  }

  getState(peerId: string): ScoreState {
    return scoreStateOf(this.getScore(peerId));
  }

  isBanned(peerId: string): boolean {
    return this.getState(peerId) === 'banned';
  }

  /**
   * Should the peer be refused now? Banned peers are, until their score decays above the ban
   * threshold (BANNED_BEFORE_DECAY_MS, then half-lives); a peer hung up on for a lesser penalty is
   * refused for DENY_AFTER_DISCONNECT_MS.
   */
  isDenied(peerId: string): boolean {
    const now = this.now();
    const entry = this.decayed(peerId, now);
    if (entry === undefined) return false;
    return scoreStateOf(entry.score) === 'banned' || entry.deniedUntil > now;
  }

  /** Number of peers with a remembered score. */
  get size(): number {
    return this.entries.size;
  }

  /** Peers whose score is not 0, with their state (for status pages). */
  snapshot(): { peerId: string; score: number; state: ScoreState }[] {
    const now = this.now();
    const out: { peerId: string; score: number; state: ScoreState }[] = [];
    for (const peerId of [...this.entries.keys()]) {
      const entry = this.decayed(peerId, now);
      if (entry !== undefined) out.push({ peerId, score: entry.score, state: scoreStateOf(entry.score) });
    }
    return out;
  }

  /** The entry with decay applied up to `now`; forgets it when it has decayed to ~0. */
  private decayed(peerId: string, now: number): ScoreEntry | undefined {
    const entry = this.entries.get(peerId);
    if (entry === undefined) return undefined;
    const from = Math.max(entry.lastUpdate, entry.frozenUntil);
    if (now > from) {
      entry.score *= Math.pow(0.5, (now - from) / SCORE_HALFLIFE_MS);
      entry.lastUpdate = now;
      if (entry.frozenUntil <= now) entry.frozenUntil = 0;
    }
    if (
      Math.abs(entry.score) < SCORE_FORGET_THRESHOLD &&
      entry.frozenUntil === 0 &&
      entry.deniedUntil <= now
    ) {
      this.entries.delete(peerId);
      return undefined;
    }
    return entry;
  }

  private evictIfFull(): void {
    if (this.entries.size <= this.maxPeers) return;
    for (const [peerId, entry] of this.entries) {
      if (scoreStateOf(entry.score) !== 'banned') {
        this.entries.delete(peerId);
        if (this.entries.size <= this.maxPeers) return;
      }
    }
    // every tracked peer is banned: forget the oldest ban
    const oldest = this.entries.keys().next().value;
    if (oldest !== undefined) this.entries.delete(oldest);
  }
}
