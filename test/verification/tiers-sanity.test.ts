// Sanity checks: junk (Inf from finite inputs) FAILED at once; webhook URLs refused on private addresses.
import { describe, expect, it } from 'vitest';
import { api } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import {
  setup,
  waitFor,
  agent,
  submit,
  job,
  finished,
  resultOf,
  eventTypes,
  isRight,
  rows,
  stopAfterEach,
} from './tiers-support.js';

stopAfterEach();

describe('sanity checks (real coordinator, fake agents)', () => {
  it('Inf outputs from finite inputs are FAILED at once (NON_FINITE_OUTPUT), and the job runs elsewhere', async () => {
    const t = await setup();
    const liar = await agent(t, 'inf', 'op-inf');
    const spec = matmulSpec(4, 4, 4, '5');
    const id = await submit(t, spec);
    const failed = await waitFor('the Inf attempt to fail', async () => {
      const [a] = await rows<{ state: string; error: string }>(
        t,
        `SELECT state::text, error FROM "JobAttempt" WHERE "jobId" = $1 AND "providerId" = $2 AND error IS NOT NULL`,
        [id, liar.peerId],
      );
      return a;
    });
    expect(failed.state).toBe('FAILED');
    expect(failed.error).toMatch(/^NON_FINITE_OUTPUT: c\[0\] is Infinity/);
    // Refused on sight: no coordinator recompute was needed.
    expect(await eventTypes(t, id)).not.toContain('verification.held');
    expect((await job(t, id)).state).not.toBe('COMPLETED');
    await waitFor('the sanity penalty', async () => {
      const [e] = await rows<{ kind: string }>(
        t,
        `SELECT kind FROM "ReputationEvent" WHERE "peerId" = $1 AND kind = 'failed_sanity'`,
        [liar.peerId],
      );
      return e;
    });
    await agent(t, 'honest', 'op-honest', '3');
    expect((await finished(t, id)).state).toBe('COMPLETED');
    expect(isRight(spec, await resultOf(t, id))).toBe(true);
  }, 60_000);

  it('refuses webhook URLs on private addresses unless allowed', async () => {
    const t = await setup();
    for (const url of [
      'http://127.0.0.1:9/x',
      'https://169.254.169.254/latest',
      'https://localhost/x',
      'ftp://x.example/',
    ]) {
      const res = await api<{ code: string }>(t.c.url, 'PUT', '/v1/account/webhook', {
        key: t.c.devKey,
        body: { url },
      });
      expect(res.status, url).toBe(400);
    }
  }, 30_000);
});
