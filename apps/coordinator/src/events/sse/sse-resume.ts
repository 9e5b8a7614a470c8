// Where a server-sent event stream resumes: the `Last-Event-ID` a client sends when it reconnects
// (or `?lastEventId=` from clients without EventSource), checked against the stream's event ids.
import { DomainError } from '../../common/domain-error.js';

/** Most digits of an event id (a PostgreSQL bigint). */
const MAX_EVENT_ID = (1n << 63n) - 1n;

/**
 * The event id a stream resumes after, or null to send the whole history. The header wins over
 * the query (an EventSource reconnects to the same URL with a newer header). Throws
 * VALIDATION_FAILED (400) for anything but a non-negative integer event id.
 */
export function parseLastEventId(header: unknown, query: unknown): bigint | null {
  const [name, raw] =
    header !== undefined && header !== '' ? ['Last-Event-ID', header] : ['lastEventId', query];
  if (raw === undefined || raw === '') return null;
  if (typeof raw !== 'string' || !/^\d{1,19}$/.test(raw)) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `${name}: expected the id of an event of this stream (a non-negative integer), got ${JSON.stringify(raw).slice(0, 60)}`,
    );
  }
  const id = BigInt(raw);
  if (id > MAX_EVENT_ID) {
    throw new DomainError('VALIDATION_FAILED', `${name}: ${raw} is larger than any event id`);
  }
  return id;
}

/** What a resumed stream needs to know of the events it does not send again. */
export interface ResumePoint {
  /** The id the stream continues after. */
  afterId: bigint;
  /** The stream already carried its terminal event: end once the later events are sent. */
  ended: boolean;
}

/**
 * Checks that `lastId` is 0 (from the start) or an event of this stream, and whether the events up
 * to it include the terminal one. Throws VALIDATION_FAILED (400) naming the id otherwise: an id of
 * another job, or one never sent, would silently skip or repeat events.
 */
export function resumePoint(
  events: readonly { id: bigint; terminal: boolean }[],
  lastId: bigint,
): ResumePoint {
  if (lastId !== 0n && !events.some((e) => e.id === lastId)) {
    throw new DomainError(
      'VALIDATION_FAILED',
      `Last-Event-ID: ${lastId} is not the id of an event of this job (resume with the last id you received, or 0 for the whole history)`,
    );
  }
  return { afterId: lastId, ended: events.some((e) => e.id <= lastId && e.terminal) };
}
