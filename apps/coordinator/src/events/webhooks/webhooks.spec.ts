import { describe, expect, it } from 'vitest';
import { resolveWebhookUrl, isPublicAddress, WebhookUrlError } from './webhook-url.js';
import { signWebhook, verifyWebhookSignature } from './webhook-signature.js';
import { WEBHOOK_MAX_ATTEMPTS, WEBHOOK_RETRY_MAX_MS, retryDelayMs } from './webhooks.service.js';

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
    expect(retryDelayMs(1)).toBe(2_000);
    expect(retryDelayMs(2)).toBe(8_000);
    expect(retryDelayMs(WEBHOOK_MAX_ATTEMPTS - 1)).toBeLessThanOrEqual(WEBHOOK_RETRY_MAX_MS);
    expect(retryDelayMs(WEBHOOK_MAX_ATTEMPTS)).toBeNull();
  });
});
