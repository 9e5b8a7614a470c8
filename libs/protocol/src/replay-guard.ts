/** Verdict of a replay check. */
export type ReplayVerdict = 'fresh' | 'replay' | 'stale';

export interface ReplayGuardOptions {
  /** Most signers whose highest `seq` is remembered (least recently seen is forgotten first). */
  readonly maxSigners?: number;
  /** Most nonces remembered at once. */
  readonly maxNonces?: number;
  /** How long a nonce is remembered when the message gives no expiry of its own. */
  readonly nonceTtlMs?: number;
}

export const DEFAULT_REPLAY_MAX_SIGNERS = 100_000;
export const DEFAULT_REPLAY_MAX_NONCES = 100_000;
export const DEFAULT_REPLAY_NONCE_TTL_MS = 10 * 60 * 1000;

/**
 * Replay protection for signed messages, bounded in memory.
 *
 * - `checkSeq(signer, seq)`: sequence-numbered messages (adverts). Higher than the highest seen is
 *   `fresh` (and recorded), equal is `replay`, lower is `stale`.
 * - `checkNonce(nonce, expiresAt, now)`: one-shot messages (offers). A nonce seen before is `replay`;
 *   one already expired is `stale`. When the set is full the nonce expiring soonest is dropped and
 *   everything expiring no later than it becomes `stale`, so eviction can never let a replay through.
 *
 * Call it only after the signature is verified, so nobody can burn another signer's sequence.
 */
export class ReplayGuard {
  private readonly maxSigners: number;
  private readonly maxNonces: number;
  private readonly nonceTtlMs: number;
  private readonly highestSeq = new Map<string, number>();
  private readonly nonces = new Map<string, number>();
  /** Messages expiring at or before this instant can no longer be proven fresh. */
  private nonceFloor = Number.NEGATIVE_INFINITY;

  constructor(options: ReplayGuardOptions = {}) {
    this.maxSigners = options.maxSigners ?? DEFAULT_REPLAY_MAX_SIGNERS;
    this.maxNonces = options.maxNonces ?? DEFAULT_REPLAY_MAX_NONCES;
    this.nonceTtlMs = options.nonceTtlMs ?? DEFAULT_REPLAY_NONCE_TTL_MS;
  }

  checkSeq(signer: string, seq: number): ReplayVerdict {
    const key = signer.toLowerCase();
    const highest = this.highestSeq.get(key);
    if (highest !== undefined) {
      if (seq === highest) return 'replay';
      if (seq < highest) return 'stale';
      this.highestSeq.delete(key);
    }
    this.highestSeq.set(key, seq);
    if (this.highestSeq.size > this.maxSigners) {
      const oldest = this.highestSeq.keys().next().value;
      if (oldest !== undefined) this.highestSeq.delete(oldest);
    }
    return 'fresh';
  }

  checkNonce(nonce: string, expiresAt?: number, now: number = Date.now()): ReplayVerdict {
    const expiry = expiresAt ?? now + this.nonceTtlMs;
    if (this.nonces.has(nonce)) return 'replay';
    if (expiry <= now || expiry <= this.nonceFloor) return 'stale';
    if (this.nonces.size >= this.maxNonces) {
      this.prune(now);
      while (this.nonces.size >= this.maxNonces) this.evictSoonest();
    }
    this.nonces.set(nonce, expiry);
    return 'fresh';
  }

  /** Highest sequence number recorded for `signer`, if any. */
  lastSeq(signer: string): number | undefined {
    return this.highestSeq.get(signer.toLowerCase());
  }

  get nonceCount(): number {
    return this.nonces.size;
  }

  private prune(now: number): void {
    for (const [nonce, expiry] of this.nonces) if (expiry <= now) this.nonces.delete(nonce);
  }

  private evictSoonest(): void {
    let soonestNonce: string | undefined;
    let soonest = Number.POSITIVE_INFINITY;
    for (const [nonce, expiry] of this.nonces) {
      if (expiry < soonest) {
        soonest = expiry;
        soonestNonce = nonce;
      }
    }
    if (soonestNonce === undefined) return;
    this.nonces.delete(soonestNonce);
    this.nonceFloor = Math.max(this.nonceFloor, soonest);
  }
}
