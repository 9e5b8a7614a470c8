/**
 * Group commit: requests made while a batch commits wait for the next one, so under load many share
 * one database transaction (one commit, one lock of each hot row) or one round trip; alone, a request
 * waits one event-loop turn. A batch that fails is retried one request at a time, in the order asked
 * within a key (different keys concurrently), so a bad request never takes the others down with it;
 * or, with `retryAlone: false`, every request of the batch fails with the batch's error.
 */
export interface GroupCommitOptions<Req, Res> {
  /** Commits a whole batch; returns one result per request, in order. */
  commit: (batch: Req[]) => Promise<Res[]>;
  /**
   * Requests with the same key are retried in order after a failed batch (e.g. a job id). Default:
   * one key for all (retried one after another).
   */
  key?: (req: Req) => string;
  /**
   * Whether a failed batch is retried one request at a time (default true). False: its error fails
   * every request of the batch (a failure that is no one request's fault, like a lost connection).
   */
  retryAlone?: boolean;
  /** Most requests per batch. */
  maxBatch: number;
  /** Batches committing at once (each holds one pooled connection). */
  maxInFlight: number;
  /**
   * Requests that are not urgent may wait this long for company (one transaction for many instead
   * of one each); an urgent request sends the waiting ones along at once. Default 0: none waits.
   */
  lingerMs?: number;
  /** Whether a request may wait `lingerMs` (default: none may). */
  mayLinger?: (req: Req) => boolean;
}

interface Pending<Req, Res> {
  req: Req;
  resolve: (res: Res) => void;
  reject: (err: unknown) => void;
}

export class GroupCommit<Req, Res> {
  private readonly pending: Pending<Req, Res>[] = [];
  private inFlight = 0;
  private flushScheduled = false;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** Resolves the current `drain()` waits once nothing is pending or in flight. */
  private drained: (() => void)[] = [];

  constructor(private readonly options: GroupCommitOptions<Req, Res>) {}

  submit(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      if (this.pending.length >= this.options.maxBatch) this.flush();
      else if (this.mayLinger(req)) this.flushLater();
      else this.flushSoon();
    });
  }

  /** Commits everything pending now and resolves once nothing is pending or in flight (shutdown). */
  drain(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.drained.push(resolve);
      this.flush();
    });
  }

  private mayLinger(req: Req): boolean {
    return (this.options.lingerMs ?? 0) > 0 && (this.options.mayLinger?.(req) ?? false);
  }

  /** A flush after `lingerMs`, unless one comes sooner. */
  private flushLater(): void {
    if (this.lingerTimer || this.flushScheduled) return;
    this.lingerTimer = setTimeout(() => {
      this.lingerTimer = null;
      this.flush();
    }, this.options.lingerMs);
    this.lingerTimer.unref?.();
  }

  private flushSoon(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => {
      this.flushScheduled = false;
      this.flush();
    });
  }

  private flush(): void {
    if (this.lingerTimer) {
      clearTimeout(this.lingerTimer);
      this.lingerTimer = null;
    }
    while (this.pending.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.pending.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        if (this.pending.length > 0) {
          if (this.drained.length > 0 || !this.pending.every((p) => this.mayLinger(p.req))) this.flushSoon();
          else this.flushLater();
        } else if (this.inFlight === 0) {
          for (const resolve of this.drained.splice(0)) resolve();
        }
      });
    }
  }

  private async run(batch: Pending<Req, Res>[]): Promise<void> {
    if (batch.length === 1) {
      const [one] = batch;
      await this.alone(one);
      return;
    }
    let results: Res[];
    try {
      results = await this.options.commit(batch.map((p) => p.req));
    } catch (err) {
      if (this.options.retryAlone === false) {
        for (const p of batch) p.reject(err);
        return;
      }
      const chains = new Map<string, Promise<void>>();
      for (const p of batch) {
        const key = this.options.key?.(p.req) ?? '';
        const previous = chains.get(key) ?? Promise.resolve();
        chains.set(
          key,
          previous.then(() => this.alone(p)),
        );
      }
      await Promise.all(chains.values());
      return;
    }
    batch.forEach((p, i) => p.resolve(results[i]));
  }

  /** One request in its own transaction: the batch path with a batch of one. */
  private alone(p: Pending<Req, Res>): Promise<void> {
    return this.options.commit([p.req]).then(([res]) => p.resolve(res), p.reject);
  }
}
