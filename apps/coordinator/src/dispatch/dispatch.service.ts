import { Inject, Injectable } from '@nestjs/common';
import type { Logger } from 'pino';
import { JobsRepository } from '../jobs/jobs.repository.js';
import { JobsService } from '../jobs/jobs.service.js';
import { AttemptsRepository } from '../jobs/attempts.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { LOGGER } from '../logging/logger.js';
import { PlacementService } from './placement.service.js';

export type DispatchOutcome = 'dispatched' | 'skipped' | 'expired';

/** Thrown to make BullMQ retry with backoff: nothing can take the job right now. */
export class NoCapacityError extends Error {
  constructor(jobId: string) {
    super(`no provider can take job ${jobId} now`);
    this.name = 'NoCapacityError';
  }
}

@Injectable()
export class DispatchService {
  constructor(
    private readonly jobsRepo: JobsRepository,
    private readonly jobs: JobsService,
    private readonly attempts: AttemptsRepository,
    private readonly placement: PlacementService,
    private readonly metrics: MetricsService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {}

  /** One dispatch attempt of one job; idempotent (a job that is no longer queued is skipped). */
  async dispatch(jobId: string, now = new Date()): Promise<DispatchOutcome> {
    const job = await this.jobsRepo.findById(jobId);
    if (!job || job.state !== 'QUEUED') {
      this.metrics.dispatchAttempts.inc({ outcome: 'skipped' });
      return 'skipped';
    }
    if (job.deadlineAt <= now) {
      await this.expire(jobId);
      return 'expired';
    }
    const placements = await this.placement.place(job, now);
    if (placements.length === 0) {
      this.metrics.dispatchAttempts.inc({ outcome: 'no_capacity' });
      throw new NoCapacityError(jobId);
    }
    const moved = await this.jobs.transition({
      jobId,
      from: ['QUEUED'],
      to: 'DISPATCHED',
      eventType: 'job.dispatched',
      eventData: { providers: placements.map((p) => p.peerId) },
    });
    if (!moved) return 'skipped';
    const offered = await this.attempts.createOffers(
      jobId,
      placements.map((p) => p.peerId),
    );
    this.logger.info({ jobId, attempts: offered.map((a) => a.attempt) }, 'job dispatched');
    this.metrics.dispatchAttempts.inc({ outcome: 'dispatched' });
    return 'dispatched';
  }

  /** Ends a job whose deadline passed and returns its reservation. */
  async expire(jobId: string): Promise<boolean> {
    const job = await this.jobs.transition({
      jobId,
      from: ['QUEUED', 'DISPATCHED', 'RUNNING'],
      to: 'EXPIRED',
      eventType: 'job.expired',
      eventData: { reason: 'deadline passed' },
      effect: { kind: 'release' },
      patch: { error: 'the deadline passed before a provider finished the job' },
    });
    return job !== null;
  }

  async recordDeadLetter(jobId: string, reason: string, attemptsMade: number): Promise<void> {
    await this.jobs.note(jobId, 'dispatch.dead_lettered', { reason, attemptsMade });
  }
}
