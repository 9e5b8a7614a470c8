import { Inject, OnApplicationBootstrap } from '@nestjs/common';
import { InjectQueue, OnWorkerEvent, Processor } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { DispatchService, NoCapacityError, type DispatchOutcome } from '../dispatch/dispatch.service.js';
import { LOGGER } from '../logging/logger.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import {
  QueueJobName,
  QueueName,
  jobOptions,
  type DeadLetterJobData,
  type DispatchJobData,
} from '../queue/queue.constants.js';
import { dispatchBackoff } from '../queue/dispatch-backoff.js';
import { DrainingWorkerHost } from '../queue/worker-drain.js';

/** Delegates each dispatch job to DispatchService; moves exhausted jobs to the dead-letter queue. */
@Processor(QueueName.Dispatch, { settings: { backoffStrategy: dispatchBackoff } })
export class DispatchProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  constructor(
    private readonly dispatch: DispatchService,
    @InjectQueue(QueueName.DeadLetter) private readonly deadLetter: Queue<DeadLetterJobData>,
    @Inject(LOGGER) private readonly logger: Logger,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {
    super();
  }

  onApplicationBootstrap(): void {
    this.worker.concurrency = this.config.WORKER_CONCURRENCY;
  }

  async process(job: Job<DispatchJobData>): Promise<DispatchOutcome> {
    return this.dispatch.dispatch(job.data.jobId);
  }

  @OnWorkerEvent('failed')
  async onFailed(job: Job<DispatchJobData> | undefined, error: Error): Promise<void> {
    if (!job) return;
    const attempts = job.opts.attempts ?? 1;
    if (job.attemptsMade < attempts) return;
    const reason =
      error instanceof NoCapacityError ? 'no provider matched before the retries ran out' : error.message;
    try {
      await this.deadLetter.add(
        QueueJobName.DeadLetter,
        { jobId: job.data.jobId, queue: QueueName.Dispatch, reason, attemptsMade: job.attemptsMade },
        {
          ...jobOptions(QueueJobName.DeadLetter, { attempts: 1, backoffMs: 0 }),
          jobId: `dlq:${job.data.jobId}:${job.attemptsMade}`,
        },
      );
      await this.dispatch.recordDeadLetter(job.data.jobId, reason, job.attemptsMade);
      this.logger.warn({ jobId: job.data.jobId, reason }, 'dispatch dead-lettered');
    } catch (err) {
      this.logger.error({ err, jobId: job.data.jobId }, 'could not dead-letter a dispatch job');
    }
  }
}
