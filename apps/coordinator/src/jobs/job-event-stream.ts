import { Inject, Injectable, type MessageEvent } from '@nestjs/common';
import { Observable } from 'rxjs';
import type { JobEvent } from '#prisma';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { JobsRepository } from './jobs.repository.js';
import { isTerminal } from './job-state.js';
import { mapJobEvent } from './dto/job.dto.js';
import { JobEventsBus } from '../events/job-events.publisher.js';
import { resumePoint, type ResumePoint } from '../events/sse/sse-resume.js';

/** Safety net for lost pub/sub notices. */
const POLL_EVERY_MS = 2_000;

/** The comment an open stream sends every SSE_HEARTBEAT_MS (clients ignore it; proxies see traffic). */
export const SSE_HEARTBEAT: MessageEvent = { comment: 'ping' };

function endsStream(event: Pick<JobEvent, 'toState'>): boolean {
  return event.toState !== null && isTerminal(event.toState);
}

/**
 * A job's events as server-sent events: the history first (or only what follows the resume point),
 * then each new event as it is committed (woken by the Redis notice bus, with a slow poll as a
 * safety net). Every event carries its JobEvent id as `id:`, the stable, increasing id a client
 * resumes after (`Last-Event-ID`). The stream opens with a `retry:` hint, sends a `: ping` comment
 * every SSE_HEARTBEAT_MS, and completes after a terminal state, once every event recorded by then
 * was sent: a `job.corrected` event recorded after the completion (a later check found the delivered
 * result wrong) is part of the history a new stream replays.
 */
@Injectable()
export class JobEventStream {
  constructor(
    private readonly jobs: JobsRepository,
    private readonly bus: JobEventsBus,
    @Inject(APP_CONFIG) private readonly config: AppConfig,
  ) {}

  /**
   * The stream after `lastEventId` (null: the whole history), or null when the client already has
   * every event up to the terminal one and none followed (answered 204 No Content: an EventSource,
   * which reconnects whenever a stream ends, then stops). Rejects with VALIDATION_FAILED (400),
   * before anything is sent, when `lastEventId` is not an event of this job.
   */
  async open(jobId: string, lastEventId: bigint | null): Promise<Observable<MessageEvent> | null> {
    if (lastEventId === null) return this.stream(jobId);
    const events = await this.jobs.events(jobId);
    const from = resumePoint(
      events.map((e) => ({ id: e.id, terminal: endsStream(e) })),
      lastEventId,
    );
    if (from.ended && events.every((e) => e.id <= from.afterId)) return null;
    return this.stream(jobId, from);
  }

  stream(jobId: string, from: ResumePoint = { afterId: 0n, ended: false }): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      let lastId = from.afterId;
      let closed = false;
      let running = false;
      let again = false;

      const emit = (event: JobEvent): boolean => {
        lastId = event.id;
        subscriber.next({ id: event.id.toString(), type: 'job-event', data: mapJobEvent(event) });
        return endsStream(event);
      };

      const pump = async (): Promise<void> => {
        if (running) {
          again = true;
          return;
        }
        running = true;
        try {
          do {
            again = false;
            const events = await this.jobs.events(jobId, lastId);
            // A resumed stream whose terminal event was sent before ends after what followed it.
            let ended = from.ended;
            for (const event of events) {
              if (closed) return;
              if (emit(event)) ended = true;
            }
            if (ended) {
              closed = true;
              subscriber.complete();
              return;
            }
          } while (again && !closed);
        } catch (err) {
          if (!closed) subscriber.error(err);
        } finally {
          running = false;
        }
      };

      // The reconnection hint, with the resume point as id: a client reconnecting before any event
      // arrives resumes where it asked to (no `id:` at all would let the server number it).
      subscriber.next({
        id: from.afterId.toString(),
        retry: this.config.SSE_RETRY_MS,
        comment: `events of job ${jobId}`,
      });
      const notices = this.bus.forJob(jobId).subscribe(() => void pump());
      const timer = setInterval(() => void pump(), POLL_EVERY_MS);
      const heartbeat = setInterval(() => {
        if (!closed) subscriber.next(SSE_HEARTBEAT);
      }, this.config.SSE_HEARTBEAT_MS);
      void pump();
      return () => {
        closed = true;
        notices.unsubscribe();
        clearInterval(timer);
        clearInterval(heartbeat);
      };
    });
  }
}
