import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { resolveWebhookUrl, isPublicAddress, WebhookUrlError } from './webhook-url.js';
import { signWebhook, verifyWebhookSignature } from './webhook-signature.js';
import { DEFAULT_WEBHOOK_RETRY_SCHEDULE, retryDelayMs, retrySchedule } from './webhook-retry.js';
import {
  WEBHOOK_EVENT_TYPES,
  lifecycleDeliveryRows,
  lifecycleWebhookEvent,
  parseWebhookEvents,
  webhookWants,
} from './webhook-events.js';
import { decodeDeliveryCursor, encodeDeliveryCursor } from './delivery-cursor.js';

describe('webhook URLs (SSRF guard)', () => {
  it('classifies private, loopback, link-local, reserved and mapped addresses as not public', () => {
    for (const a of [
      '127.0.0.1',
      '10.1.2.3',
      '172.16.0.1',
      '192.168.1.1',
      '169.254.169.254',
      '100.64.0.1',
      '0.0.0.0',
      '224.0.0.1',
      '::1',
      '::',
      'fe80::1',
      'fd00::1',
      '::ffff:127.0.0.1',
      '::ffff:10.0.0.1',
      '64:ff9b::a00:1',
      '2002:a00:1::1',
      'not-an-ip',
    ]) {
      expect(isPublicAddress(a), a).toBe(false);
    }
    for (const a of ['93.184.216.34', '8.8.8.8', '2606:4700::6810:85e5'])
      expect(isPublicAddress(a), a).toBe(true);
  });

  const policy = {
    allowPrivate: false,
    resolve: async (host: string) => (host === 'evil.example' ? ['10.0.0.5'] : ['93.184.216.34']),
  };

  it('accepts https on public addresses and pins the address it checked', async () => {
    const r = await resolveWebhookUrl('https://hooks.example/x?y=1', policy);
    expect(r.address).toBe('93.184.216.34');
    expect(r.url.pathname).toBe('/x');
  });

  it('refuses http, credentials, localhost, private literals and names resolving to private addresses', async () => {
    for (const url of [
      'http://hooks.example/x',
      'ftp://hooks.example/x',
      'https://user:pw@hooks.example/x',
      'https://localhost/x',
      'https://127.0.0.1/x',
      'https://[::1]/x',
      'https://169.254.169.254/latest/meta-data',
      'https://evil.example/x',
      'not a url',
      `https://hooks.example/${'a'.repeat(3000)}`,
    ]) {
      await expect(resolveWebhookUrl(url, policy), url).rejects.toBeInstanceOf(WebhookUrlError);
    }
  });

  it('allows http and private addresses only when told to (development, tests)', async () => {
    const r = await resolveWebhookUrl('http://127.0.0.1:8080/hook', { allowPrivate: true });
    expect(r.address).toBe('127.0.0.1');
  });
});

describe('webhook signatures and retries', () => {
  it('signs "<timestamp>.<body>" with HMAC-SHA256 and verifies it within the tolerance', () => {
    const body = '{"type":"job.corrected"}';
    const sig = signWebhook('whsec_k', 1_700_000_000, body);
    expect(sig).toMatch(/^sha256=[0-9a-f]{64}$/);
    const ok = { secret: 'whsec_k', body, timestamp: '1700000000', signature: sig, now: 1_700_000_100 };
    expect(verifyWebhookSignature(ok)).toBe(true);
    expect(verifyWebhookSignature({ ...ok, body: body.replace('job', 'jab') })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, secret: 'whsec_other' })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, timestamp: '1700000001' })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, now: 1_700_000_000 + 301 })).toBe(false);
    expect(verifyWebhookSignature({ ...ok, signature: undefined })).toBe(false);
  });

  it('backs off exponentially, capped, and gives up after the last attempt', () => {
    const { maxAttempts, maxMs } = DEFAULT_WEBHOOK_RETRY_SCHEDULE;
    const nominal = () => 0.5;
    expect(retryDelayMs(1, undefined, nominal)).toBe(2_000);
    expect(retryDelayMs(2, undefined, nominal)).toBe(8_000);
    expect(retryDelayMs(maxAttempts - 1)).toBeLessThanOrEqual(maxMs);
    expect(retryDelayMs(maxAttempts)).toBeNull();
    // The whole default schedule: 7 waits between 8 attempts, ×4 each, the last capped at 1 h.
    expect(retrySchedule()).toEqual([2_000, 8_000, 32_000, 128_000, 512_000, 2_048_000, 3_600_000]);
  });

  it('follows a configured schedule (short waits in tests, fewer attempts)', () => {
    const schedule = { baseMs: 100, maxMs: 1_000, maxAttempts: 4 };
    expect(retrySchedule(schedule)).toEqual([100, 400, 1_000]);
    expect(retryDelayMs(4, schedule)).toBeNull();
    expect(retrySchedule({ ...schedule, maxAttempts: 1 })).toEqual([]); // one attempt: never retried
  });

  it('moves each wait by at most ±20 % at random, so retries after one outage spread out', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 7 }), // 7: the last wait, at the cap
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempts, r) => {
          const nominal = retryDelayMs(attempts, undefined, () => 0.5)!;
          const wait = retryDelayMs(attempts, undefined, () => r)!;
          expect(wait).toBeGreaterThanOrEqual(Math.floor(nominal * 0.8));
          expect(wait).toBeLessThanOrEqual(Math.ceil(nominal * 1.2));
          expect(wait).toBeLessThanOrEqual(DEFAULT_WEBHOOK_RETRY_SCHEDULE.maxMs);
        },
      ),
    );
    const waits = new Set(Array.from({ length: 50 }, () => retryDelayMs(3)));
    expect(waits.size).toBeGreaterThan(10); // not all the same second
  });

  it('never waits less than the one before, nor more than the cap', () => {
    for (const baseMs of [10, 250, 2_000, 60_000]) {
      for (const maxAttempts of [1, 2, 8, 20]) {
        const waits = retrySchedule({ baseMs, maxMs: 3_600_000, maxAttempts });
        expect(waits).toHaveLength(maxAttempts - 1);
        for (let i = 1; i < waits.length; i++) expect(waits[i]).toBeGreaterThanOrEqual(waits[i - 1]);
        expect(waits.every((w) => w >= baseMs && w <= 3_600_000)).toBe(true);
      }
    }
  });
});

describe('webhook events', () => {
  it('maps the states a developer acts on to lifecycle events, and no other', () => {
    expect(lifecycleWebhookEvent('RUNNING')).toBe('job.running');
    expect(lifecycleWebhookEvent('COMPLETED')).toBe('job.succeeded');
    expect(lifecycleWebhookEvent('FAILED')).toBe('job.failed');
    expect(lifecycleWebhookEvent('EXPIRED')).toBe('job.expired');
    expect(lifecycleWebhookEvent('CANCELLED')).toBe('job.cancelled');
    for (const s of ['QUEUED', 'DISPATCHED', 'VERIFYING', null, 'constructor', '__proto__']) {
      expect(lifecycleWebhookEvent(s), String(s)).toBeNull();
    }
  });

  it('validates a subscription: known types, deduplicated; none means all', () => {
    expect(parseWebhookEvents(undefined)).toEqual([]);
    expect(parseWebhookEvents(['job.failed', 'job.succeeded', 'job.failed'])).toEqual([
      'job.failed',
      'job.succeeded',
    ]);
    expect(() => parseWebhookEvents(['job.done'])).toThrow(/unknown event type "job.done"/);
    expect(() => parseWebhookEvents('job.failed')).toThrow(/expected an array/);
    expect(() => parseWebhookEvents([42])).toThrow(/unknown event type 42/);
    expect(webhookWants([], 'job.running')).toBe(true);
    expect(webhookWants(['job.failed'], 'job.running')).toBe(false);
    expect(webhookWants(['job.failed'], 'job.failed')).toBe(true);
    expect(webhookWants(['job.failed'], 'ping')).toBe(true); // a test ping always goes
    expect(WEBHOOK_EVENT_TYPES).toContain('job.corrected');
  });

  it('makes one delivery per lifecycle event of a batch, passed-through states included', () => {
    const now = new Date('2026-12-06T12:00:00.000Z');
    let n = 0;
    const jobs = new Map([
      ['j1', { accountId: 'a1', kind: 'matmul', error: null }],
      ['j2', { accountId: 'a2', kind: 'inference', error: 'deadline passed' }],
    ]);
    const rows = lifecycleDeliveryRows(
      [
        { jobId: 'j1', fromState: 'DISPATCHED', toState: 'RUNNING' },
        { jobId: 'j1', fromState: 'RUNNING', toState: 'VERIFYING' },
        { jobId: 'j1', fromState: null, toState: null }, // a note
        { jobId: 'j2', fromState: 'QUEUED', toState: 'EXPIRED' },
        { jobId: 'unknown', fromState: 'RUNNING', toState: 'COMPLETED' },
      ],
      (id) => jobs.get(id),
      now,
      () => `d${++n}`,
    );
    expect(rows.map((r) => [r.id, r.accountId, r.jobId, r.event])).toEqual([
      ['d1', 'a1', 'j1', 'job.running'],
      ['d2', 'a2', 'j2', 'job.expired'],
    ]);
    expect(JSON.parse(rows[0].payload)).toEqual({
      id: 'd1',
      type: 'job.running',
      createdAt: '2026-12-06T12:00:00.000Z',
      data: { jobId: 'j1', kind: 'matmul', state: 'RUNNING', fromState: 'DISPATCHED', error: null },
    });
    expect(JSON.parse(rows[1].payload).data).toMatchObject({ state: 'EXPIRED', error: 'deadline passed' });
  });

  it('pages the delivery log with cursors it can read back, and refuses any other', () => {
    const d = { createdAt: new Date('2026-12-06T12:00:00.123Z'), id: '0b7e4a5c-1f0e-4d1a-9c1e-2a3b4c5d6e7f' };
    expect(decodeDeliveryCursor(encodeDeliveryCursor(d))).toEqual(d);
    for (const bad of [
      '',
      'abc',
      Buffer.from('x|y').toString('base64url'),
      Buffer.from(`nope|${d.id}`).toString('base64url'),
    ]) {
      expect(decodeDeliveryCursor(bad), bad).toBeNull();
    }
  });
});
