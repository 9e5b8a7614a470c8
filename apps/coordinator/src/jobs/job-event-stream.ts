import { Injectable, type MessageEvent } from '@nestjs/common';
import { Observable } from 'rxjs';
import type { JobEvent } from '#prisma';
import { JobsRepository } from './jobs.repository.js';
import { isTerminal, type JobState } from './job-state.js';
import { mapJobEvent } from './dto/job.dto.js';
import { JobEventsBus } from '../events/job-events.publisher.js';

/** Safety net for lost pub/sub notices. */
const POLL_EVERY_MS = 2_000;

/**
 * A job's events as server-sent events: the history first, then each new event as it is committed
 * (woken by the Redis notice bus, with a slow poll as a safety net). Completes after a terminal state,
 * once every event recorded by then was sent: a `job.corrected` event recorded after the completion
 * (a later check found the delivered result wrong) is part of the history a new stream replays.
 */
@Injectable()
export class JobEventStream {
  constructor(
    private readonly jobs: JobsRepository,
    private readonly bus: JobEventsBus,
  ) {}

  stream(jobId: string): Observable<MessageEvent> {
    return new Observable<MessageEvent>((subscriber) => {
      let lastId = 0n;
      let closed = false;
      let running = false;
      let again = false;

      const emit = (event: JobEvent): boolean => {
        lastId = event.id;
        subscriber.next({ id: event.id.toString(), type: 'job-event', data: mapJobEvent(event) });
        return event.toState !== null && isTerminal(event.toState as JobState);
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
            let ended = false;
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

      const notices = this.bus.forJob(jobId).subscribe(() => void pump());
      const timer = setInterval(() => void pump(), POLL_EVERY_MS);
      void pump();
      return () => {
        closed = true;
        notices.unsubscribe();
        clearInterval(timer);
      };
    });
  }
}
