import { Inject, OnApplicationBootstrap } from '@nestjs/common';
import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { LOGGER } from '../logging/logger.js';
import { QueueJobName, QueueName, jobOptions } from '../queue/queue.constants.js';
import { DrainingWorkerHost } from '../queue/worker-drain.js';
import { ROLLUP_EVERY_MS, StatsHistoryService } from './stats-history.service.js';

/**
 * The history queue: a repeatable `stats-rollup` (once a minute; the scheduler only enqueues, so
 * any number of worker processes write each minute once) that writes the finished minute's row, and
 * at startup a `stats-backfill` (one job id, however many workers start) that rebuilds the minutes
 * missing from the retention window from the stored jobs.
 */
@Processor(QueueName.Stats, { concurrency: 1 })
export class StatsHistoryProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(QueueName.Stats) private readonly queue: Queue,
    private readonly history: StatsHistoryService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    const name = QueueJobName.StatsRollup;
    await this.queue.upsertJobScheduler(
      name,
      { every: ROLLUP_EVERY_MS },
      { name, data: {}, opts: jobOptions(name, { attempts: 1, backoffMs: 0 }) },
    );
    const backfill = QueueJobName.StatsBackfill;
    await this.queue.add(
      backfill,
      {},
      { ...jobOptions(backfill, { attempts: 1, backoffMs: 0 }), jobId: backfill },
    );
  }

  async process(job: Job): Promise<string> {
    if (job.name === (QueueJobName.StatsBackfill as string)) {
      const rows = await this.history.backfill();
      if (rows > 0) this.logger.info({ rows }, 'rebuilt missing history minutes from the stored jobs');
      return `${rows} rows`;
    }
    if (job.name !== (QueueJobName.StatsRollup as string)) throw new Error(`unknown stats job ${job.name}`);
    const { minute, pruned } = await this.history.rollUp();
    if (pruned > 0) this.logger.debug({ minute, pruned }, 'pruned expired history rows');
    return minute.toISOString();
  }
}
