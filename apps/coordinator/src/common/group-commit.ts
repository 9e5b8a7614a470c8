/**
 * Group commit: requests made while a batch commits wait for the next one, so under load many share
 * one database transaction (one commit, one lock of each hot row); alone, a request waits one
 * event-loop turn. A batch that fails is retried one request at a time, in the order asked within a
 * key (different keys concurrently), so a bad request never takes the others down with it.
 */
export interface GroupCommitOptions<Req, Res> {
  /** Commits a whole batch; returns one result per request, in order. */
  commit: (batch: Req[]) => Promise<Res[]>;
  /** Requests with the same key are retried in order after a failed batch (e.g. a job id). */
  key: (req: Req) => string;
  /** Most requests per batch. */
  maxBatch: number;
  /** Batches committing at once (each holds one pooled connection). */
  maxInFlight: number;
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

  constructor(private readonly options: GroupCommitOptions<Req, Res>) {}

  submit(req: Req): Promise<Res> {
    return new Promise<Res>((resolve, reject) => {
      this.pending.push({ req, resolve, reject });
      if (this.pending.length >= this.options.maxBatch) this.flush();
      else this.flushSoon();
    });
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
    while (this.pending.length > 0 && this.inFlight < this.options.maxInFlight) {
      const batch = this.pending.splice(0, this.options.maxBatch);
      this.inFlight += 1;
      void this.run(batch).finally(() => {
        this.inFlight -= 1;
        if (this.pending.length > 0) this.flushSoon();
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
    } catch {
      const chains = new Map<string, Promise<void>>();
      for (const p of batch) {
        const key = this.options.key(p.req);
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
