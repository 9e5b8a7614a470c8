import { Controller, Get, Header } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { InjectQueue } from '@nestjs/bullmq';
import type { Queue } from 'bullmq';
import { Public } from '../auth/auth.decorators.js';
import { QueueName } from '../queue/queue.constants.js';
import { MetricsService } from './metrics.service.js';

@ApiExcludeController()
@Controller('metrics')
export class MetricsController {
  constructor(
    private readonly metrics: MetricsService,
    @InjectQueue(QueueName.Dispatch) private readonly dispatch: Queue,
    @InjectQueue(QueueName.DeadLetter) private readonly deadLetter: Queue,
  ) {}

  @Public()
  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    for (const queue of [this.dispatch, this.deadLetter]) {
      try {
        const counts = await queue.getJobCounts('waiting', 'active', 'delayed', 'failed', 'completed');
        for (const [state, n] of Object.entries(counts))
          this.metrics.queueDepth.set({ queue: queue.name, state }, n);
      } catch {
        // Redis down: /health reports it; the other metrics still scrape.
      }
    }
    return this.metrics.registry.metrics();
  }
}
