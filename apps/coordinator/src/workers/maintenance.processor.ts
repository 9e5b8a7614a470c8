import { Inject, OnApplicationBootstrap } from '@nestjs/common';
import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { DispatchService } from '../dispatch/dispatch.service.js';
import { DisprovedClaims } from '../dispatch/disproved-claims.service.js';
import { JobsRepository } from '../jobs/jobs.repository.js';
import { DispatchEnqueuer } from '../queue/dispatch-enqueuer.js';
import { LOGGER } from '../logging/logger.js';
import { MAINTENANCE_EVERY_MS, QueueJobName, QueueName, jobOptions } from '../queue/queue.constants.js';
import { DrainingWorkerHost } from '../queue/worker-drain.js';

const BATCH = 500;
/** In-flight jobs are checked once they have not moved for this long (their dispatch job is live otherwise). */
const IN_FLIGHT_IDLE_MS = 30_000;

/**
 * Periodic upkeep. The schedulers only enqueue (with deterministic ids, so any number of worker
 * processes schedule each run once): expire jobs past their deadline, and re-enqueue queued jobs
 * whose dispatch job was lost (e.g. a crash between the database commit and the enqueue), and in-flight
 * jobs whose dispatch job ended without ending them (failed after stalls when workers were killed);
 * and charge the disproved input-fault claims a worker stopped before charging (DisprovedClaims).
 */
@Processor(QueueName.Maintenance, { concurrency: 1 })
export class MaintenanceProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(QueueName.Maintenance) private readonly queue: Queue,
    private readonly dispatch: DispatchService,
    private readonly jobsRepo: JobsRepository,
    private readonly enqueuer: DispatchEnqueuer,
    private readonly claims: DisprovedClaims,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    for (const name of [
      QueueJobName.ExpireOverdue,
      QueueJobName.RequeueQueued,
      QueueJobName.ChargeDisprovedClaims,
    ] as const) {
      await this.queue.upsertJobScheduler(
        name,
        { every: MAINTENANCE_EVERY_MS[name] },
        { name, data: {}, opts: jobOptions(name, { attempts: 1, backoffMs: 0 }) },
      );
    }
    // Catch up at once after a restart, rather than waiting for the first tick.
    await this.requeueQueued();
    // The claims this (or another) worker stopped before charging. Not worth failing the start
    // over: the scheduled run tries again.
    await this.chargeDisprovedClaims().catch((err: unknown) =>
      this.logger.warn({ err }, 'could not charge the disproved input-fault claims left uncharged'),
    );
  }

  async process(job: Job): Promise<number> {
    switch (job.name as QueueJobName) {
      case QueueJobName.ExpireOverdue:
        return this.expireOverdue();
      case QueueJobName.RequeueQueued:
        return this.requeueQueued();
      case QueueJobName.ChargeDisprovedClaims:
        return this.chargeDisprovedClaims();
      default:
        throw new Error(`unknown maintenance job ${job.name}`);
    }
  }

  async expireOverdue(now = new Date()): Promise<number> {
    let expired = 0;
    for (const id of await this.jobsRepo.overdueJobs(now, BATCH)) {
      if (await this.dispatch.expire(id)) expired += 1;
    }
    if (expired > 0) this.logger.info({ expired }, 'expired overdue jobs');
    return expired;
  }

  /** Charges the disproved claims left uncharged (DisprovedClaims.chargeUncharged); returns how many. */
  chargeDisprovedClaims(now = new Date()): Promise<number> {
    return this.claims.chargeUncharged(now);
  }

  async requeueQueued(): Promise<number> {
    const queued = await this.jobsRepo.queuedJobs(BATCH);
    const revived = await this.enqueuer.ensureQueued(queued.map((j) => j.id));
    if (revived > 0) this.logger.warn({ revived }, 'revived queued jobs whose dispatch job had ended');
    // In flight with no dispatch running them (their dispatch job failed after stalls): placed again.
    const inFlight = await this.jobsRepo.inFlightJobs(new Date(Date.now() - IN_FLIGHT_IDLE_MS), BATCH);
    const stranded = await this.enqueuer.reviveInFlight(inFlight);
    if (stranded.length > 0) {
      this.logger.warn({ stranded: stranded.length }, 'revived in-flight jobs whose dispatch job had ended');
    }
    return queued.length + stranded.length;
  }
}
