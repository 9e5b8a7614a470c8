import { ForbiddenException, UnauthorizedException } from '@nestjs/common';
import { describe, expect, it } from 'vitest';
import { checkMetricsAccess } from './metrics.controller.js';

const TOKEN = 'metrics-token-0123456789';

describe('checkMetricsAccess', () => {
  it('without METRICS_TOKEN answers direct loopback connections only', () => {
    for (const remoteAddress of ['127.0.0.1', '::1', '::ffff:127.0.0.1', '127.0.1.1']) {
      expect(() => checkMetricsAccess(undefined, { headers: {}, remoteAddress })).not.toThrow();
    }
    for (const remoteAddress of ['10.0.0.5', '::ffff:192.168.1.2', '2001:db8::1', undefined]) {
      expect(() => checkMetricsAccess(undefined, { headers: {}, remoteAddress })).toThrow(ForbiddenException);
    }
    // Relayed by a reverse proxy on the same host: not this host's own scraper.
    for (const header of ['x-forwarded-for', 'forwarded', 'x-real-ip']) {
      expect(() =>
        checkMetricsAccess(undefined, { headers: { [header]: '203.0.113.9' }, remoteAddress: '127.0.0.1' }),
      ).toThrow(/METRICS_TOKEN/);
    }
  });

  it('with METRICS_TOKEN wants that bearer token from anywhere, loopback included', () => {
    const ok = { authorization: `Bearer ${TOKEN}` };
    expect(() => checkMetricsAccess(TOKEN, { headers: ok, remoteAddress: '10.0.0.5' })).not.toThrow();
    expect(() =>
      checkMetricsAccess(TOKEN, {
        headers: { authorization: `bearer  ${TOKEN} ` },
        remoteAddress: '10.0.0.5',
      }),
    ).not.toThrow();
    for (const headers of [
      {},
      { authorization: 'Bearer wrong' },
      { authorization: TOKEN },
      { 'x-api-key': TOKEN },
    ]) {
      expect(() => checkMetricsAccess(TOKEN, { headers, remoteAddress: '127.0.0.1' })).toThrow(
        UnauthorizedException,
      );
    }
  });
});
