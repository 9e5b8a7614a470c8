import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Subject, type Observable } from 'rxjs';
import { filter } from 'rxjs/operators';
import type { Logger } from 'pino';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from '../runtime-endpoints.js';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';

export interface JobEventNotice {
  jobId: string;
  type: string;
  state?: string;
}

/**
 * Fans job-event notices out across processes over one Redis pub/sub channel, so an API replica
 * streaming `/v1/jobs/:id/events` hears about transitions made by any worker.
 */
@Injectable()
export class JobEventsBus implements OnModuleDestroy {
  private readonly channel: string;
  private readonly publisher: Redis;
  private subscriber: Redis | null = null;
  private readonly notices = new Subject<JobEventNotice>();

  constructor(
    @Inject(RUNTIME_ENDPOINTS) private readonly endpoints: RuntimeEndpoints,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.channel = `${config.QUEUE_PREFIX}:job-events`;
    this.publisher = new Redis(endpoints.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true });
  }

  async publish(notice: JobEventNotice): Promise<void> {
    try {
      if (this.publisher.status === 'wait') await this.publisher.connect();
      await this.publisher.publish(this.channel, JSON.stringify(notice));
    } catch (err) {
      // Streams also poll the database, so a lost notice only delays a client; never fail the transition.
      this.logger.warn({ err, jobId: notice.jobId }, 'could not publish a job event notice');
    }
  }

  /** Notices for one job, from any process. */
  forJob(jobId: string): Observable<JobEventNotice> {
    this.ensureSubscribed();
    return this.notices.pipe(filter((n) => n.jobId === jobId));
  }

  private ensureSubscribed(): void {
    if (this.subscriber) return;
    const subscriber = new Redis(this.endpoints.redisUrl, { maxRetriesPerRequest: null });
    this.subscriber = subscriber;
    subscriber.on('message', (_channel: string, message: string) => {
      try {
        const notice = JSON.parse(message) as JobEventNotice;
        if (typeof notice.jobId === 'string') this.notices.next(notice);
      } catch {
        this.logger.warn('ignored a malformed job event notice');
      }
    });
    subscriber.on('error', (err: Error) => this.logger.warn({ err }, 'job event subscriber error'));
    void subscriber
      .subscribe(this.channel)
      .catch((err: unknown) => this.logger.warn({ err }, 'subscribe failed'));
  }

  async onModuleDestroy(): Promise<void> {
    this.notices.complete();
    this.subscriber?.disconnect();
    this.publisher.disconnect();
  }
}
