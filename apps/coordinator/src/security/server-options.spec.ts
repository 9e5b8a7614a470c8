import { describe, expect, it } from 'vitest';

import { helmetOptions } from './server-options.js';

type Csp = { directives: Record<string, unknown> };

describe('security headers', () => {
  it('upgrades insecure requests and sends HSTS only behind https', () => {
    const https = helmetOptions('https://gpumesh.example.com');
    expect((https.contentSecurityPolicy as Csp).directives.upgradeInsecureRequests).toEqual([]);
    expect(https.strictTransportSecurity).toBe(true);
    for (const plain of [undefined, 'http://10.0.0.5:8080']) {
      const options = helmetOptions(plain);
      // null removes helmet's default directive: a LAN browser must load the assets over http
      expect((options.contentSecurityPolicy as Csp).directives.upgradeInsecureRequests).toBeNull();
      expect(options.strictTransportSecurity).toBe(false);
    }
  });
});
