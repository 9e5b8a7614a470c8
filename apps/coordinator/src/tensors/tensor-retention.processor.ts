import { OnApplicationBootstrap } from '@nestjs/common';
import { InjectQueue, Processor } from '@nestjs/bullmq';
import type { Job, Queue } from 'bullmq';
import { QueueJobName, QueueName, jobOptions } from '../queue/queue.constants.js';
import { DrainingWorkerHost } from '../queue/worker-drain.js';
import { TENSOR_SWEEP_EVERY_MS, TensorRetentionService } from './tensor-retention.service.js';

/**
 * The retention queue: a repeatable `sweep-tensors` (every TENSOR_SWEEP_EVERY_MS; the scheduler only
 * enqueues, so however many worker processes run, each sweep runs once). A queue of its own: a long
 * sweep never holds up the maintenance queue's job expiry.
 */
@Processor(QueueName.Retention, { concurrency: 1 })
export class TensorRetentionProcessor extends DrainingWorkerHost implements OnApplicationBootstrap {
  constructor(
    @InjectQueue(QueueName.Retention) private readonly queue: Queue,
    private readonly retention: TensorRetentionService,
  ) {
    super();
  }

  async onApplicationBootstrap(): Promise<void> {
    const name = QueueJobName.SweepTensors;
    await this.queue.upsertJobScheduler(
      name,
      { every: TENSOR_SWEEP_EVERY_MS },
      { name, data: {}, opts: jobOptions(name, { attempts: 1, backoffMs: 0 }) },
    );
  }

  async process(job: Job): Promise<string> {
    if (job.name !== (QueueJobName.SweepTensors as string))
      throw new Error(`unknown retention job ${job.name}`);
    const report = await this.retention.sweep();
    return `${report.uploads + report.outputs} rows, ${report.files} files`;
  }
}
