import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { GroupCommit } from '../common/group-commit.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { QueueJobName, QueueName, jobOptions, type DispatchJobData } from './queue.constants.js';

const MAX_BATCH = 500;

/**
 * Adds dispatch jobs to BullMQ, coalescing the adds of one event-loop turn into one `addBulk`
 * (one Redis round trip for many concurrent submissions). The BullMQ job id is the gpumesh job id,
 * so adding a job twice is harmless.
 */
@Injectable()
export class DispatchEnqueuer {
  /** One batch in flight at a time: the next one gathers while this one commits. */
  private readonly adds = new GroupCommit<string, void>({
    commit: (jobIds) => this.addBulk(jobIds),
    maxBatch: MAX_BATCH,
    maxInFlight: 1,
    retryAlone: false,
  });

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectQueue(QueueName.Dispatch) private readonly queue: Queue<DispatchJobData>,
  ) {}

  enqueue(jobId: string): Promise<void> {
    return this.adds.submit(jobId);
  }

  /**
   * Makes sure each of these (QUEUED) jobs has a live dispatch job. A dispatch job that BullMQ already
   * finished — failed after too many stalls (its worker was killed), or completed before the job was
   * sent back to the queue — would make a plain add a no-op (same id) and strand the job: it is
   * removed and added afresh. Returns how many were revived.
   */
  async ensureQueued(jobIds: readonly string[]): Promise<number> {
    let revived = 0;
    const existing = await Promise.all(jobIds.map((id) => this.queue.getJob(id)));
    await Promise.all(
      jobIds.map(async (id, i) => {
        const job = existing[i];
        if (job?.finishedOn) {
          await job.remove().catch(() => undefined); // taken meanwhile: the add below is then a no-op
          revived += 1;
        }
        if (!job || job.finishedOn) await this.enqueue(id);
      }),
    );
    return revived;
  }

  /**
   * Of these in-flight jobs (dispatched, running or verifying in the database), re-adds a dispatch
   * job for each whose BullMQ dispatch job has ended or is gone: nothing is running it any more. A
   * worker killed twice while running a dispatch makes BullMQ fail it ("stalled more than allowable
   * limit") and the job stayed in flight until its deadline. The new dispatch finds it interrupted,
   * loses its open attempts and places it again. Returns the ids revived.
   */
  async reviveInFlight(jobIds: readonly string[]): Promise<string[]> {
    const existing = await Promise.all(jobIds.map((id) => this.queue.getJob(id)));
    const ended = jobIds.filter((_, i) => existing[i] === undefined || existing[i]?.finishedOn !== undefined);
    await this.ensureQueued(ended);
    return ended;
  }

  private async addBulk(jobIds: string[]): Promise<void[]> {
    const opts = jobOptions(QueueJobName.Dispatch, {
      attempts: this.config.DISPATCH_ATTEMPTS,
      backoffMs: this.config.DISPATCH_BACKOFF_MS,
    });
    await this.queue.addBulk(
      jobIds.map((jobId) => ({ name: QueueJobName.Dispatch, data: { jobId }, opts: { ...opts, jobId } })),
    );
    return jobIds.map(() => undefined);
  }
}
