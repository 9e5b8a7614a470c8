// Group commit of reputation changes (ReputationRepository): concurrent changes share a database
// transaction, are applied in the order asked (each sees the score the previous one left), a ban and
// its lifting land on the provider row, and an unknown provider gets null without failing the rest.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ReputationRepository } from '../../apps/coordinator/src/reputation/reputation.repository.js';
import { startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';

let c: TestCoordinator;
let db: pg.Client;

beforeAll(async () => {
  c = await startTestCoordinator({ ROLE: 'api', P2P_ENABLED: 'false' });
  db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
});

afterAll(async () => {
  await db?.end();
  await c?.close();
});

async function addProvider(peerId: string, reputation: number): Promise<void> {
  await db.query(
    `INSERT INTO "Provider" ("peerId", address, "operatorId", status, backend, gpus, gflops, "pricePerUnit",
                             slots, "freeSlots", reputation, advert, "lastSeenAt", "updatedAt")
     VALUES ($1, $2, $2, 'ONLINE', 'cpu', '[]', 1, 1, 1, 1, $3, '{}', now(), now())`,
    [peerId, `0x${peerId.padStart(40, '0').slice(-40)}`, reputation],
  );
}

describe('reputation changes (group commit)', () => {
  it('applies concurrent changes in order, in few transactions, bans and lifts, and skips unknown providers', async () => {
    await addProvider('peer-a', 0.5);
    await addProvider('peer-b', 0.5);
    const repo = c.running.app.get(ReputationRepository);
    const bump = (peerId: string, i: number) =>
      repo.apply({ peerId, kind: 'completion', jobId: undefined, next: (stored) => stored + 0.01 * (i + 1) });
    const results = await Promise.all([
      ...Array.from({ length: 20 }, (_, i) => bump('peer-a', i)),
      ...Array.from({ length: 20 }, (_, i) => bump('peer-b', i)),
      repo.apply({ peerId: 'peer-unknown', kind: 'completion', next: () => 1 }),
    ]);
    expect(results[40]).toBeNull();
    // Each change saw the previous one's score: 0.5 + 0.01 × (1 + 2 + … + 20) = 2.6.
    expect(results[19]?.score).toBeCloseTo(2.6, 9);
    expect(results[39]?.score).toBeCloseTo(2.6, 9);
    const events = await db.query<{ score: number; delta: number; xid: string }>(
      `SELECT score, delta, xmin::text AS xid FROM "ReputationEvent" WHERE "peerId" = 'peer-a' ORDER BY id`,
    );
    expect(events.rows).toHaveLength(20);
    events.rows.forEach((e, i) => expect(e.delta).toBeCloseTo(0.01 * (i + 1), 9));
    expect(new Set(events.rows.map((e) => e.xid)).size).toBeLessThanOrEqual(3);
    const stored = await db.query<{ reputation: number }>(
      `SELECT reputation FROM "Provider" WHERE "peerId" = 'peer-a'`,
    );
    expect(stored.rows[0].reputation).toBeCloseTo(2.6, 9);

    const [ban, again] = await Promise.all([
      repo.apply({ peerId: 'peer-b', kind: 'failed_canary', ban: 'wrong results', next: () => 0 }),
      repo.apply({ peerId: 'peer-b', kind: 'failed_canary', ban: 'wrong results', next: () => 0 }),
    ]);
    expect(ban?.banned).toBe(true);
    expect(again?.banned).toBe(false); // already banned by the change before it
    const banned = await db.query<{ status: string; reason: string | null }>(
      `SELECT status::text AS status, "banReason" AS reason FROM "Provider" WHERE "peerId" = 'peer-b'`,
    );
    expect(banned.rows[0]).toEqual({ status: 'BANNED', reason: 'wrong results' });
    await repo.apply({ peerId: 'peer-b', kind: 'ban_lifted', lift: true, next: () => 0.3 });
    const lifted = await db.query<{ status: string; reason: string | null; at: Date | null }>(
      `SELECT status::text AS status, "banReason" AS reason, "bannedAt" AS at FROM "Provider" WHERE "peerId" = 'peer-b'`,
    );
    expect(lifted.rows[0]).toEqual({ status: 'ONLINE', reason: null, at: null });
  });
});
