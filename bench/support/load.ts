// A steady stream of tiny matmul submissions against a Cluster's API, each with its own
// Idempotency-Key and retried with it through API outages (so a job is submitted exactly once).
import pg from 'pg';
import { encodeTensor } from '@gpumesh/protocol';
import type { Cluster } from './cluster.js';

export interface LoadResult {
  /** Ids of the jobs the API accepted (each once). */
  accepted: string[];
  counts: { submitted: number; retries: number; rejected: number };
}

export interface Load {
  /** Stops submitting new jobs; resolves once those in flight are accepted. */
  stop(): Promise<LoadResult>;
  /** Resolves once all `total` jobs are submitted. */
  finished(): Promise<LoadResult>;
}

function tinyJob(i: number, deadlineSeconds = 600): string {
  return JSON.stringify({
    version: 1,
    kind: 'matmul',
    inputs: [
      encodeTensor('a', 'float32', [2, 2], Float32Array.from([1, 2, 3, (i % 11) + 1])),
      encodeTensor('b', 'float32', [2, 2], Float32Array.from([5, 6, 7, 8])),
    ],
    maxPricePerUnit: '1',
    deadlineSeconds,
  });
}

const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Submits until stop() (or `total` jobs), `concurrency` at a time, at most `ratePerSecond`. */
export function submitUntil(
  cluster: Cluster,
  options: {
    concurrency: number;
    total?: number;
    ratePerSecond?: number;
    runId?: string;
    /**
     * The API URLs to spread submissions over (round robin, like a load balancer); default
     * `[cluster.apiUrl]`, read at each submission so a restarted API is followed.
     */
    apiUrls?: () => readonly string[];
    /** Each job's deadline (default 600 s); a long backlog needs more, or its tail expires. */
    deadlineSeconds?: number;
  },
): Load {
  const accepted = new Set<string>();
  const counts = { submitted: 0, retries: 0, rejected: 0 };
  const runId = options.runId ?? Math.random().toString(36).slice(2, 10);
  let stopping = false;
  let next = 0;
  const submitOne = async (i: number): Promise<void> => {
    for (let attempt = 0; attempt < 600; attempt++) {
      try {
        const urls = options.apiUrls?.() ?? [cluster.apiUrl];
        const res = await fetch(`${urls[(i + attempt) % urls.length]}/v1/jobs`, {
          method: 'POST',
          headers: {
            authorization: `Bearer ${cluster.devKey}`,
            'content-type': 'application/json',
            'idempotency-key': `${runId}-${i}`,
          },
          body: tinyJob(i, options.deadlineSeconds),
          signal: AbortSignal.timeout(10_000),
        });
        const body = (await res.json()) as { id?: string };
        if ((res.status === 201 || res.status === 200) && body.id) {
          accepted.add(body.id);
          return;
        }
        if (res.status < 500 && res.status !== 429) {
          counts.rejected += 1;
          return;
        }
      } catch {
        // API down or the connection dropped: retry with the same key.
      }
      counts.retries += 1;
      await pause(200);
    }
    counts.rejected += 1;
  };
  const started = Date.now();
  const workers = Array.from({ length: options.concurrency }, async () => {
    while (!stopping && (options.total === undefined || next < options.total)) {
      const i = next++;
      if (options.ratePerSecond !== undefined) {
        const due = started + (i * 1000) / options.ratePerSecond;
        if (due > Date.now()) await pause(due - Date.now());
        if (stopping) return;
      }
      counts.submitted += 1;
      await submitOne(i);
    }
  });
  const result = async (): Promise<LoadResult> => {
    await Promise.all(workers);
    return { accepted: [...accepted], counts };
  };
  return {
    stop: async () => {
      stopping = true;
      return result();
    },
    finished: result,
  };
}

/** Waits until no job of the database is open (queued, dispatched, running or verifying). */
export async function waitAllFinished(
  cluster: Cluster,
  databaseUrl: string,
  timeoutMs: number,
): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const until = Date.now() + timeoutMs;
    for (;;) {
      const r = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM "Job" WHERE state IN ('QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING')`,
      );
      if (r.rows[0].n === 0) return;
      if (Date.now() > until) {
        const stuck = await client.query<{ id: string; state: string; events: string }>(
          `SELECT j.id::text, j.state::text, (SELECT string_agg(e.type || CASE WHEN e.type = 'attempt.failed'
             THEN ' (' || coalesce(e.data->>'error', e.data::text) || ')' ELSE '' END, ' > ' ORDER BY e.id) FROM "JobEvent" e
             WHERE e."jobId" = j.id) AS events FROM "Job" j
            WHERE j.state IN ('QUEUED', 'DISPATCHED', 'RUNNING', 'VERIFYING') LIMIT 5`,
        );
        throw new Error(
          `${r.rows[0].n} jobs still open after ${timeoutMs} ms, e.g.\n${stuck.rows
            .map((j) => `${j.id} ${j.state}: ${j.events}`)
            .join('\n')}\nworker:\n${cluster.worker.output.slice(-3000)}`,
        );
      }
      await pause(250);
    }
  } finally {
    await client.end();
  }
}
