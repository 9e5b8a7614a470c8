// Slow start: how many jobs a provider may hold at once is earned, not advertised. Like TCP's
// congestion window (additive increase, multiplicative decrease), each provider starts with a small
// window; every result it returns widens it by one, every attempt it loses halves it. A fresh
// identity that accepts offers and then stalls holds at most SLOW_START_INITIAL_WINDOW honest jobs
// while its silence is being noticed, whatever slot count it advertises; an honest provider reaches
// its advertised slots after a few results.

/** Jobs a provider this process has not seen return a result may hold at once. */
export const SLOW_START_INITIAL_WINDOW = 2;
/** A window this wide no longer limits anyone (adverts are bounded well below it). */
export const SLOW_START_MAX_WINDOW = 1_024;

export interface SlowStartOptions {
  initialWindow: number;
  maxWindow: number;
}

export const DEFAULT_SLOW_START_OPTIONS: Readonly<SlowStartOptions> = {
  initialWindow: SLOW_START_INITIAL_WINDOW,
  maxWindow: SLOW_START_MAX_WINDOW,
};

export class ConcurrencyWindows {
  readonly options: SlowStartOptions;
  private readonly windows = new Map<string, number>();

  constructor(options: Partial<SlowStartOptions> = {}) {
    this.options = { ...DEFAULT_SLOW_START_OPTIONS, ...options };
    const { initialWindow, maxWindow } = this.options;
    if (!(Number.isInteger(initialWindow) && initialWindow >= 1 && maxWindow >= initialWindow)) {
      throw new Error('slow start: an integer initialWindow ≥ 1 and maxWindow ≥ initialWindow are required');
    }
  }

  /** Jobs the provider may hold at once now. */
  window(peerId: string): number {
    return this.windows.get(peerId) ?? this.options.initialWindow;
  }

  /** The provider returned a result: its window widens by one. Returns the new window. */
  recordSuccess(peerId: string): number {
    const next = Math.min(this.options.maxWindow, this.window(peerId) + 1);
    this.windows.set(peerId, next);
    return next;
  }

  /** The provider lost an attempt through its own fault: its window halves (at least 1). */
  recordLoss(peerId: string): number {
    const next = Math.max(1, Math.floor(this.window(peerId) / 2));
    this.windows.set(peerId, next);
    return next;
  }

  /** Slots placement may use of a provider that advertises `advertised`. */
  usableSlots(peerId: string, advertised: number): number {
    return Math.min(advertised, this.window(peerId));
  }

  /** Forgets a provider (a returning one starts again from the initial window). */
  forget(peerId: string): void {
    this.windows.delete(peerId);
  }

  /**
   * A provider left: its window is kept only when its results earned more than the initial one, so
   * identities that come and go without results leave nothing behind.
   */
  release(peerId: string): void {
    if (this.window(peerId) <= this.options.initialWindow) this.windows.delete(peerId);
  }

  get size(): number {
    return this.windows.size;
  }
}
