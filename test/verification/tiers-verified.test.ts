// Trust tiers: trusted providers spot-checked, `verified` jobs wait for a check, redundant check without a reference.
import { describe, expect, it } from 'vitest';
import { matmulSpec } from '../helpers/specs.js';
import {
  setup,
  agent,
  makeTrusted,
  submit,
  finished,
  eventTypes,
  rows,
  stopAfterEach,
} from './tiers-support.js';

stopAfterEach();

describe('trust tiers: checks (real coordinator, fake agents)', () => {
  it('a trusted provider is spot-checked; a job requiring verified completes only after a check (and pays for a check run)', async () => {
    const t = await setup();
    const trusted = await agent(t, 'honest', 'op-trusted');
    await makeTrusted(t, trusted.peerId);
    const plain = await submit(t, matmulSpec(5, 5, 5, '5'));
    const plainDone = await finished(t, plain);
    expect(plainDone.state).toBe('COMPLETED');
    expect(plainDone.verification).toMatchObject({ method: 'spot-check', verified: false, required: false });
    expect(await eventTypes(t, plain)).not.toContain('verification.held');

    const spec = { ...matmulSpec(5, 6, 5, '5'), verification: { mode: 'none', verified: true } };
    const strict = await submit(t, spec);
    const strictDone = await finished(t, strict);
    expect(strictDone.state).toBe('COMPLETED');
    expect(strictDone.verification).toMatchObject({ method: 'reference', verified: true, required: true });
    expect(strictDone.verification.cost.check).toBe(strictDone.verification.cost.work);
    expect(BigInt(strictDone.cost)).toBe(2n * BigInt(strictDone.verification.cost.work));
    const types = await eventTypes(t, strict);
    expect(types.indexOf('verification.held')).toBeGreaterThanOrEqual(0);
    expect(types.indexOf('verification.held')).toBeLessThan(types.indexOf('job.completed'));
  }, 60_000);

  it('without a coordinator reference, a probation result is held until a provider of another operator agrees', async () => {
    const t = await setup({ REFERENCE_WORK_BUDGET: '0' });
    const a = await agent(t, 'honest', 'op-a', '2');
    const b = await agent(t, 'honest', 'op-b', '2');
    const id = await submit(t, matmulSpec(4, 4, 4, '5'));
    const done = await finished(t, id);
    expect(done.state).toBe('COMPLETED');
    expect(done.verification).toMatchObject({ method: 'redundant', verified: true });
    const [completed] = await rows<{ data: { providers: string[]; verification: { checkedBy: string } } }>(
      t,
      `SELECT data FROM "JobEvent" WHERE "jobId" = $1 AND type = 'job.completed'`,
      [id],
    );
    const delivered = completed.data.providers[0];
    expect([a.peerId, b.peerId]).toContain(delivered);
    expect(completed.data.verification.checkedBy).toBe(delivered === a.peerId ? b.peerId : a.peerId);
    // Both runs are paid out of the one reservation (the checker first).
    const paid = await rows<{ account: string }>(
      t,
      `SELECT DISTINCT account FROM "LedgerEntry" WHERE "jobId" = $1 AND account LIKE 'provider:%' AND amount > 0`,
      [id],
    );
    expect(paid.length).toBe(2);
  }, 60_000);
});
