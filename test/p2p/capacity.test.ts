// Proven capacity against a real coordinator: a provider's speed is measured by a timed known-answer
// job (owned and paid by the platform account), not believed. A liar advertising 8 H100s at 400,000
// GFLOP/s that really is slow is measured, scored at the measured figure, penalised and flagged, and
// ranks below an honest provider; adverts beyond the protocol's limits never get in at all.
import { Wallet } from 'ethers';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createGpumeshNode,
  nodePeerId,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';
import {
  canonicalBytes,
  createPeerBinding,
  signPersonalMessage,
  type ProviderAdvert,
  type Signed,
} from '@gpumesh/protocol';
import type { JobRequest } from '@gpumesh/scheduler';
import { MetricsService } from '../../apps/coordinator/src/metrics/metrics.service.js';
import { ProviderViewService } from '../../apps/coordinator/src/p2p/provider-view.service.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { pollUntil } from '../helpers/poll.js';

interface ProviderBody {
  peerId: string;
  gflops: number;
  measuredGflops: number | null;
  capacityOverstated: boolean;
  reputation: number;
}

const H100 = { model: 'NVIDIA H100 80GB HBM3', vramMiB: 81_559 };
/** The liar answers every job this long after accepting it (its receipts still claim 1 ms). */
const LIAR_DELAY_MS = 4_000;
const PROBATION_GFLOPS = 100;
const PROBE_MEAN_INTERVAL_MS = 3_600_000;

function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  return pollUntil(what, probe, timeoutMs);
}

async function providers(c: TestCoordinator): Promise<ProviderBody[]> {
  const res = await api<ProviderBody[]>(c.url, 'GET', '/v1/providers?limit=500');
  expect(res.status).toBe(200);
  return res.body;
}

describe('proven capacity', () => {
  let c: TestCoordinator;
  const agents: FakeAgent[] = [];

  beforeAll(async () => {
    c = await startTestCoordinator({
      CAPACITY_PROBES: 'true',
      CAPACITY_PROBE_TICK_MS: '200',
      CAPACITY_PROBATION_GFLOPS: String(PROBATION_GFLOPS),
      // Probes of 20..40 MFLOP: the fake agents multiply in plain JS.
      CAPACITY_PROBE_MIN_WORK_UNITS: '20',
      CAPACITY_PROBE_MAX_WORK_UNITS: '40',
      CAPACITY_PROBE_OVERHEAD_MS: '500',
      CAPACITY_PROBE_MEAN_INTERVAL_MS: String(PROBE_MEAN_INTERVAL_MS),
      DISPATCH_BACKOFF_MS: '50',
      CAPACITY_WAIT_MS: '300',
    });
  });
  afterAll(async () => {
    for (const a of agents) await a.stop();
    await c?.close();
  });

  it('measures a liar, scores it at the measured figure, penalises and flags it, and ranks it below an honest provider', async () => {
    // Honest: advertises 0.05 GFLOP/s, well below what its plain-JS matmul does even on a busy machine.
    const honest = await startFakeAgent(c.url, { gflops: 0.05, pricePerUnit: '1' });
    agents.push(honest);
    // The liar: 8 H100s at 400,000 GFLOP/s from a fresh wallet, at the same price, and slow.
    const liar = await startFakeAgent(c.url, {
      gflops: 400_000,
      gpus: Array.from({ length: 8 }, () => H100),
      backend: 'tensorflow-gpu',
      pricePerUnit: '1',
      runDelayMs: LIAR_DELAY_MS,
    });
    agents.push(liar);

    // The first probe waits for the reference worker to start and compute its answer: on a busy
    // machine that takes a while.
    const measured = await waitFor(
      'both providers measured',
      async () => {
        const list = await providers(c);
        const h = list.find((p) => p.peerId === honest.peerId);
        const l = list.find((p) => p.peerId === liar.peerId);
        return h?.measuredGflops != null && l?.measuredGflops != null ? { h, l } : undefined;
      },
      150_000,
    );
    // The overstatement penalty lands just after the measurement.
    const l = await waitFor('the liar flagged and penalised', async () => {
      const found = (await providers(c)).find((p) => p.peerId === liar.peerId);
      return found?.capacityOverstated && found.reputation < 0.4 ? found : undefined;
    });
    const h = (await providers(c)).find((p) => p.peerId === honest.peerId) as ProviderBody;
    console.info(
      JSON.stringify({
        honest: { advertisedGflops: h.gflops, measuredGflops: h.measuredGflops, reputation: h.reputation },
        liar: { advertisedGflops: l.gflops, measuredGflops: l.measuredGflops, reputation: l.reputation },
      }),
    );
    expect(measured.l.measuredGflops).toBeLessThan(42 / LIAR_DELAY_MS); // ≤ 41 MFLOP in ≥ 4 s
    expect(l.gflops).toBe(400_000); // listed with its claim...
    expect(l.capacityOverstated).toBe(true); // ...flagged
    // Its probe's answer was right (+0.02), its advert overstated (-0.2) and its run slow (-0.01).
    expect(l.reputation).toBeLessThan(h.reputation - 0.15);
    expect(h.capacityOverstated).toBe(false);
    expect(h.reputation).toBeGreaterThanOrEqual(0.5); // its probe passed
    expect(h.measuredGflops as number).toBeGreaterThan(l.measuredGflops as number);

    // The probes were known-answer jobs of the platform account, each run by the provider it measured.
    const db = new pg.Client({ connectionString: c.databaseUrl });
    await db.connect();
    try {
      const probes = await db.query<{ owner: string; canary: boolean; target: string; ran: string }>(
        `SELECT a.address AS owner, j.canary, j.verification->'capacityProbe'->>'peerId' AS target,
                t."providerId" AS ran
           FROM "Job" j JOIN "Account" a ON a.id = j."accountId" JOIN "JobAttempt" t ON t."jobId" = j.id
          WHERE j.verification ? 'capacityProbe' AND t.state = 'SUCCEEDED'`,
      );
      expect(probes.rows.map((r) => r.target).sort()).toEqual([honest.peerId, liar.peerId].sort());
      for (const r of probes.rows) {
        expect(r.owner).toBe(c.config.platformAccountAddress);
        expect(r.canary).toBe(true);
        expect(r.ran).toBe(r.target);
      }
      // The next probe of each comes at a random time: exponential around the mean, within bounds.
      const due = await db.query<{ peerId: string; inMs: number }>(
        `SELECT "peerId", EXTRACT(EPOCH FROM ("probeDueAt" - now())) * 1000 AS "inMs"
           FROM "Provider" WHERE "peerId" = ANY($1)`,
        [[honest.peerId, liar.peerId]],
      );
      expect(due.rows).toHaveLength(2);
      for (const r of due.rows) {
        expect(Number(r.inMs)).toBeGreaterThan(0.1 * PROBE_MEAN_INTERVAL_MS - 120_000);
        expect(Number(r.inMs)).toBeLessThanOrEqual(5 * PROBE_MEAN_INTERVAL_MS);
      }
    } finally {
      await db.end();
    }

    // Placement credits the liar with what it showed, not what it claims: it ranks below the honest
    // provider, in the live view and in the public dry run.
    const view = c.running.app.get(ProviderViewService);
    const request: JobRequest = {
      jobId: 'rank',
      accountId: 'rank',
      priority: 'normal',
      workUnits: 1n,
      requirements: {},
      maxPricePerUnit: 1n,
      redundancy: 2,
      deadlineAt: Date.now() + 60_000,
    };
    const ranked = view.scheduler.select(request, Date.now(), { explore: false });
    expect(ranked.placements.map((p) => p.peerId)).toEqual([honest.peerId, liar.peerId]);
    // A job that needs more speed than the liar showed (but far less than it claims) cannot go to it.
    const quick = view.scheduler.select(
      { ...request, jobId: 'quick', redundancy: 1, workUnits: 1_000n, deadlineAt: Date.now() + 10_000 },
      Date.now(),
      { explore: false },
    );
    expect(quick.placements.map((p) => p.peerId)).not.toContain(liar.peerId);
  }, 240_000);

  it('rejects adverts beyond the protocol limits at gossip validation (1e300 GFLOP/s, 100 and 10,000 GPUs)', async () => {
    const network = (await (await fetch(`${c.url}/v1/network`)).json()) as {
      peers: { multiaddrs: string[] }[];
    };
    const node: GpumeshNode = await createGpumeshNode({ listen: [], bootstrap: network.peers[0].multiaddrs });
    const gossip: GossipService = startGossip(node, {});
    try {
      const peerId = nodePeerId(node);
      const wallet = Wallet.createRandom();
      const binding = await createPeerBinding(wallet, peerId);
      await waitFor('the coordinator in the advert mesh', async () =>
        gossip.topicPeers('advert').length > 0 ? true : undefined,
      );
      const metrics = c.running.app.get(MetricsService);
      const rejected = async (code: string): Promise<number> =>
        (await metrics.gossipMessages.get()).values
          .filter((v) => v.labels.verdict === 'REJECT' && v.labels.code === code)
          .reduce((sum, v) => sum + v.value, 0);
      const outOfRangeBefore = await rejected('ADVERT_OUT_OF_RANGE');
      const tooLargeBefore = await rejected('MESSAGE_TOO_LARGE');
      let seq = Date.now();
      // Validly signed by a fresh wallet, but beyond the limits: signed by hand (signPayload refuses).
      const publish = async (fields: Partial<ProviderAdvert>): Promise<void> => {
        const now = Date.now();
        const payload = {
          version: 1 as const,
          peerId,
          address: wallet.address.toLowerCase(),
          operatorId: wallet.address.toLowerCase(),
          seq: ++seq,
          issuedAt: now,
          expiresAt: now + 60_000,
          backend: 'tensorflow-gpu' as const,
          gpus: [H100],
          gflops: 1,
          pricePerUnit: '0',
          slots: 8,
          freeSlots: 8,
          binding,
          ...fields,
        };
        const signature = await signPersonalMessage(wallet, canonicalBytes('advert', payload));
        const signed = { payload, signature, signer: wallet.address.toLowerCase() };
        await gossip.publish('advert', signed as unknown as Signed<ProviderAdvert>);
      };
      await publish({ gflops: 1e300, gpus: Array.from({ length: 8 }, () => H100) });
      await publish({
        gflops: 1_000,
        gpus: Array.from({ length: 100 }, () => ({ model: 'H100', vramMiB: 1 })),
      });
      await waitFor('two ADVERT_OUT_OF_RANGE rejections', async () =>
        (await rejected('ADVERT_OUT_OF_RANGE')) >= outOfRangeBefore + 2 ? true : undefined,
      );
      // 10,000 GPUs do not even fit the advert size limit.
      await publish({
        gflops: 1_000,
        gpus: Array.from({ length: 10_000 }, () => ({ model: 'A', vramMiB: 1 })),
      });
      await waitFor('a MESSAGE_TOO_LARGE rejection', async () =>
        (await rejected('MESSAGE_TOO_LARGE')) >= tooLargeBefore + 1 ? true : undefined,
      );
      const listed = await providers(c);
      expect(listed.map((p) => p.peerId)).not.toContain(peerId);
    } finally {
      gossip.stop();
      await node.stop();
    }
  }, 60_000);
});
