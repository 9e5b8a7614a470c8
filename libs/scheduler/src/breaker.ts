// Per-provider circuit breakers: a provider that keeps losing attempts (dial failures, resets,
// accept-then-silence, bad frames) gets no offers for a cooldown, so one liar cannot take every job
// back to itself until its deadline. Closed: offers flow, losses are counted in a sliding window.
// Open: no offers until the cooldown ends. Half-open: one offer (the probe) goes through; a success
// closes the breaker, a loss opens it again for twice the cooldown (up to a cap). Time is passed in.

/** Losses within BREAKER_WINDOW_MS that open a closed breaker. */
export const BREAKER_LOSSES_TO_OPEN = 3;
/** The sliding window in which losses are counted. */
export const BREAKER_WINDOW_MS = 10 * 60_000;
/** The first cooldown of an opened breaker; each re-opening from half-open doubles it ... */
export const BREAKER_BASE_COOLDOWN_MS = 30_000;
/** ... up to this cap. */
export const BREAKER_MAX_COOLDOWN_MS = 30 * 60_000;
/** A half-open probe whose outcome never arrived frees the half-open slot after this long. */
export const BREAKER_PROBE_TIMEOUT_MS = 5 * 60_000;

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface BreakerOptions {
  lossesToOpen: number;
  windowMs: number;
  baseCooldownMs: number;
  maxCooldownMs: number;
  probeTimeoutMs: number;
}

export const DEFAULT_BREAKER_OPTIONS: Readonly<BreakerOptions> = {
  lossesToOpen: BREAKER_LOSSES_TO_OPEN,
  windowMs: BREAKER_WINDOW_MS,
  baseCooldownMs: BREAKER_BASE_COOLDOWN_MS,
  maxCooldownMs: BREAKER_MAX_COOLDOWN_MS,
  probeTimeoutMs: BREAKER_PROBE_TIMEOUT_MS,
};

/** What a breaker looks like from outside (for logs, metrics and tests). */
export interface BreakerSnapshot {
  state: BreakerState;
  /** Losses counted in the window (closed state). */
  losses: number;
  /** The cooldown of the current (or, when closed, the next) opening. */
  cooldownMs: number;
  /** When an open breaker turns half-open (ms since epoch); 0 when closed. */
  openUntil: number;
  /** Times it opened in a row: it forgets them after a whole window closed without a loss. */
  trips: number;
}

interface Entry {
  /** Loss times in the window, oldest first (closed state only). */
  losses: number[];
  open: boolean;
  openUntil: number;
  cooldownMs: number;
  trips: number;
  /** When the half-open probe was offered; undefined when none is out. */
  probeAt: number | undefined;
  /** When it last closed (a successful probe). */
  closedAt: number;
}

/** The outcome of a recorded loss. */
export interface LossResult {
  state: BreakerState;
  /** This loss opened the breaker (from closed or half-open). */
  opened: boolean;
  cooldownMs: number;
}

export class ProviderBreakers {
  readonly options: BreakerOptions;
  private readonly entries = new Map<string, Entry>();

  constructor(options: Partial<BreakerOptions> = {}) {
    this.options = { ...DEFAULT_BREAKER_OPTIONS, ...options };
    const o = this.options;
    if (!(o.lossesToOpen >= 1) || !(o.windowMs > 0) || !(o.baseCooldownMs > 0)) {
      throw new Error('breaker: lossesToOpen ≥ 1, windowMs > 0 and baseCooldownMs > 0 are required');
    }
    if (!(o.maxCooldownMs >= o.baseCooldownMs) || !(o.probeTimeoutMs > 0)) {
      throw new Error('breaker: maxCooldownMs ≥ baseCooldownMs and probeTimeoutMs > 0 are required');
    }
  }

  /** The breaker's state at `now` (an open breaker whose cooldown ended is half-open). */
  state(peerId: string, now: number): BreakerState {
    const e = this.entries.get(peerId);
    if (!e?.open) return 'closed';
    return now < e.openUntil ? 'open' : 'half-open';
  }

  /** Whether an offer to the provider may go out now (closed, or half-open with no probe out). */
  allows(peerId: string, now: number): boolean {
    const e = this.entries.get(peerId);
    if (!e?.open) return true;
    if (now < e.openUntil) return false;
    return e.probeAt === undefined || now - e.probeAt >= this.options.probeTimeoutMs;
  }

  /** Every provider that may not be offered work now. */
  blocked(now: number): string[] {
    const out: string[] = [];
    for (const [peerId, e] of this.entries) {
      if (!e.open) {
        this.forget(e, now);
        if (e.losses.length === 0 && e.trips === 0) this.entries.delete(peerId);
        continue;
      }
      if (!this.allows(peerId, now)) out.push(peerId);
    }
    return out;
  }

  /** An offer went out to the provider: in half-open it is the one probe. */
  offered(peerId: string, now: number): void {
    const e = this.entries.get(peerId);
    if (e?.open && now >= e.openUntil) e.probeAt = now;
  }

  /** The provider lost an attempt (its fault: silence, reset, dial failure, bad frames). */
  recordLoss(peerId: string, now: number): LossResult {
    const e = this.entry(peerId);
    if (e.open) {
      if (now < e.openUntil) {
        // A loss of an offer made before the breaker opened: already counted against it.
        return { state: 'open', opened: false, cooldownMs: e.cooldownMs };
      }
      // The probe (or an offer that raced it) failed: open again for twice as long.
      e.cooldownMs = Math.min(this.options.maxCooldownMs, e.cooldownMs * 2);
      this.open(e, now);
      return { state: 'open', opened: true, cooldownMs: e.cooldownMs };
    }
    this.forget(e, now);
    e.losses.push(now);
    if (e.losses.length >= this.options.lossesToOpen) {
      // Opening again soon after the last closing: twice the cooldown of the last opening.
      if (e.trips > 0) e.cooldownMs = Math.min(this.options.maxCooldownMs, e.cooldownMs * 2);
      this.open(e, now);
      return { state: 'open', opened: true, cooldownMs: e.cooldownMs };
    }
    return { state: 'closed', opened: false, cooldownMs: e.cooldownMs };
  }

  /** The provider completed an attempt: a half-open breaker closes. */
  recordSuccess(peerId: string, now: number): BreakerState {
    const e = this.entries.get(peerId);
    if (!e) return 'closed';
    if (e.open && now >= e.openUntil) {
      e.open = false;
      e.openUntil = 0;
      e.probeAt = undefined;
      e.losses = [];
      e.closedAt = now;
    }
    return this.state(peerId, now);
  }

  /** An offer ended without saying anything about the provider (rejected, cancelled): a probe is freed. */
  recordNeutral(peerId: string): void {
    const e = this.entries.get(peerId);
    if (e) e.probeAt = undefined;
  }

  snapshot(peerId: string, now: number): BreakerSnapshot {
    const e = this.entries.get(peerId);
    if (!e) {
      return { state: 'closed', losses: 0, cooldownMs: this.options.baseCooldownMs, openUntil: 0, trips: 0 };
    }
    if (!e.open) this.forget(e, now);
    return {
      state: this.state(peerId, now),
      losses: e.losses.length,
      cooldownMs: e.cooldownMs,
      openUntil: e.open ? e.openUntil : 0,
      trips: e.trips,
    };
  }

  /** Providers with a breaker that is not closed (open or half-open). */
  openCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.open) n++;
    return n;
  }

  private open(e: Entry, now: number): void {
    e.open = true;
    e.openUntil = now + e.cooldownMs;
    e.probeAt = undefined;
    e.losses = [];
    e.trips += 1;
  }

  /** Drops losses older than the window; a whole window closed without a loss forgets past trips. */
  private forget(e: Entry, now: number): void {
    this.prune(e, now);
    if (e.trips > 0 && e.losses.length === 0 && now - e.closedAt >= this.options.windowMs) {
      e.trips = 0;
      e.cooldownMs = this.options.baseCooldownMs;
    }
  }

  private prune(e: Entry, now: number): void {
    const from = now - this.options.windowMs;
    let drop = 0;
    while (drop < e.losses.length && e.losses[drop] <= from) drop++;
    if (drop > 0) e.losses.splice(0, drop);
  }

  private entry(peerId: string): Entry {
    let e = this.entries.get(peerId);
    if (!e) {
      e = {
        losses: [],
        open: false,
        openUntil: 0,
        cooldownMs: this.options.baseCooldownMs,
        trips: 0,
        probeAt: undefined,
        closedAt: 0,
      };
      this.entries.set(peerId, e);
    }
    return e;
  }
}
