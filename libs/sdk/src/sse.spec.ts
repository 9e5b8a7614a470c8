import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from './sse.js';

const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

describe('SseParser', () => {
  it('dispatches events with their id, skips comments and id-only blocks, and reports retry', () => {
    const retries: number[] = [];
    const p = new SseParser({ onRetry: (ms) => retries.push(ms) });
    const out = p.push(
      bytes('id: 0\nretry: 2000\n: events of job j\n\n: ping\n\nid: 5\nevent: job-event\ndata: {"a":1}\n\n'),
    );
    expect(out).toEqual<SseMessage[]>([{ event: 'job-event', data: '{"a":1}', id: '5' }]);
    expect(retries).toEqual([2000]);
  });

  it('joins data lines and reads events split anywhere, across CRLF and multi-byte characters', () => {
    const text = 'id: 7\r\nevent: job-event\r\ndata: {"m":"é",\r\ndata: "n":2}\r\n\r\ndata: plain\n\n';
    const all = bytes(text);
    for (let cut = 1; cut < all.length; cut++) {
      const p = new SseParser();
      const out = [...p.push(all.subarray(0, cut)), ...p.push(all.subarray(cut))];
      expect(out, `cut at ${cut}`).toEqual([
        { event: 'job-event', data: '{"m":"é",\n"n":2}', id: '7' },
        { event: 'message', data: 'plain', id: '7' },
      ]);
    }
  });

  it('keeps an unfinished event until its blank line arrives', () => {
    const p = new SseParser();
    expect(p.push(bytes('id: 1\ndata: x\n'))).toEqual([]);
    expect(p.push(bytes('\n'))).toEqual([{ event: 'message', data: 'x', id: '1' }]);
  });
});
