// Placement routes around bad peers (issue 25): a real coordinator, an honest fake agent, and bare
// libp2p attacker nodes with validly signed adverts from fresh wallets — a liar that takes the job
// stream and never answers, a liar that does not speak the job protocol, ghost identities whose
// adverts are relayed by another peer, and a provider whose advert lapses.
import { Wallet } from 'ethers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  FramedStream,
  OfferFrameSchema,
  createGpumeshNode,
  nodePeerId,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';
import {
  JOB_BATCH_PROTOCOL_ID,
  JOB_PROTOCOL_ID,
  createPeerBinding,
  hashOutputs,
  hashTensors,
  signPayload,
  type JobOffer,
  type ProviderAdvert,
} from '@gpumesh/protocol';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { matmulSpec } from '../helpers/specs.js';
import { startFakeAgent, type FakeAgent } from '../helpers/fake-agent.js';
import { ProviderViewService } from '../../apps/coordinator/src/p2p/provider-view.service.js';
import { P2pService } from '../../apps/coordinator/src/p2p/p2p.service.js';
import { referenceMatmul } from '../helpers/fake-agent.js';
import { pollUntil, query } from '../helpers/poll.js';
import { SLOW_START_INITIAL_WINDOW } from '@gpumesh/scheduler';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

/** A liar that never accepts is given up on after this long (OFFER_ACCEPT_TIMEOUT_MS). */
const ACCEPT_TIMEOUT_MS = 1_000;
const HONEST_JOBS = 6;
const JOB_DEADLINE_S = 30;
/** "Well before their deadline": every honest job completes within this of its submission. */
const COMPLETE_WITHIN_MS = 15_000;

interface JobBody {
  id: string;
  state: string;
  createdAt: string;
  completedAt?: string | null;
}
interface ProviderBody {
  peerId: string;
  status: string;
  reputation: number;
}
interface NetworkBody {
  peers: { peerId: string; multiaddrs: string[]; signerAddress: string }[];
}

function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  return pollUntil(what, probe, timeoutMs);
}

/** A signed advert of `peerId` from a fresh wallet: fast, cheap and roomy, so placement prefers it. */
async function liarAdvert(
  wallet: Wallet,
  peerId: string,
  ttlMs = 60_000,
  seq = Date.now(),
): Promise<Parameters<GossipService['publishAdvert']>[0]> {
  const now = Date.now();
  const advert: ProviderAdvert = {
    version: 1,
    peerId,
    address: wallet.address.toLowerCase(),
    operatorId: wallet.address.toLowerCase(),
    seq,
    issuedAt: now,
    expiresAt: now + ttlMs,
    backend: 'cpu',
    gpus: [],
    gflops: 1_000,
    pricePerUnit: '1',
    slots: 8,
    freeSlots: 8,
    binding: await createPeerBinding(wallet, peerId),
  };
  return signPayload('advert', advert, wallet);
}

/** A bare libp2p node connected to the coordinator, advertising itself every 300 ms. */
interface Attacker {
  node: GpumeshNode;
  peerId: string;
  streams: number;
  stop(): Promise<void>;
}

async function coordinatorPeer(c: TestCoordinator): Promise<NetworkBody['peers'][number]> {
  const body = (await (await fetch(`${c.url}/v1/network`)).json()) as NetworkBody;
  const peer = body.peers[0];
  if (!peer) throw new Error('the coordinator has no p2p peer');
  return peer;
}

async function coordinatorAddrs(c: TestCoordinator): Promise<string[]> {
  return (await coordinatorPeer(c)).multiaddrs;
}

/**
 * A provider that accepts, computes the right answer, and returns it with a receipt signed by a
 * wallet other than its advert's: raw frames on the job protocol (the agent library would refuse
 * to send such a receipt).
 */
async function startForger(c: TestCoordinator): Promise<Attacker> {
  const coordinator = await coordinatorPeer(c);
  const node = await createGpumeshNode({ listen: [], bootstrap: coordinator.multiaddrs });
  const peerId = nodePeerId(node);
  const wallet = Wallet.createRandom() as unknown as Wallet;
  const forgerWallet = Wallet.createRandom();
  const state = { streams: 0 };
  await node.handle(JOB_PROTOCOL_ID, (stream) => {
    state.streams += 1;
    void (async () => {
      const framed = new FramedStream(stream);
      const { offer: signed } = await framed.read(OfferFrameSchema, { timeoutMs: 5_000 });
      const offer = (signed as { payload: JobOffer }).payload;
      await framed.write({ type: 'accept' });
      const outputs = referenceMatmul(offer.spec);
      const receipt = await signPayload(
        'receipt',
        {
          version: 1,
          jobId: offer.jobId,
          attempt: offer.attempt,
          providerPeerId: peerId,
          // Validly signed, but by a wallet other than the advert's: a forged receipt.
          providerAddress: forgerWallet.address.toLowerCase(),
          inputHash: hashTensors(offer.spec.inputs),
          outputHash: hashOutputs(outputs),
          backend: 'cpu',
          timings: { queuedMs: 0, runMs: 1, totalMs: 1 },
          finishedAt: Date.now(),
        },
        forgerWallet,
      );
      await framed.write({ type: 'result', outputs, receipt });
      await framed.close();
    })().catch((err: unknown) => console.info('[forger] failed', err));
  });
  const stopServing = async (): Promise<void> => node.unhandle(JOB_PROTOCOL_ID);
  const gossip = startGossip(node, {});
  const advertise = async (): Promise<void> => {
    await gossip.publishAdvert(await liarAdvert(wallet, peerId)).catch(() => 0);
  };
  const timer = setInterval(() => void advertise(), 300);
  await advertise();
  return {
    node,
    peerId,
    get streams() {
      return state.streams;
    },
    stop: async () => {
      clearInterval(timer);
      gossip.stop();
      await stopServing();
      await node.stop();
    },
  };
}

async function startLiar(
  c: TestCoordinator,
  mode: 'silent' | 'no-protocol',
  options: { ttlMs?: number; advertise?: boolean } = {},
): Promise<Attacker> {
  const node = await createGpumeshNode({ listen: [], bootstrap: await coordinatorAddrs(c) });
  const peerId = nodePeerId(node);
  const wallet = Wallet.createRandom();
  const held: { close?: () => unknown; abort?: (err: Error) => unknown }[] = [];
  const state = { streams: 0 };
  if (mode === 'silent') {
    // Takes the job stream and never says a word (never accepts, never rejects).
    const hold = (stream: unknown): void => {
      state.streams += 1;
      held.push(stream as { abort?: (err: Error) => unknown });
    };
    await node.handle(JOB_PROTOCOL_ID, hold);
    await node.handle(JOB_BATCH_PROTOCOL_ID, hold);
  }
  const gossip = startGossip(node, {});
  const advertise = async (): Promise<void> => {
    await gossip
      .publishAdvert(await liarAdvert(wallet as unknown as Wallet, peerId, options.ttlMs))
      .catch(() => 0);
  };
  const timer = options.advertise === false ? undefined : setInterval(() => void advertise(), 300);
  await advertise();
  return {
    node,
    peerId,
    get streams() {
      return state.streams;
    },
    stop: async () => {
      clearInterval(timer);
      gossip.stop();
      for (const s of held) s.abort?.(new Error('test over'));
      await node.stop();
    },
  };
}

async function submit(c: TestCoordinator): Promise<JobBody> {
  const res = await api<JobBody>(c.url, 'POST', '/v1/jobs', {
    key: c.devKey,
    body: { ...matmulSpec(2, 2, 2, '1'), deadlineSeconds: JOB_DEADLINE_S },
  });
  expect(res.status).toBe(201);
  return res.body;
}

async function attemptsOf(
  c: TestCoordinator,
  jobIds: string[],
): Promise<
  { jobId: string; providerId: string; state: string; error: string | null; from: Date; to: Date | null }[]
> {
  return query(
    c.databaseUrl,
    `SELECT "jobId", "providerId", state::text AS state, error, "offeredAt" AS "from", "finishedAt" AS "to"
       FROM "JobAttempt" WHERE "jobId" = ANY($1::uuid[]) ORDER BY "offeredAt"`,
    [jobIds],
  );
}

/** The most attempts open at the same moment (an unfinished one counts as open to the end). */
function maxOverlap(attempts: { from: Date; to: Date | null }[]): number {
  const edges = attempts.flatMap((a) => [
    { t: a.from.getTime(), d: 1 },
    { t: a.to?.getTime() ?? Number.POSITIVE_INFINITY, d: -1 },
  ]);
  edges.sort((x, y) => x.t - y.t || x.d - y.d); // an attempt ending when another starts does not overlap it
  let open = 0;
  let most = 0;
  for (const e of edges) {
    open += e.d;
    most = Math.max(most, open);
  }
  return most;
}

/** Submits the honest jobs and checks they all complete on the honest agent, well before their deadline. */
async function runHonestJobs(c: TestCoordinator, honest: FakeAgent, count = HONEST_JOBS): Promise<string[]> {
  const jobs = await Promise.all(Array.from({ length: count }, () => submit(c)));
  const ids = jobs.map((j) => j.id);
  const done = await waitFor(
    'every honest job to finish',
    async () => {
      const bodies = await Promise.all(
        ids.map(async (id) => (await api<JobBody>(c.url, 'GET', `/v1/jobs/${id}`, { key: c.devKey })).body),
      );
      return bodies.every((b) => isTerminal(b.state)) ? bodies : undefined;
    },
    JOB_DEADLINE_S * 1000 + 10_000,
  );
  expect(done.map((b) => b.state)).toEqual(ids.map(() => 'COMPLETED'));
  const rows = await query<{ id: string; ms: number }>(
    c.databaseUrl,
    `SELECT id, extract(epoch FROM ("updatedAt" - "createdAt")) * 1000 AS ms FROM "Job" WHERE id = ANY($1::uuid[])`,
    [ids],
  );
  const ms = rows.map((r) => Math.round(Number(r.ms))).sort((a, b) => a - b);
  console.info(
    `[placement] ${ids.length} honest jobs completed in ${ms.join(', ')} ms (deadline ${JOB_DEADLINE_S} s)`,
  );
  for (const t of ms) expect(t).toBeLessThan(COMPLETE_WITHIN_MS);
  const succeeded = (await attemptsOf(c, ids)).filter((a) => a.state === 'SUCCEEDED');
  expect(succeeded.map((a) => a.providerId)).toEqual(ids.map(() => honest.peerId));
  return ids;
}

describe('placement routes around bad peers', () => {
  let c: TestCoordinator;
  let honest: FakeAgent;
  let view: ProviderViewService;
  const attackers: Attacker[] = [];
  const extra: GpumeshNode[] = [];

  beforeAll(async () => {
    c = await startTestCoordinator({
      OFFER_ACCEPT_TIMEOUT_MS: String(ACCEPT_TIMEOUT_MS),
      DISPATCH_BACKOFF_MS: '50',
      DISPATCH_ATTEMPTS: '20',
    });
    view = c.running.app.get(ProviderViewService);
    honest = await startFakeAgent(c.url, { slots: 4 });
    await waitFor('the honest agent to be listed', async () => {
      const res = await api<ProviderBody[]>(c.url, 'GET', '/v1/providers');
      return res.body.some((p) => p.peerId === honest.peerId) ? true : undefined;
    });
  }, 60_000);

  afterAll(async () => {
    for (const a of attackers) await a.stop().catch(() => undefined);
    for (const n of extra) await Promise.resolve(n.stop()).catch(() => undefined);
    await honest?.stop();
    await c?.close();
  });

  it('a liar that takes the job stream and never answers: honest jobs complete, the liar loses reputation and its breaker opens', async () => {
    const liar = await startLiar(c, 'silent');
    attackers.push(liar);
    await waitFor('the liar to be placeable', async () =>
      view.isConnected(liar.peerId) && view.gflops(liar.peerId) ? true : undefined,
    );
    // Placement prefers the liar (fast, cheap, 8 slots advertised), but slow start lets a provider
    // without results hold only SLOW_START_INITIAL_WINDOW jobs at once; each loss halves that. Rounds
    // of honest jobs go on until its losses open its breaker.
    const lost: Awaited<ReturnType<typeof attemptsOf>> = [];
    for (let round = 0; round < 4 && view.breaker(liar.peerId).state === 'closed'; round++) {
      const ids = await runHonestJobs(c, honest);
      const onLiar = (await attemptsOf(c, ids)).filter((a) => a.providerId === liar.peerId);
      expect(maxOverlap(onLiar)).toBeLessThanOrEqual(SLOW_START_INITIAL_WINDOW);
      lost.push(...onLiar);
    }
    expect(lost.length).toBeGreaterThanOrEqual(3);
    expect(lost.every((a) => a.state === 'LOST' && a.error?.startsWith('TIMEOUT'))).toBe(true);
    const perJob = new Map<string, number>();
    for (const a of lost) perJob.set(a.jobId, (perJob.get(a.jobId) ?? 0) + 1);
    expect(Math.max(...perJob.values())).toBe(1); // each job lost it once and never went back
    expect(view.breaker(liar.peerId).state).not.toBe('closed');
    // Admins see it too: the breaker and the window its losses left it (the provider detail page).
    const detail = await api<{
      placement: { connected: boolean; breaker: string; concurrencyWindow: number; advertisedSlots: number };
    }>(c.url, 'GET', `/v1/admin/providers/${liar.peerId}`, { key: c.adminKey });
    expect(detail.status).toBe(200);
    expect(detail.body.placement).toMatchObject({ connected: true, concurrencyWindow: 1 });
    expect(detail.body.placement.breaker).not.toBe('closed');
    expect(detail.body.placement.advertisedSlots).toBeGreaterThan(SLOW_START_INITIAL_WINDOW);
    const row = await waitFor('the liar reputation to drop', async () => {
      const [p] = await query<{ reputation: number }>(
        c.databaseUrl,
        'SELECT reputation FROM "Provider" WHERE "peerId" = $1',
        [liar.peerId],
      );
      return p && p.reputation < 0.5 ? p : undefined;
    });
    expect(row.reputation).toBeLessThan(0.5);
    const kinds = await query<{ kind: string }>(
      c.databaseUrl,
      'SELECT DISTINCT kind FROM "ReputationEvent" WHERE "peerId" = $1',
      [liar.peerId],
    );
    expect(kinds.map((k) => k.kind)).toContain('missed_deadline');
    // While its breaker is open the liar gets nothing: a further job goes straight to the honest agent.
    const before = liar.streams;
    await runHonestJobs(c, honest);
    expect(liar.streams).toBe(before);
    await liar.stop();
    attackers.splice(attackers.indexOf(liar), 1);
  }, 120_000);

  it('a liar that does not speak the job protocol: honest jobs complete, each job tries it at most once', async () => {
    const liar = await startLiar(c, 'no-protocol');
    attackers.push(liar);
    await waitFor('the liar to be placeable', async () =>
      view.isConnected(liar.peerId) && view.gflops(liar.peerId) ? true : undefined,
    );
    const ids = await runHonestJobs(c, honest);
    const lost = (await attemptsOf(c, ids)).filter((a) => a.providerId === liar.peerId);
    expect(lost.length).toBeGreaterThanOrEqual(1);
    expect(lost.every((a) => a.state === 'LOST')).toBe(true);
    expect(new Set(lost.map((a) => a.jobId)).size).toBe(lost.length);
    const kinds = await query<{ kind: string }>(
      c.databaseUrl,
      'SELECT DISTINCT kind FROM "ReputationEvent" WHERE "peerId" = $1',
      [liar.peerId],
    );
    expect(kinds.map((k) => k.kind)).toContain('lost_attempt');
    await liar.stop();
    attackers.splice(attackers.indexOf(liar), 1);
  }, 120_000);

  it('a provider sending forged receipts loses reputation and p2p score; honest jobs complete', async () => {
    const forger = await startForger(c);
    attackers.push(forger);
    await waitFor('the forger to be placeable', async () =>
      view.isConnected(forger.peerId) && view.gflops(forger.peerId) ? true : undefined,
    );
    // One job at a time (each offer travels alone on the job protocol, the forger serves only that),
    // with the honest agent drained until the forger has answered: placement would otherwise prefer
    // the honest agent once its verified jobs prove its speed, and the forger would never be tried.
    const ids: string[] = [];
    const admin = async (action: 'drain' | 'undrain'): Promise<void> => {
      const res = await api(c.url, 'POST', `/v1/admin/providers/${honest.peerId}/${action}`, {
        key: c.adminKey,
        body: { reason: `placement test: ${action}` },
      });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    };
    for (let i = 0; i < 2; i++) {
      await admin('drain');
      const job = await submit(c);
      ids.push(job.id);
      await waitFor(
        'the forger to answer an offer',
        async () =>
          (await attemptsOf(c, [job.id])).some((a) => a.providerId === forger.peerId) ? true : undefined,
        10_000,
      ).catch(() => undefined); // hung up after its penalties: the job goes to the honest agent
      await admin('undrain');
      await waitFor('the job to complete on the honest agent', async () => {
        const body = (await api<JobBody>(c.url, 'GET', `/v1/jobs/${job.id}`, { key: c.devKey })).body;
        return body.state === 'COMPLETED' ? true : undefined;
      });
    }
    const forged = (await attemptsOf(c, ids)).filter((a) => a.providerId === forger.peerId);
    expect(forged.length).toBeGreaterThanOrEqual(1);
    // Forged receipts fail their attempts; once its p2p score falls low enough the forger is hung up
    // on, and attempts still open on it are lost.
    const bad = forged.filter((a) => a.state === 'FAILED' && a.error?.startsWith('BAD_RECEIPT'));
    expect(bad.length).toBeGreaterThanOrEqual(1);
    expect(forged.every((a) => bad.includes(a) || a.state === 'LOST')).toBe(true);
    const kinds = await waitFor('the forged_receipt reputation event', async () => {
      const rows = await query<{ kind: string }>(
        c.databaseUrl,
        'SELECT DISTINCT kind FROM "ReputationEvent" WHERE "peerId" = $1',
        [forger.peerId],
      );
      return rows.some((r) => r.kind === 'forged_receipt') ? rows : undefined;
    });
    expect(kinds.map((k) => k.kind)).toContain('forged_receipt');
    const gossip = (c.running.app.get(P2pService) as unknown as { gossip: GossipService | null }).gossip;
    expect(gossip?.peerScore.getScore(forger.peerId)).toBeLessThanOrEqual(-10 * bad.length + 1);
    await forger.stop();
    attackers.splice(attackers.indexOf(forger), 1);
  }, 120_000);

  it('ghost adverts (identities that never connected here) get no offers and are not listed', async () => {
    // A relay: a listening node connected to the coordinator; ghosts connect only to it.
    const relay = await createGpumeshNode({
      listen: ['/ip4/127.0.0.1/tcp/0'],
      bootstrap: await coordinatorAddrs(c),
    });
    extra.push(relay);
    const relayGossip = startGossip(relay, {});
    const ghosts: { node: GpumeshNode; gossip: GossipService; wallet: Wallet }[] = [];
    for (let i = 0; i < 3; i++) {
      const node = await createGpumeshNode({
        listen: [],
        bootstrap: relay.getMultiaddrs().map((a) => a.toString()),
      });
      extra.push(node);
      ghosts.push({
        node,
        gossip: startGossip(node, {}),
        wallet: Wallet.createRandom() as unknown as Wallet,
      });
    }
    const ghostIds = ghosts.map((g) => nodePeerId(g.node));
    // One more ghost whose advert reaches the view directly (as a relayed one would), whatever the
    // gossip layer's own relay guards do: it is parked, not placeable.
    const direct = await createGpumeshNode({ listen: [] });
    extra.push(direct);
    const directId = nodePeerId(direct);
    const directAdvert = await liarAdvert(Wallet.createRandom() as unknown as Wallet, directId);
    await view.onAdvert(directAdvert.payload);
    const timer = setInterval(() => {
      for (const g of ghosts)
        void liarAdvert(g.wallet, nodePeerId(g.node))
          .then((a) => g.gossip.publishAdvert(a))
          .catch(() => 0);
    }, 300);
    try {
      expect(view.isConnected(directId)).toBe(false);
      const ids = await runHonestJobs(c, honest);
      const attempts = await attemptsOf(c, ids);
      for (const a of attempts) {
        expect(ghostIds).not.toContain(a.providerId);
        expect(a.providerId).not.toBe(directId);
      }
      const listed = (await api<ProviderBody[]>(c.url, 'GET', '/v1/providers?limit=500')).body.map(
        (p) => p.peerId,
      );
      for (const id of [...ghostIds, directId]) expect(listed).not.toContain(id);
      const rows = await query(c.databaseUrl, 'SELECT 1 FROM "Provider" WHERE "peerId" = ANY($1)', [
        [...ghostIds, directId],
      ]);
      expect(rows).toHaveLength(0);
      // The advert reached the view and was parked there (not placeable), not lost on the way.
      expect(view.parkedCount()).toBeGreaterThanOrEqual(1);
    } finally {
      clearInterval(timer);
      for (const g of ghosts) g.gossip.stop();
      relayGossip.stop();
    }
  }, 120_000);

  it('a lapsed advert: the provider leaves the public list at once and its row goes OFFLINE', async () => {
    const ttlMs = 2_000;
    const lapsing = await startLiar(c, 'silent', { ttlMs, advertise: false });
    attackers.push(lapsing);
    // Its one advert may have raced the connection: send it again once connected.
    await waitFor('the lapsing provider to connect', async () =>
      view.isConnected(lapsing.peerId) ? true : undefined,
    );
    const listedNow = async (): Promise<boolean> =>
      (await api<ProviderBody[]>(c.url, 'GET', '/v1/providers?limit=500')).body.some(
        (p) => p.peerId === lapsing.peerId,
      );
    const advertAt = Date.now();
    const gossip = startGossip(lapsing.node, {});
    try {
      const wallet = Wallet.createRandom() as unknown as Wallet;
      await waitFor(
        'the lapsing provider to be listed',
        async () => {
          await gossip.publishAdvert(await liarAdvert(wallet, lapsing.peerId, ttlMs)).catch(() => 0);
          return (await listedNow()) ? true : undefined;
        },
        10_000,
      );
    } finally {
      gossip.stop();
    }
    // Gone from the public list within one advert lifetime (plus the time it took to be listed).
    await waitFor(
      'the lapsed provider to leave the list',
      async () => ((await listedNow()) ? undefined : true),
      ttlMs + 2_000,
    );
    const gone = Date.now() - advertAt;
    console.info(
      `[placement] lapsed provider left the public list ${gone} ms after its first advert (ttl ${ttlMs} ms)`,
    );
    // And its row is swept OFFLINE (the sweep runs every LAPSED_SWEEP_EVERY_MS in every process).
    await waitFor(
      'the lapsed row to go OFFLINE',
      async () => {
        const [p] = await query<{ status: string }>(
          c.databaseUrl,
          'SELECT status::text AS status FROM "Provider" WHERE "peerId" = $1',
          [lapsing.peerId],
        );
        return p?.status === 'OFFLINE' ? true : undefined;
      },
      10_000,
    );
    // The dashboard counts only live providers.
    const overview = await api<{ providersOnline: number }>(c.url, 'GET', '/v1/admin/overview', {
      key: c.adminKey,
    });
    expect(overview.status).toBe(200);
    if (overview.body.providersOnline !== 1) {
      console.info(
        await query(
          c.databaseUrl,
          'SELECT "peerId", status, "advertExpiresAt", "lastSeenAt" FROM "Provider"',
        ),
      );
    }
    expect(overview.body.providersOnline).toBe(1);
  }, 60_000);

  it('old ghost rows left ONLINE with lapsed adverts are swept OFFLINE', async () => {
    await query(
      c.databaseUrl,
      `INSERT INTO "Provider" ("peerId", address, "operatorId", status, backend, gpus, gflops, "pricePerUnit",
                               slots, "freeSlots", advert, "advertExpiresAt", "lastSeenAt", "updatedAt")
       SELECT 'ghost-' || g, '0xghost', '0xghost', 'ONLINE', 'cpu', '[]', 1, 1, 1, 1, '{}',
              now() - interval '1 minute', now(), now()
         FROM generate_series(1, 500) g`,
    );
    const listed = (await api<ProviderBody[]>(c.url, 'GET', '/v1/providers?limit=500')).body;
    expect(listed.filter((p) => p.peerId.startsWith('ghost-'))).toHaveLength(0);
    expect(await view.sweepLapsed()).toBeGreaterThanOrEqual(500);
    expect(await view.sweepLapsed()).toBe(0); // idempotent
    const [row] = await query<{ n: number }>(
      c.databaseUrl,
      `SELECT count(*)::int AS n FROM "Provider" WHERE "peerId" LIKE 'ghost-%' AND status = 'ONLINE'`,
    );
    expect(row.n).toBe(0);
  });
});
