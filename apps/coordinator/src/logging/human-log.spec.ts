import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';

import { humanLogLine, humanLogStream } from './human-log.js';
import { createLogger } from './logger.js';

describe('human log lines', () => {
  it('shows time, level, message and the other fields, without the noise', () => {
    const line = JSON.stringify({
      level: 30,
      time: Date.UTC(2026, 11, 6, 15, 4, 5, 67),
      pid: 1,
      hostname: 'h',
      service: 'coordinator',
      msg: 'queue prefix claimed',
      marketplaceId: 'c586b897d08f',
      queuePrefix: 'gm-c586b897d08f',
      nested: { a: 1 },
      text: 'two words',
    });
    expect(humanLogLine(line, false)).toBe(
      '15:04:05.067 INFO  queue prefix claimed marketplaceId=c586b897d08f queuePrefix=gm-c586b897d08f nested={"a":1} text="two words"',
    );
  });

  it('gives an error its message and stack, and leaves what is not JSON alone', () => {
    const err = new Error('boom');
    const line = JSON.stringify({
      level: 50,
      time: 0,
      msg: 'failed',
      err: { type: 'Error', message: err.message, stack: err.stack },
    });
    const out = humanLogLine(line, false);
    expect(out.split('\n')[0]).toBe('00:00:00.000 ERROR failed err=boom');
    expect(out).toContain('human-log.spec.ts');
    expect(humanLogLine('not json {', false)).toBe('not json {');
  });

  it('keeps secrets redacted (the logger scrubs before the formatter sees a line)', async () => {
    const out = new PassThrough();
    let text = '';
    out.on('data', (c: Buffer) => (text += c.toString()));
    const logger = createLogger('info', humanLogStream(out));
    logger.info(
      { apiKey: 'gmk_abcdefghijklmnop', url: 'redis://u:pw@host' },
      'hello gmk_abcdefghijklmnopqrst',
    );
    await new Promise((r) => setImmediate(r));
    expect(text).toContain('INFO  hello');
    expect(text).not.toContain('abcdefghijklmnop');
    expect(text).not.toContain(':pw@');
  });
});
