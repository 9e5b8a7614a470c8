/**
 * Rate limits of gossip: token buckets per key (an origin peer, a relaying connection), and an
 * offence meter that turns sustained excess into peer penalties while forgiving a short burst.
 * Every map is bounded; the least recently used key is forgotten first.
 */

/** Adverts one origin may have accepted: a burst, then this many per second (an agent sends one per 15 s, 1/s at most on changes). */
export const ADVERT_ORIGIN_RATE_PER_SECOND = 5;
export const ADVERT_ORIGIN_BURST = 10;
/**
 * Epoch announcements one origin may have accepted: a coordinator posts a root per epoch (minutes
 * apart at the least) and re-announces its newest few now and then.
 */
export const EPOCH_ANNOUNCEMENT_ORIGIN_RATE_PER_SECOND = 1;
export const EPOCH_ANNOUNCEMENT_ORIGIN_BURST = 16;
/** Gossip messages (any topic) one connection may deliver: it may relay several origins. */
export const GOSSIP_RELAY_RATE_PER_SECOND = 50;
export const GOSSIP_RELAY_BURST = 100;
/**
 * Offences (a message over a rate, an advert whose origin is not connected here) forgiven per peer:
 * a burst, refilled at this rate; each offence beyond it costs the peer a penalty.
 */
export const GOSSIP_OFFENCE_BURST = 10;
export const GOSSIP_OFFENCES_FORGIVEN_PER_SECOND = 0.5;
/** Keys remembered per limiter. */
export const DEFAULT_RATE_LIMIT_MAX_KEYS = 10_000;

export interface TokenBucketOptions {
  /** Tokens added per second. */
  readonly ratePerSecond: number;
  /** Bucket size (the burst allowed after a quiet spell). */
  readonly burst: number;
  readonly maxKeys?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

/** Token buckets by key: `take(key, now)` is true while the key is within its rate. */
export class KeyedTokenBuckets {
  private readonly buckets = new Map<string, Bucket>();
  private readonly ratePerMs: number;
  private readonly burst: number;
  private readonly maxKeys: number;

  constructor(options: TokenBucketOptions) {
    if (!(options.ratePerSecond > 0) || !(options.burst >= 1)) {
      throw new Error('a token bucket needs a positive rate and a burst of at least 1');
    }
    this.ratePerMs = options.ratePerSecond / 1000;
    this.burst = options.burst;
    this.maxKeys = options.maxKeys ?? DEFAULT_RATE_LIMIT_MAX_KEYS;
  }

  /** Takes one token; false when the key has none left. */
  take(key: string, now: number): boolean {
    const bucket = this.buckets.get(key) ?? { tokens: this.burst, at: now };
    bucket.tokens = Math.min(this.burst, bucket.tokens + Math.max(0, now - bucket.at) * this.ratePerMs);
    bucket.at = now;
    const ok = bucket.tokens >= 1;
    if (ok) bucket.tokens -= 1;
    this.buckets.delete(key); // re-insert: the map's order is least recently used first
    this.buckets.set(key, bucket);
    if (this.buckets.size > this.maxKeys) {
      const oldest = this.buckets.keys().next().value;
      if (oldest !== undefined) this.buckets.delete(oldest);
    }
    return ok;
  }

  get size(): number {
    return this.buckets.size;
  }
}

/**
 * Counts offences per peer: the first GOSSIP_OFFENCE_BURST (refilled slowly) are forgiven, every
 * further one is due a penalty. `offend` returns true when this offence should be penalised.
 */
export class OffenceMeter {
  private readonly forgiven: KeyedTokenBuckets;

  constructor(options: Partial<TokenBucketOptions> = {}) {
    this.forgiven = new KeyedTokenBuckets({
      ratePerSecond: options.ratePerSecond ?? GOSSIP_OFFENCES_FORGIVEN_PER_SECOND,
      burst: options.burst ?? GOSSIP_OFFENCE_BURST,
      ...(options.maxKeys !== undefined ? { maxKeys: options.maxKeys } : {}),
    });
  }

  offend(peerId: string, now: number): boolean {
    return !this.forgiven.take(peerId, now);
  }
}
