import { Inject, Injectable } from '@nestjs/common';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { QueueJobName, QueueName, jobOptions, type DispatchJobData } from './queue.constants.js';

const MAX_BATCH = 500;

interface Pending {
  jobId: string;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/**
 * Adds dispatch jobs to BullMQ, coalescing the adds of one event-loop turn into one `addBulk`
 * (one Redis round trip for many concurrent submissions). The BullMQ job id is the gpumesh job id,
 * so adding a job twice is harmless.
 */
@Injectable()
export class DispatchEnqueuer {
  private pending: Pending[] = [];
  private scheduled = false;
  /** One batch in flight at a time: the next one gathers while this one commits. */
  private running = false;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @InjectQueue(QueueName.Dispatch) private readonly queue: Queue<DispatchJobData>,
  ) {}

  enqueue(jobId: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ jobId, resolve, reject });
      if (!this.scheduled && !this.running) {
        this.scheduled = true;
        setImmediate(() => void this.flush());
      }
    });
  }

  private async flush(): Promise<void> {
    this.scheduled = false;
    this.running = true;
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, MAX_BATCH);
      const opts = jobOptions(QueueJobName.Dispatch, {
        attempts: this.config.DISPATCH_ATTEMPTS,
        backoffMs: this.config.DISPATCH_BACKOFF_MS,
      });
      try {
        await this.queue.addBulk(
          batch.map((p) => ({
            name: QueueJobName.Dispatch,
            data: { jobId: p.jobId },
            opts: { ...opts, jobId: p.jobId },
          })),
        );
        for (const p of batch) p.resolve();
      } catch (err) {
        for (const p of batch) p.reject(err);
      }
    }
    this.running = false;
  }
}
