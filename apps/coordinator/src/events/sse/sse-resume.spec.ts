import { describe, expect, it } from 'vitest';
import { DomainError } from '../../common/domain-error.js';
import { parseLastEventId, resumePoint } from './sse-resume.js';

function refusal(run: () => unknown): string {
  try {
    run();
  } catch (err) {
    expect(err).toBeInstanceOf(DomainError);
    expect((err as DomainError).status).toBe(400);
    return (err as DomainError).message;
  }
  throw new Error('expected a refusal');
}

describe('Last-Event-ID', () => {
  it('reads the header, else the query; none means the whole history', () => {
    expect(parseLastEventId(undefined, undefined)).toBeNull();
    expect(parseLastEventId('', undefined)).toBeNull(); // EventSource sends none before an id
    expect(parseLastEventId('42', undefined)).toBe(42n);
    expect(parseLastEventId(undefined, '7')).toBe(7n);
    expect(parseLastEventId('0', undefined)).toBe(0n);
    // An EventSource reconnects to its first URL with a newer header: the header wins.
    expect(parseLastEventId('99', '7')).toBe(99n);
    expect(parseLastEventId('9223372036854775807', undefined)).toBe(9223372036854775807n);
  });

  it('refuses anything but a non-negative integer id, naming where it came from', () => {
    for (const bad of ['-1', '1.5', 'abc', ' 1', '1e3', '0x10', '12345678901234567890']) {
      expect(
        refusal(() => parseLastEventId(bad, undefined)),
        bad,
      ).toMatch(/^Last-Event-ID: /);
    }
    expect(refusal(() => parseLastEventId(undefined, ['1', '2']))).toMatch(/^lastEventId: /);
    expect(refusal(() => parseLastEventId(undefined, 'nope'))).toMatch(/^lastEventId: /);
    expect(refusal(() => parseLastEventId('9223372036854775808', undefined))).toMatch(/larger than any/);
  });
});

describe('resume point', () => {
  const events = [
    { id: 10n, terminal: false }, // job.submitted
    { id: 14n, terminal: false }, // job.dispatched
    { id: 20n, terminal: true }, // job.completed
    { id: 31n, terminal: false }, // job.corrected, recorded later
  ];

  it('resumes after an event of the stream and knows whether the terminal one was sent', () => {
    expect(resumePoint(events, 0n)).toEqual({ afterId: 0n, ended: false });
    expect(resumePoint(events, 14n)).toEqual({ afterId: 14n, ended: false });
    expect(resumePoint(events, 20n)).toEqual({ afterId: 20n, ended: true });
    expect(resumePoint(events, 31n)).toEqual({ afterId: 31n, ended: true });
    expect(resumePoint([], 0n)).toEqual({ afterId: 0n, ended: false });
  });

  it('refuses an id that is not one of this job (another job, never sent)', () => {
    expect(refusal(() => resumePoint(events, 15n))).toMatch(/15 is not the id of an event of this job/);
    expect(refusal(() => resumePoint(events, 1000n))).toMatch(/1000/);
    expect(refusal(() => resumePoint([], 3n))).toMatch(/3/);
  });

  it('sends exactly the events after the resume point, whatever the point', () => {
    // The stream sends events with id > afterId: every event once over a reconnect at any point.
    for (const last of [0n, ...events.map((e) => e.id)]) {
      const { afterId } = resumePoint(events, last);
      const before = events.filter((e) => e.id <= last).map((e) => e.id);
      const after = events.filter((e) => e.id > afterId).map((e) => e.id);
      expect([...before, ...after]).toEqual(events.map((e) => e.id));
    }
  });
});
