// Artifacts are private (issue 25, part 7), against a real coordinator (PostgreSQL, Redis, libp2p),
// an in-process provider that fetches models over the artifact protocol, and a bare libp2p stranger:
//  - REST: a private model is ARTIFACT_NOT_FOUND to other accounts (the same answer as a missing
//    one), listed only for its owner; a second account uploading the same bytes becomes an owner
//    (201, not "already stored"); only owners change the public flag;
//  - jobs: another account's private model is refused at submission (and dry run) with the code of a
//    missing one; a public model is usable by everyone, and private again once its owner says so;
//  - p2p: a stranger asking for a stored model gets FORBIDDEN (the same answer as for a missing hash)
//    and is cut off after repeated refusals; a provider with an offer of a job using the model fetches
//    it and the job completes, and its grant ends with the offer; a canary copied under the platform
//    account runs on the developer's private model.
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ArtifactError,
  MIN_SCORE_BEFORE_DISCONNECT,
  PEER_ACTION_SCORE,
  PeerAction,
  createGpumeshNode,
  fetchArtifact,
  type GpumeshNode,
} from '@gpumesh/p2p';
import { multiaddr } from '@multiformats/multiaddr';
import { CanaryService } from '../../apps/coordinator/src/verification/canary.service.js';
import { VerificationRepository } from '../../apps/coordinator/src/verification/verification.repository.js';
import { fundedDeveloper, type TestDeveloper } from '../helpers/accounts.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { startModelAgent, type ModelAgent } from '../verification/model-agent.js';
import { inferenceBody, mlp, saveLayers, type SavedModel } from '../verification/models.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

/**
 * Refusals after which the coordinator hangs up on a stranger: each costs MidToleranceError and the
 * score decays a little between them, so one more than an exact division.
 */
const REFUSALS_BEFORE_HANGUP =
  Math.floor(MIN_SCORE_BEFORE_DISCONNECT / PEER_ACTION_SCORE[PeerAction.MidToleranceError]) + 1;

interface ArtifactBody {
  hash: string;
  owned: boolean;
  public: boolean;
  sizeBytes: number;
}
interface ErrorBody {
  error: { code: string; message: string };
}

let c: TestCoordinator;
let db: pg.Client;
let bob: TestDeveloper;
let coordinatorPeer = '';
let coordinatorAddr = '';
let provider: ModelAgent | undefined;
const nodes: GpumeshNode[] = [];

/** Models: `secret` stays Alice's private one; `shared` is made public; `copied` Bob uploads too. */
let secret: SavedModel;
let shared: SavedModel;
let copied: SavedModel;

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

async function finished(id: string): Promise<{ state: string; error: string | null }> {
  return waitFor(`job ${id}`, async () => {
    const { rows } = await db.query<{ state: string; error: string | null }>(
      'SELECT state::text, error FROM "Job" WHERE id = $1',
      [id],
    );
    return rows[0] && isTerminal(rows[0].state) ? rows[0] : undefined;
  });
}

function upload(model: SavedModel, key: string, extra: Record<string, unknown> = {}) {
  return api<ArtifactBody & ErrorBody>(c.url, 'POST', '/v1/artifacts', {
    key,
    body: {
      format: 'layers',
      modelJson: model.modelJson,
      weights: Buffer.from(model.weights).toString('base64'),
      ...extra,
    },
  });
}

function submit(key: string, body: Record<string, unknown>, path = '/v1/jobs') {
  return api<{ id: string } & ErrorBody>(c.url, 'POST', path, { key, body });
}

function connected(node: GpumeshNode): boolean {
  return node.getConnections().some((conn) => conn.remotePeer.toString() === coordinatorPeer);
}

/** The error an account gets for a hash, with the hash itself blanked (to compare two answers). */
function blanked(body: ErrorBody, hash: string): ErrorBody {
  return { error: { ...body.error, message: body.error.message.replaceAll(hash, '<hash>') } };
}

beforeAll(async () => {
  c = await startTestCoordinator({
    DISPATCH_BACKOFF_MS: '100',
    DISPATCH_ATTEMPTS: '20',
    OFFER_ACCEPT_TIMEOUT_MS: '10000',
  });
  db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  bob = await fundedDeveloper(c, 10n ** 12n);
  secret = await saveLayers(mlp(6, [8], 3, 41));
  shared = await saveLayers(mlp(6, [8], 3, 42));
  copied = await saveLayers(mlp(6, [8], 3, 43));
  const network = await api<{ peers: { peerId: string; multiaddrs: string[] }[] }>(
    c.url,
    'GET',
    '/v1/network',
  );
  coordinatorPeer = network.body.peers[0].peerId;
  coordinatorAddr = network.body.peers[0].multiaddrs[0];
}, 120_000);

afterAll(async () => {
  await provider?.stop().catch(() => undefined);
  await Promise.all(nodes.map(async (n) => n.stop()));
  await db?.end().catch(() => undefined);
  await c?.close();
});

describe('artifacts over REST', () => {
  it('a private artifact is not found by anyone but its owner (and admins); only owners list it', async () => {
    const first = await upload(secret, c.devKey);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body).toMatchObject({ hash: secret.hash, owned: true, public: false });
    expect((await upload(secret, c.devKey)).status).toBe(200);

    const mine = await api<ArtifactBody>(c.url, 'GET', `/v1/artifacts/${secret.hash}`, { key: c.devKey });
    expect(mine.status).toBe(200);
    expect(mine.body).toMatchObject({ owned: true, public: false, sizeBytes: secret.weights.byteLength });

    const theirs = await api<ErrorBody>(c.url, 'GET', `/v1/artifacts/${secret.hash}`, { key: bob.key });
    const missingHash = 'ab'.repeat(32);
    const missing = await api<ErrorBody>(c.url, 'GET', `/v1/artifacts/${missingHash}`, { key: bob.key });
    expect(theirs.status).toBe(404);
    expect(theirs.body.error.code).toBe('ARTIFACT_NOT_FOUND');
    expect(blanked(theirs.body, secret.hash)).toEqual(blanked(missing.body, missingHash));

    const admin = await api<ArtifactBody>(c.url, 'GET', `/v1/artifacts/${secret.hash}`, { key: c.adminKey });
    expect(admin.status).toBe(200);

    const aliceList = await api<{ items: ArtifactBody[] }>(c.url, 'GET', '/v1/artifacts', { key: c.devKey });
    expect(aliceList.body.items.map((a) => a.hash)).toContain(secret.hash);
    const bobList = await api<{ items: ArtifactBody[] }>(c.url, 'GET', '/v1/artifacts', { key: bob.key });
    expect(bobList.status).toBe(200);
    expect(bobList.body.items.map((a) => a.hash)).not.toContain(secret.hash);

    // another account cannot share it, and learns nothing from trying
    const patch = await api<ErrorBody>(c.url, 'PATCH', `/v1/artifacts/${secret.hash}`, {
      key: bob.key,
      body: { public: true },
    });
    expect(patch.status).toBe(404);
    expect(patch.body.error.code).toBe('ARTIFACT_NOT_FOUND');
  });

  it('two accounts uploading the same bytes both own them; the second is told nothing of the first', async () => {
    expect((await upload(copied, c.devKey)).status).toBe(201);
    const second = await upload(copied, bob.key);
    expect(second.status, JSON.stringify(second.body)).toBe(201);
    expect(second.body).toMatchObject({ hash: copied.hash, owned: true, public: false });
    const bobList = await api<{ items: ArtifactBody[] }>(c.url, 'GET', '/v1/artifacts', { key: bob.key });
    expect(bobList.body.items.map((a) => a.hash)).toEqual([copied.hash]);
    const { rows } = await db.query<{ n: string }>(
      'SELECT count(*)::text AS n FROM "Artifact" WHERE hash = $1',
      [copied.hash],
    );
    expect(rows[0].n).toBe('1');
  });

  it('lists in pages with a cursor', async () => {
    const first = await api<{ items: ArtifactBody[]; nextCursor: string | null }>(
      c.url,
      'GET',
      '/v1/artifacts?limit=1',
      { key: c.devKey },
    );
    expect(first.body.items).toHaveLength(1);
    expect(first.body.nextCursor).not.toBeNull();
    const next = await api<{ items: ArtifactBody[] }>(
      c.url,
      'GET',
      `/v1/artifacts?limit=1&cursor=${first.body.nextCursor}`,
      { key: c.devKey },
    );
    expect(next.body.items).toHaveLength(1);
    expect(next.body.items[0].hash).not.toBe(first.body.items[0].hash);
    const bad = await api<ErrorBody>(c.url, 'GET', '/v1/artifacts?cursor=nope', { key: c.devKey });
    expect(bad.status).toBe(400);
  });
});

describe('jobs reference only their owner’s or public artifacts', () => {
  it('refuses another account’s private model with the code of a missing one; public ones are usable by all', async () => {
    expect((await upload(secret, c.devKey)).status).toBeLessThan(300);
    const refused = await submit(bob.key, inferenceBody(secret, 2, 6));
    expect(refused.status).toBe(404);
    expect(refused.body.error.code).toBe('ARTIFACT_NOT_FOUND');
    const missing = await submit(bob.key, inferenceBody({ ...secret, hash: 'cd'.repeat(32) }, 2, 6));
    expect(blanked(refused.body, secret.hash)).toEqual(blanked(missing.body, 'cd'.repeat(32)));
    const dryRun = await submit(bob.key, inferenceBody(secret, 2, 6), '/v1/jobs/dry-run');
    expect(dryRun.status).toBe(404);
    expect(dryRun.body.error.code).toBe('ARTIFACT_NOT_FOUND');
    const batch = await submit(bob.key, { jobs: [inferenceBody(secret, 2, 6)] }, '/v1/jobs/batch');
    expect(batch.status).toBe(404);

    // uploaded public at once: usable by Bob; Bob may read it but not change it
    const up = await upload(shared, c.devKey, { public: true });
    expect(up.status).toBe(201);
    expect(up.body.public).toBe(true);
    const seen = await api<ArtifactBody>(c.url, 'GET', `/v1/artifacts/${shared.hash}`, { key: bob.key });
    expect(seen.status).toBe(200);
    expect(seen.body).toMatchObject({ owned: false, public: true });
    const notHis = await api<ErrorBody>(c.url, 'PATCH', `/v1/artifacts/${shared.hash}`, {
      key: bob.key,
      body: { public: false },
    });
    expect(notHis.status).toBe(403);
    expect(notHis.body.error.code).toBe('FORBIDDEN');
    const bobJob = await submit(bob.key, inferenceBody(shared, 2, 6));
    expect(bobJob.status, JSON.stringify(bobJob.body)).toBe(201);

    // the owner makes it private again: new jobs of Bob's are refused
    const unshare = await api<ArtifactBody>(c.url, 'PATCH', `/v1/artifacts/${shared.hash}`, {
      key: c.devKey,
      body: { public: false },
    });
    expect(unshare.status).toBe(200);
    expect(unshare.body.public).toBe(false);
    expect((await submit(bob.key, inferenceBody(shared, 2, 6))).status).toBe(404);
    const bad = await api<ErrorBody>(c.url, 'PATCH', `/v1/artifacts/${shared.hash}`, {
      key: c.devKey,
      body: { public: 'yes' },
    });
    expect(bad.status).toBe(400);
    // and shares it for good
    expect(
      (
        await api(c.url, 'PATCH', `/v1/artifacts/${shared.hash}`, {
          key: c.devKey,
          body: { public: true },
        })
      ).status,
    ).toBe(200);
  }, 60_000);
});

describe('artifacts over p2p', () => {
  it('refuses a stranger (FORBIDDEN, same answer for a missing hash) and hangs up after repeated refusals', async () => {
    const stranger = await createGpumeshNode({ listen: [] });
    nodes.push(stranger);
    await stranger.dial(multiaddr(coordinatorAddr));
    const started = performance.now();
    const stored = await fetchArtifact(stranger, coordinatorPeer, secret.hash).catch((e: unknown) => e);
    console.info(`[timing] a stranger's fetch refused in ${(performance.now() - started).toFixed(1)} ms`);
    const missing = await fetchArtifact(stranger, coordinatorPeer, 'ef'.repeat(32)).catch((e: unknown) => e);
    for (const err of [stored, missing]) {
      expect(err).toBeInstanceOf(ArtifactError);
      expect((err as ArtifactError).code).toBe('FORBIDDEN');
    }
    expect((missing as Error).message).toBe((stored as Error).message);
    // a public model is no exception: fetching is for providers with an offer, not for the public
    const pub = await fetchArtifact(stranger, coordinatorPeer, shared.hash).catch((e: unknown) => e);
    expect((pub as ArtifactError).code).toBe('FORBIDDEN');
    expect(connected(stranger)).toBe(true);
    for (let i = 3; i < REFUSALS_BEFORE_HANGUP - 1; i += 1) {
      await fetchArtifact(stranger, coordinatorPeer, secret.hash).catch(() => undefined);
    }
    expect(connected(stranger)).toBe(true);
    // the last refusal crosses the disconnect threshold
    await fetchArtifact(stranger, coordinatorPeer, secret.hash).catch(() => undefined);
    await waitFor(
      'the coordinator to hang up on the stranger',
      async () => (connected(stranger) ? undefined : true),
      10_000,
    );
  });

  it('a provider with an offer of a job using the model fetches it and the job completes; the grant ends with the offer', async () => {
    provider = await startModelAgent(c.url);
    await waitFor('the provider online', async () => {
      const list = await api<{ peerId: string; status: string }[]>(c.url, 'GET', '/v1/providers');
      return list.body.some((p) => p.peerId === provider?.peerId && p.status === 'ONLINE') ? true : undefined;
    });
    const job = await submit(c.devKey, inferenceBody(secret, 4, 6));
    expect(job.status, JSON.stringify(job.body)).toBe(201);
    const done = await finished(job.body.id);
    expect(done.state, done.error ?? '').toBe('COMPLETED');

    // the offer is over: the same provider is refused now
    const after = await fetchArtifact(provider.node, coordinatorPeer, secret.hash).catch((e: unknown) => e);
    expect((after as ArtifactError).code).toBe('FORBIDDEN');

    // another account's job on a public model runs on the same provider
    const bobs = await submit(bob.key, inferenceBody(shared, 3, 6));
    expect(bobs.status, JSON.stringify(bobs.body)).toBe(201);
    expect((await finished(bobs.body.id)).state).toBe('COMPLETED');
  }, 90_000);

  it('a canary copied under the platform account runs on the developer’s private model', async () => {
    const real = await submit(c.devKey, inferenceBody(secret, 5, 6, {}, 9));
    expect((await finished(real.body.id)).state).toBe('COMPLETED');
    const job = await c.running.app.get(VerificationRepository).findJob(real.body.id);
    if (!job) throw new Error('the real job is gone');
    const canary = await c.running.app.get(CanaryService).mirror(job, 1);
    if (!canary) throw new Error('no canary was made');
    const done = await finished(canary.id);
    expect(done.state, done.error ?? '').toBe('COMPLETED');
  }, 90_000);
});
