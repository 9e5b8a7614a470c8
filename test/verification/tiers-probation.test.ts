// Trust tiers: under the default policy a cheater on probation never gets a developer job COMPLETED.
import { describe, expect, it } from 'vitest';
import { matmulSpec } from '../helpers/specs.js';
import {
  setup,
  waitFor,
  agent,
  submit,
  job,
  finished,
  resultOf,
  isRight,
  rows,
  stopAfterEach,
} from './tiers-support.js';

stopAfterEach();

describe('trust tiers: probation (real coordinator, fake agents)', () => {
  it('default policy: a cheater returning zeros on probation never gets a developer job COMPLETED with its answer', async () => {
    const t = await setup();
    const cheater = await agent(t, 'zeros', 'op-cheat');
    // The cheater alone: every job goes to it first.
    const specs = Array.from({ length: 4 }, (_, i) => matmulSpec(6 + i, 8, 5, '5'));
    const ids = await Promise.all(specs.map((s) => submit(t, s)));
    await waitFor('the cheater banned', async () => {
      const [p] = await rows<{ status: string }>(
        t,
        'SELECT status::text FROM "Provider" WHERE "peerId" = $1',
        [cheater.peerId],
      );
      return p?.status === 'BANNED' ? true : undefined;
    });
    for (const id of ids) expect((await job(t, id)).state).not.toBe('COMPLETED');
    // An honest provider of another operator joins: every job completes, with the right answer.
    await agent(t, 'honest', 'op-honest', '3');
    for (const [i, id] of ids.entries()) {
      const done = await finished(t, id);
      expect(done.state).toBe('COMPLETED');
      expect(isRight(specs[i], await resultOf(t, id)), `job ${i} delivered the right answer`).toBe(true);
      expect(done.verification).toMatchObject({ method: 'reference', verified: true, corrected: false });
    }
    const cheats = await rows<{ state: string; error: string | null }>(
      t,
      `SELECT a.state::text, a.error FROM "JobAttempt" a JOIN "Job" j ON j.id = a."jobId"
        WHERE a."providerId" = $1 AND j.canary = false`,
      [cheater.peerId],
    );
    expect(cheats.length).toBeGreaterThan(0);
    expect(cheats.every((a) => a.state === 'FAILED')).toBe(true);
    const [conviction] = await rows<{ kind: string }>(
      t,
      `SELECT kind FROM "ReputationEvent" WHERE "peerId" = $1 AND kind = 'failed_check'`,
      [cheater.peerId],
    );
    expect(conviction?.kind).toBe('failed_check');
  }, 90_000);
});
