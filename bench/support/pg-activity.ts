// Where PostgreSQL's sessions of one database spend their time, sampled from pg_stat_activity: running,
// waiting on a row lock (and on which statement), waiting on I/O (WAL flush), or open in a transaction
// while the application thinks. A profile of the database side of a benchmark phase.
import pg from 'pg';

export interface PgActivity {
  samples: number;
  /** Average sessions in each state over the samples. */
  running: number;
  lockWait: number;
  ioWait: number;
  inTransactionIdle: number;
  idle: number;
  /** Statements (first words) most often seen waiting on a lock, with their share of lock samples. */
  lockedStatements: Record<string, number>;
}

export function sampleActivity(databaseUrl: string, everyMs = 100): { stop(): Promise<PgActivity> } {
  const name = new URL(databaseUrl).pathname.slice(1);
  const client = new pg.Client({ connectionString: databaseUrl });
  const totals = { running: 0, lockWait: 0, ioWait: 0, inTransactionIdle: 0, idle: 0 };
  const locked = new Map<string, number>();
  let samples = 0;
  let stopped = false;
  const loop = (async () => {
    await client.connect();
    while (!stopped) {
      const rows = (
        await client.query<{ state: string | null; wtype: string | null; query: string }>(
          `SELECT state, wait_event_type AS wtype, left(regexp_replace(query, '\\s+', ' ', 'g'), 70) AS query
             FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()`,
          [name],
        )
      ).rows;
      samples += 1;
      for (const r of rows) {
        if (r.wtype === 'Lock') {
          totals.lockWait += 1;
          locked.set(r.query, (locked.get(r.query) ?? 0) + 1);
        } else if (r.wtype === 'IO') totals.ioWait += 1;
        else if (r.state === 'active') totals.running += 1;
        else if (r.state?.startsWith('idle in transaction')) totals.inTransactionIdle += 1;
        else totals.idle += 1;
      }
      await new Promise((resolve) => setTimeout(resolve, everyMs));
    }
    await client.end();
  })();
  return {
    async stop() {
      stopped = true;
      await loop;
      const avg = (n: number): number => Math.round((n / Math.max(1, samples)) * 100) / 100;
      const lockSamples = [...locked.values()].reduce((a, b) => a + b, 0);
      return {
        samples,
        running: avg(totals.running),
        lockWait: avg(totals.lockWait),
        ioWait: avg(totals.ioWait),
        inTransactionIdle: avg(totals.inTransactionIdle),
        idle: avg(totals.idle),
        lockedStatements: Object.fromEntries(
          [...locked.entries()]
            .sort((a, b) => b[1] - a[1])
            .slice(0, 4)
            .map(([q, n]) => [q, Math.round((n / Math.max(1, lockSamples)) * 100) / 100]),
        ),
      };
    },
  };
}
