import type { OnModuleDestroy } from '@nestjs/common';
import { WorkerHost } from '@nestjs/bullmq';
import type { Worker } from 'bullmq';

/** How long a closing worker gives the jobs it is running to finish before it stops waiting. */
export const WORKER_DRAIN_MS = 10_000;

export type DrainOutcome = 'drained' | 'abandoned';

/**
 * Stops `worker` taking jobs and gives the ones it is running `graceMs` to finish, then closes it
 * without waiting any longer. Processors call it from `onModuleDestroy`: Nest destroys a module's
 * providers from the top of their dependency tree down, so a processor drains before the services it
 * uses close (the database pool, the chain provider). Left to @nestjs/bullmq, workers close only at
 * `onApplicationShutdown`, after every `onModuleDestroy`, and wait for their jobs however long: a
 * settlement job waiting for a transaction on the chain provider destroyed meanwhile never settled,
 * so the coordinator never exited. A job still running after the grace period loses nothing: its
 * lock expires, BullMQ's stalled-job check hands it to a worker again, and each step re-checks the
 * state in PostgreSQL before acting.
 */
export async function drainWorker(worker: Worker, graceMs = WORKER_DRAIN_MS): Promise<DrainOutcome> {
  let timer: NodeJS.Timeout | undefined;
  const grace = new Promise<DrainOutcome>((resolve) => {
    timer = setTimeout(() => resolve('abandoned'), graceMs);
  });
  const finished = worker.pause().then(
    (): DrainOutcome => 'drained',
    (): DrainOutcome => 'abandoned',
  );
  const outcome = await Promise.race([finished, grace]);
  clearTimeout(timer);
  await worker.close(outcome === 'abandoned');
  return outcome;
}

/** A BullMQ processor whose worker drains in `onModuleDestroy` (see drainWorker): extend it, not WorkerHost. */
export abstract class DrainingWorkerHost extends WorkerHost implements OnModuleDestroy {
  async onModuleDestroy(): Promise<void> {
    await drainWorker(this.worker);
  }
}
