// Bytes a coordinator lets its providers' result streams buffer, per provider and in all. A stream
// reserves what it may buffer (the expected result frame of its offers) before the offer is sent and
// frees it when the attempt settles, so no set of peers can make the coordinator hold more than
// `totalBytes` of unread results, and no one peer more than `perPeerBytes`.

/** Why a reservation was not granted. */
export type ResultBudgetErrorCode =
  | 'TOO_LARGE' // more than one peer (or everyone) may ever hold: it can never be granted
  | 'ABORTED' // the caller's signal aborted the wait
  | 'TIMEOUT'; // no room came before the caller's deadline

export class ResultBudgetError extends Error {
  readonly code: ResultBudgetErrorCode;

  constructor(code: ResultBudgetErrorCode, message: string) {
    super(message);
    this.name = 'ResultBudgetError';
    this.code = code;
  }
}

export interface ResultByteBudgetOptions {
  /** Most bytes the result streams of one peer may reserve together. */
  readonly perPeerBytes: number;
  /** Most bytes all result streams may reserve together (at least `perPeerBytes`). */
  readonly totalBytes: number;
}

/** Bytes held for one stream until `release` (idempotent); `shrink` gives part of them back early. */
export interface ResultReservation {
  readonly peer: string;
  readonly bytes: number;
  shrink(toBytes: number): void;
  release(): void;
}

export interface ReserveOptions {
  /** Abort the wait (fails with `ABORTED`). */
  readonly signal?: AbortSignal;
  /** Give up waiting after this many ms (fails with `TIMEOUT`); no limit when absent. */
  readonly timeoutMs?: number;
}

interface Waiter {
  readonly peer: string;
  readonly bytes: number;
  readonly grant: () => void;
}

/**
 * A two-level byte semaphore. `reserve` resolves at once when both the peer's and the global limit
 * have room, else waits: waiters are served in order, except that a waiter held back only by its own
 * peer's limit does not hold back other peers' waiters (a busy provider delays only itself).
 */
export class ResultByteBudget {
  readonly perPeerBytes: number;
  readonly totalBytes: number;
  private used = 0;
  private readonly usedByPeer = new Map<string, number>();
  private readonly waiters: Waiter[] = [];

  constructor(options: ResultByteBudgetOptions) {
    const { perPeerBytes, totalBytes } = options;
    if (!Number.isSafeInteger(perPeerBytes) || perPeerBytes <= 0)
      throw new RangeError(`perPeerBytes: expected a positive integer, got ${perPeerBytes}`);
    if (!Number.isSafeInteger(totalBytes) || totalBytes < perPeerBytes)
      throw new RangeError(
        `totalBytes: expected an integer >= perPeerBytes (${perPeerBytes}), got ${totalBytes}`,
      );
    this.perPeerBytes = perPeerBytes;
    this.totalBytes = totalBytes;
  }

  /** Bytes reserved in all. */
  get usedBytes(): number {
    return this.used;
  }

  /** Bytes reserved by `peer`'s streams. */
  peerBytes(peer: string): number {
    return this.usedByPeer.get(peer) ?? 0;
  }

  /** Reservations waiting for room. */
  get waiting(): number {
    return this.waiters.length;
  }

  /** Reserves `bytes` for `peer` if both limits have room now (and nobody waits before it). */
  tryReserve(peer: string, bytes: number): ResultReservation | undefined {
    this.check(bytes);
    if (!this.mayPass(peer) || !this.fits(peer, bytes)) return undefined;
    return this.take(peer, bytes);
  }

  /** Reserves `bytes` for `peer`, waiting for room; see the class comment for the order. */
  reserve(peer: string, bytes: number, options: ReserveOptions = {}): Promise<ResultReservation> {
    this.check(bytes);
    const now = this.tryReserve(peer, bytes);
    if (now !== undefined) return Promise.resolve(now);
    const { signal, timeoutMs } = options;
    if (signal?.aborted === true) {
      return Promise.reject(new ResultBudgetError('ABORTED', 'aborted before the reservation'));
    }
    return new Promise((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        const at = this.waiters.indexOf(waiter);
        if (at >= 0) this.waiters.splice(at, 1);
      };
      const giveUp = (err: ResultBudgetError): void => {
        done();
        reject(err);
        this.drain(); // a waiter that blocked others is gone
      };
      const onAbort = (): void => giveUp(new ResultBudgetError('ABORTED', 'aborted while waiting for room'));
      const waiter: Waiter = {
        peer,
        bytes,
        grant: () => {
          done();
          resolve(this.take(peer, bytes));
        },
      };
      this.waiters.push(waiter);
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeoutMs !== undefined) {
        timer = setTimeout(
          () =>
            giveUp(
              new ResultBudgetError(
                'TIMEOUT',
                `no room for ${bytes} result bytes within ${timeoutMs} ms (peer ${this.peerBytes(peer)}/${this.perPeerBytes}, total ${this.used}/${this.totalBytes})`,
              ),
            ),
          Math.max(0, timeoutMs),
        );
      }
    });
  }

  private check(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 0)
      throw new RangeError(`bytes: expected a non-negative integer, got ${bytes}`);
    if (bytes > this.perPeerBytes) {
      throw new ResultBudgetError(
        'TOO_LARGE',
        `${bytes} result bytes exceed the per-peer budget of ${this.perPeerBytes}`,
      );
    }
  }

  /** No waiter is ahead of a new request of `peer`: none of its own, none held back globally. */
  private mayPass(peer: string): boolean {
    return this.waiters.every((w) => w.peer !== peer && this.used + w.bytes <= this.totalBytes);
  }

  private fits(peer: string, bytes: number): boolean {
    return this.used + bytes <= this.totalBytes && this.peerBytes(peer) + bytes <= this.perPeerBytes;
  }

  private take(peer: string, bytes: number): ResultReservation {
    this.add(peer, bytes);
    let held = bytes;
    const give = (toBytes: number): void => {
      const keep = Math.max(0, Math.min(held, Math.floor(toBytes)));
      if (keep === held) return;
      this.add(peer, keep - held);
      held = keep;
      this.drain();
    };
    return {
      peer,
      get bytes() {
        return held;
      },
      shrink: give,
      release: () => give(0),
    };
  }

  private add(peer: string, delta: number): void {
    this.used += delta;
    const next = this.peerBytes(peer) + delta;
    if (next === 0) this.usedByPeer.delete(peer);
    else this.usedByPeer.set(peer, next);
  }

  /** Grants waiters in order; stops at the first one the global limit holds back. */
  private drain(): void {
    for (let i = 0; i < this.waiters.length;) {
      const w = this.waiters[i];
      if (this.fits(w.peer, w.bytes)) {
        w.grant(); // removes itself from `waiters`
        continue;
      }
      if (this.used + w.bytes > this.totalBytes) return;
      i++; // only its own peer is full: let the others by
    }
  }
}
