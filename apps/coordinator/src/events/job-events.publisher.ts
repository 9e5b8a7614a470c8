import { Inject, Injectable, OnModuleDestroy } from '@nestjs/common';
import { Redis } from 'ioredis';
import { Subject, type Observable } from 'rxjs';
import { filter } from 'rxjs/operators';
import type { Logger } from 'pino';
import { GroupCommit } from '../common/group-commit.js';
import { RUNTIME_ENDPOINTS, type RuntimeEndpoints } from '../config/runtime-endpoints.js';
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
  /** The notices of one turn, one message (every turn's message goes out at once, none waits). */
  private readonly outbox = new GroupCommit<JobEventNotice, void>({
    commit: (notices) => this.flush(notices),
    maxBatch: Number.POSITIVE_INFINITY,
    maxInFlight: Number.POSITIVE_INFINITY,
  });

  constructor(
    @Inject(RUNTIME_ENDPOINTS) private readonly endpoints: RuntimeEndpoints,
    @Inject(APP_CONFIG) config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
  ) {
    this.channel = `${config.QUEUE_PREFIX}:job-events`;
    this.publisher = new Redis(endpoints.redisUrl, { maxRetriesPerRequest: 2, lazyConnect: true });
  }

  /**
   * Sends a notice to every process's live streams. The notices of one event-loop turn go out as
   * one message (one Redis round trip however many jobs moved). Never throws: streams also poll the
   * database, so a lost notice only delays a client and must never fail a transition.
   */
  publish(notice: JobEventNotice): Promise<void> {
    return this.outbox.submit(notice);
  }

  /** Publishes one turn's notices; never throws. */
  private async flush(notices: JobEventNotice[]): Promise<void[]> {
    try {
      if (this.publisher.status === 'wait') await this.publisher.connect();
      await this.publisher.publish(this.channel, JSON.stringify(notices));
    } catch (err) {
      this.logger.warn({ err, notices: notices.length }, 'could not publish job event notices');
    }
    return notices.map(() => undefined);
  }

  /** Every job's notices, from any process. */
  all(): Observable<JobEventNotice> {
    this.ensureSubscribed();
    return this.notices.asObservable();
  }

  /** Notices for one job, from any process. */
  forJob(jobId: string): Observable<JobEventNotice> {
    return this.all().pipe(filter((n) => n.jobId === jobId));
  }

  private ensureSubscribed(): void {
    if (this.subscriber) return;
    const subscriber = new Redis(this.endpoints.redisUrl, { maxRetriesPerRequest: null });
    this.subscriber = subscriber;
    subscriber.on('message', (_channel: string, message: string) => {
      try {
        // An array of notices (one turn of a publisher), or a single notice (older publishers).
        const parsed = JSON.parse(message) as unknown;
        for (const notice of Array.isArray(parsed) ? parsed : [parsed]) {
          if (isNotice(notice)) this.notices.next(notice);
        }
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

function isNotice(value: unknown): value is JobEventNotice {
  return typeof value === 'object' && value !== null && typeof (value as JobEventNotice).jobId === 'string';
}
