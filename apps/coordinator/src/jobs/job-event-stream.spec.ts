import type { MessageEvent } from '@nestjs/common';
import { Subject } from 'rxjs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { JobEvent } from '#prisma';
import type { AppConfig } from '../config/config.js';
import type { JobEventNotice, JobEventsBus } from '../events/job-events.publisher.js';
import { JobEventStream, SSE_HEARTBEAT } from './job-event-stream.js';
import type { JobsRepository } from './jobs.repository.js';

const JOB = '0b7e4a5c-1f0e-4d1a-9c1e-2a3b4c5d6e7f';

function event(id: number, type: string, toState: JobEvent['toState'] = null): JobEvent {
  return { id: BigInt(id), jobId: JOB, type, fromState: null, toState, data: null, createdAt: new Date(0) };
}

/** The stream over an in-memory event table (the repository and the notice bus stand in). */
function harness(events: JobEvent[]): { stream: JobEventStream; append(e: JobEvent): void } {
  const notices = new Subject<JobEventNotice>();
  const jobs = {
    events: async (_jobId: string, afterId = 0n) => events.filter((e) => e.id > afterId),
  } as unknown as JobsRepository;
  const bus = { forJob: () => notices.asObservable() } as unknown as JobEventsBus;
  const config = { SSE_HEARTBEAT_MS: 1_000, SSE_RETRY_MS: 3_000 } as AppConfig;
  return {
    stream: new JobEventStream(jobs, bus, config),
    append: (e) => {
      events.push(e);
      notices.next({ jobId: JOB, type: e.type });
    },
  };
}

/** Collects what a stream sends and whether it completed. */
function collect(stream: JobEventStream, lastEventId: bigint | null) {
  const sent: MessageEvent[] = [];
  let done = false;
  const ready = stream
    .open(JOB, lastEventId)
    .then((o) => o?.subscribe({ next: (m) => sent.push(m), complete: () => (done = true) }));
  return { sent, done: () => done, ready };
}

const ids = (sent: MessageEvent[]): (string | undefined)[] => sent.filter((m) => m.data).map((m) => m.id);

describe('job event stream', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('opens with the retry hint, sends each event with its own id, pings while open, ends after the terminal event', async () => {
    const h = harness([event(3, 'job.submitted', 'QUEUED')]);
    const s = collect(h.stream, null);
    await s.ready;
    await vi.advanceTimersByTimeAsync(0);
    expect(s.sent[0]).toMatchObject({ id: '0', retry: 3_000 });
    expect(ids(s.sent)).toEqual(['3']);
    await vi.advanceTimersByTimeAsync(3_000);
    expect(s.sent.filter((m) => m === SSE_HEARTBEAT)).toHaveLength(3);
    h.append(event(8, 'job.cancelled', 'CANCELLED'));
    await vi.advanceTimersByTimeAsync(0);
    expect(ids(s.sent)).toEqual(['3', '8']);
    expect(s.done()).toBe(true);
    const before = s.sent.length;
    await vi.advanceTimersByTimeAsync(5_000); // no heartbeat after the end
    expect(s.sent).toHaveLength(before);
  });

  it('resumes after Last-Event-ID with only the later events, and ends at once past the terminal one', async () => {
    const h = harness([
      event(3, 'job.submitted', 'QUEUED'),
      event(5, 'job.dispatched', 'DISPATCHED'),
      event(9, 'job.completed', 'COMPLETED'),
      event(12, 'job.corrected'),
    ]);
    const mid = collect(h.stream, 5n);
    await mid.ready;
    await vi.advanceTimersByTimeAsync(0);
    expect(mid.sent[0]).toMatchObject({ id: '5', retry: 3_000 });
    expect(ids(mid.sent)).toEqual(['9', '12']);
    expect(mid.done()).toBe(true);

    // Resumed after the terminal event, with a later one: that one, then the end (not left open).
    const corrected = collect(h.stream, 9n);
    await corrected.ready;
    await vi.advanceTimersByTimeAsync(0);
    expect(ids(corrected.sent)).toEqual(['12']);
    expect(corrected.done()).toBe(true);
    // Resumed after the last event of a finished job: nothing to stream at all (the route answers 204).
    expect(await h.stream.open(JOB, 12n)).toBeNull();
  });

  it('refuses a Last-Event-ID that is not an event of the job', async () => {
    const h = harness([event(3, 'job.submitted', 'QUEUED')]);
    await expect(h.stream.open(JOB, 4n)).rejects.toMatchObject({ code: 'VALIDATION_FAILED' });
  });
});
