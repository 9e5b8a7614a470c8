// Admin actions with consequences you can see (issue 24, part 2): drain and ban are separate, each
// needs a reason, unban restores what the provider had (or what the admin chooses), and every action
// lands in an append-only audit log that can be filtered.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';

interface ProviderBody {
  status: string;
  reputation: number;
}
interface AuditPage {
  items: {
    id: string;
    at: string;
    actor: string;
    action: string;
    target: string;
    reason: string;
    before: Record<string, unknown> | null;
    after: Record<string, unknown> | null;
  }[];
  nextCursor: string | null;
}

let c: TestCoordinator;
let db: pg.Client;
const PEER = '12D3KooWAuditTestPeer1111111111111111111111111111';
const CHEAT = '12D3KooWAuditTestPeer2222222222222222222222222222';

/** A provider seen "now" for the whole test (the staleness sweep would otherwise take it OFFLINE on a loaded machine). */
async function addProvider(peerId: string, reputation: number): Promise<void> {
  await db.query(
    `INSERT INTO "Provider" ("peerId", address, "operatorId", status, backend, gpus, gflops, "pricePerUnit",
                             slots, "freeSlots", reputation, advert, "lastSeenAt", "updatedAt")
     VALUES ($1, $2, $2, 'ONLINE', 'cpu', '[]', 1, 1, 1, 1, $3, '{}', now() + interval '1 hour', now())`,
    [peerId, `0x${Buffer.from(peerId).toString('hex').slice(-40)}`, reputation],
  );
}

const act = (path: string, body?: unknown) =>
  api<ProviderBody & { error?: { code: string; message: string } }>(c.url, 'POST', path, {
    key: c.adminKey,
    body,
  });

beforeAll(async () => {
  c = await startTestCoordinator();
  db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  await addProvider(PEER, 0.95);
  await addProvider(CHEAT, 0.8);
});

afterAll(async () => {
  await db?.end();
  await c?.close();
});

describe('admin actions', () => {
  it('refuses an action without a reason', async () => {
    for (const body of [undefined, {}, { reason: '  ' }, { reason: 'no' }]) {
      const res = await act(`/v1/admin/providers/${PEER}/drain`, body);
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error?.message).toMatch(/reason/);
    }
    expect(
      (await api<ProviderBody>(c.url, 'GET', `/v1/admin/providers/${PEER}`, { key: c.adminKey })).body.status,
    ).toBe('ONLINE');
  });

  it('drains and undrains without touching the reputation', async () => {
    const drained = await act(`/v1/admin/providers/${PEER}/drain`, { reason: 'driver upgrade' });
    expect(drained.status).toBe(200);
    expect(drained.body).toMatchObject({ status: 'DRAINING', reputation: 0.95 });
    // a drain is not a ban: unban refuses, naming undrain
    const unban = await act(`/v1/admin/providers/${PEER}/unban`, { reason: 'wrong button' });
    expect(unban.status).toBe(409);
    expect(unban.body.error?.message).toMatch(/undrain/);
    const back = await act(`/v1/admin/providers/${PEER}/undrain`, { reason: 'upgrade done' });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ status: 'ONLINE', reputation: 0.95 });
    expect((await act(`/v1/admin/providers/${PEER}/undrain`, { reason: 'twice' })).status).toBe(409);
  });

  it("bans with time, reason and actor, and unban keeps the reputation an admin's ban did not lower", async () => {
    const banned = await act(`/v1/admin/providers/${PEER}/ban`, { reason: 'suspicious adverts' });
    expect(banned.status).toBe(200);
    expect(banned.body).toMatchObject({ status: 'BANNED', reputation: 0.95 });
    const detail = await api<{ bannedAt: string; banReason: string }>(
      c.url,
      'GET',
      `/v1/admin/providers/${PEER}`,
      {
        key: c.adminKey,
      },
    );
    expect(detail.body.banReason).toBe('admin: suspicious adverts');
    expect(Date.now() - Date.parse(detail.body.bannedAt)).toBeLessThan(60_000);
    expect((await act(`/v1/admin/providers/${PEER}/ban`, { reason: 'again' })).status).toBe(409);
    const lifted = await act(`/v1/admin/providers/${PEER}/unban`, { reason: 'adverts checked out' });
    expect(lifted.status).toBe(200);
    expect(lifted.body.status).toBe('ONLINE');
    expect(lifted.body.reputation).toBeCloseTo(0.95, 2);
  });

  it('after a ban for wrong results, unban puts on probation by default or restores the earlier score', async () => {
    const reputation = c.running.app.get(
      (await import('../../apps/coordinator/src/reputation/reputation.service.js')).ReputationService,
    );
    await reputation.record(CHEAT, 'failed_canary', { reason: 'wrong canary answer' });
    const banned = await api<ProviderBody>(c.url, 'GET', `/v1/admin/providers/${CHEAT}`, { key: c.adminKey });
    expect(banned.body).toMatchObject({ status: 'BANNED', reputation: 0 });
    const probation = await act(`/v1/admin/providers/${CHEAT}/unban`, { reason: 'reviewed' });
    expect(probation.body).toMatchObject({ status: 'ONLINE', reputation: 0.3 });
    await reputation.record(CHEAT, 'failed_canary', { reason: 'wrong canary answer' });
    const restored = await act(`/v1/admin/providers/${CHEAT}/unban`, {
      reason: 'the canary answer itself was wrong',
      reputation: 'restore',
    });
    expect(restored.body.status).toBe('ONLINE');
    expect(restored.body.reputation).toBeCloseTo(0.3, 2); // what it had just before the second ban
    expect((await act(`/v1/admin/providers/${CHEAT}/unban`, { reason: 'x', reputation: 'all' })).status).toBe(
      400,
    );
  });

  it('records every action in an append-only audit log, filterable and paged', async () => {
    const job = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', {
      key: c.devKey,
      body: matmulSpec(2, 2, 2),
    });
    const cancel = await api(c.url, 'POST', `/v1/admin/jobs/${job.body.id}/cancel`, {
      key: c.adminKey,
      body: { reason: 'runaway job' },
    });
    expect(cancel.status).toBe(200);
    const setting = await api(c.url, 'PUT', '/v1/admin/settings/epochSeconds', {
      key: c.adminKey,
      body: { value: 45, reason: 'shorter epochs for the demo' },
    });
    expect(setting.status).toBe(200);

    const all = await api<AuditPage>(c.url, 'GET', '/v1/admin/audit-log?limit=100', { key: c.adminKey });
    expect(all.status).toBe(200);
    const actions = all.body.items.map((e) => `${e.action} ${e.target.slice(0, 8)}`);
    expect(all.body.items.map((e) => e.action)).toEqual([
      'setting.change',
      'job.cancel',
      'provider.unban',
      'provider.unban',
      'provider.unban',
      'provider.ban',
      'provider.undrain',
      'provider.drain',
    ]);
    expect(actions).toHaveLength(8);
    const [settingEntry, cancelEntry] = all.body.items;
    expect(settingEntry).toMatchObject({
      target: 'epochSeconds',
      reason: 'shorter epochs for the demo',
      after: { value: 45 },
      actor: '0x70997970c51812dc3a010c7d01b50e0d17dc79c8',
    });
    expect(cancelEntry).toMatchObject({
      target: job.body.id,
      before: { state: 'QUEUED' },
      after: { state: 'CANCELLED' },
    });
    const ban = all.body.items.find((e) => e.action === 'provider.ban')!;
    expect(ban).toMatchObject({
      target: PEER,
      reason: 'suspicious adverts',
      before: { status: 'ONLINE', reputation: 0.95 },
      after: { status: 'BANNED', reputation: 0.95, banReason: 'admin: suspicious adverts' },
    });

    const filtered = await api<AuditPage>(
      c.url,
      'GET',
      `/v1/admin/audit-log?action=provider.unban&target=${CHEAT}`,
      {
        key: c.adminKey,
      },
    );
    expect(filtered.body.items.map((e) => e.after?.reputationChoice)).toEqual(['restore', 'probation']);
    const page1 = await api<AuditPage>(c.url, 'GET', '/v1/admin/audit-log?limit=3', { key: c.adminKey });
    const page2 = await api<AuditPage>(
      c.url,
      'GET',
      `/v1/admin/audit-log?limit=3&cursor=${page1.body.nextCursor}`,
      {
        key: c.adminKey,
      },
    );
    expect([...page1.body.items, ...page2.body.items].map((e) => e.id)).toEqual(
      all.body.items.slice(0, 6).map((e) => e.id),
    );
    expect((await api(c.url, 'GET', '/v1/admin/audit-log?cursor=abc', { key: c.adminKey })).status).toBe(400);
    expect((await api(c.url, 'GET', '/v1/admin/audit-log', { key: c.devKey })).status).toBe(403);

    // append-only, even for someone with the database
    await expect(db.query('UPDATE "AdminAuditEntry" SET reason = $1', ['rewritten'])).rejects.toThrow(
      /append-only/,
    );
    await expect(db.query('DELETE FROM "AdminAuditEntry"')).rejects.toThrow(/append-only/);
  });
});
