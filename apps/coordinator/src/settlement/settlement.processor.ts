import { Inject, OnApplicationBootstrap } from '@nestjs/common';
import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import type { Logger } from 'pino';
import { LOGGER } from '../logging/logger.js';
import { QueueJobName, QueueName, jobOptions, type EpochJobData } from '../queue/queue.constants.js';
import { SettlementService, describeSettlementError } from './settlement.service.js';
import { SlashExecutorService } from './slash-executor.service.js';
import { DrainingWorkerHost } from '../queue/worker-drain.js';

/** The job that executes due slash proposals (one at a time across workers: a fixed job id). */
export const EXECUTE_SLASHES_JOB = 'execute-slashes';

/**
 * The settlement queue. A repeatable `settlement-tick` (every SETTLEMENT_TICK_MS) only looks and
 * enqueues: `close-epoch` when the open epoch is due, `post-epoch` for the oldest closed one,
 * `finalize-epochs` for posted ones (checks their roots are still on chain, funds them from the
 * escrow past their challenge window, finalizes the funded ones), `execute-slashes` when slash proposals are due; each with a deterministic job id (per epoch), so however many
 * workers tick, one job per epoch and step exists at a time, and each step re-checks the epoch's
 * state in PostgreSQL before acting.
 */
@Processor(QueueName.Settlement, { concurrency: 1 })
export class SettlementProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(QueueName.Settlement) private readonly queue: Queue,
    private readonly settlement: SettlementService,
    private readonly slashes: SlashExecutorService,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    try {
      await this.settlement.prepare();
    } catch (err) {
      this.logger.error(
        { err: describeSettlementError(err) },
        'settlement: preparing failed (retried each tick)',
      );
    }
    const every = this.settlement.settings.tickMs;
    if (every <= 0) {
      await this.queue.removeJobScheduler(QueueJobName.SettlementTick);
      return;
    }
    const name = QueueJobName.SettlementTick;
    await this.queue.upsertJobScheduler(
      name,
      { every },
      { name, data: {}, opts: jobOptions(name, { attempts: 1, backoffMs: 0 }) },
    );
  }

  async process(job: Job): Promise<unknown> {
    try {
      if (job.name === EXECUTE_SLASHES_JOB) return await this.slashes.executeDue();
      switch (job.name as QueueJobName) {
        case QueueJobName.SettlementTick:
          return await this.tick();
        case QueueJobName.CloseEpoch:
          return (await this.settlement.close((job.data as EpochJobData).epoch)).closed;
        case QueueJobName.PostEpoch:
          return await this.settlement.post((job.data as EpochJobData).epoch);
        case QueueJobName.FinalizeEpochs:
          return await this.settlement.advance();
        default:
          throw new Error(`unknown settlement job ${job.name}`);
      }
    } catch (err) {
      this.logger.warn(
        { job: job.name, data: job.data as unknown, err: describeSettlementError(err) },
        'settlement step failed',
      );
      throw err;
    }
  }

  /** Enqueues whatever is due; returns the job names it added. */
  async tick(): Promise<string[]> {
    const added: string[] = [];
    const add = async (name: QueueJobName, jobId: string, data: object): Promise<void> => {
      await this.queue.add(name, data, { ...jobOptions(name, { attempts: 1, backoffMs: 0 }), jobId });
      added.push(jobId);
    };
    const due = await this.settlement.dueEpoch();
    if (due !== null) await add(QueueJobName.CloseEpoch, `close-epoch-${due}`, { epoch: due });
    const next = await this.settlement.nextToPost();
    if (next !== null) await add(QueueJobName.PostEpoch, `post-epoch-${next}`, { epoch: next });
    await add(QueueJobName.FinalizeEpochs, 'finalize-epochs', {});
    if (await this.slashes.anyDue()) {
      await this.queue.add(
        EXECUTE_SLASHES_JOB,
        {},
        { jobId: EXECUTE_SLASHES_JOB, removeOnComplete: true, removeOnFail: true },
      );
      added.push(EXECUTE_SLASHES_JOB);
    }
    return added;
  }
}
