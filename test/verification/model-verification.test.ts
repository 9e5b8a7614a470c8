// Verification of inference and train jobs against the coordinator's own reference, end to end: a
// real coordinator (PostgreSQL, Redis, libp2p; its reference worker thread), a real provider agent
// process (dist, wasm backend: an honest result that differs from the coordinator's cpu reference in
// the last bits) and in-process cheating providers that run the model and alter a few outputs.
//  - an inference canary's answer, computed ahead by the coordinator, matches the honest agent
//    within tolerance; a cheater's wrong inference canary result is caught and the cheater banned;
//  - redundant inference and train jobs on the honest agent and a cheater disagree; with no third
//    provider the coordinator recomputes the job (worker thread) and the honest side wins;
//  - the evidence bundles (inference, train, canary) pass `gpumesh verify-evidence` (exit 0) and
//    tampered ones fail (exit 1);
//  - GET /v1/evidence/:hash: a stranger (no key, or another developer's key) gets the redacted
//    bundle (no model weights while the model is private, no job inputs or outputs) under the same
//    evidence hash, which verify-evidence reports as integrity-only (exit 3); the job's owner, an
//    admin and the accused operator (signed in with its wallet) get the full bundle, which verify-evidence recomputes (exit 0); a public model's weights
//    are disclosed to strangers;
//  - redundant copies of one job reach their providers under different wire ids;
//  - a reference over REFERENCE_WORK_BUDGET is refused with the reason.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeReference } from '@gpumesh/compute';
import {
  decodeTensor,
  encodeTensor,
  type JobSpec,
  type ResultReceipt,
  type Signed,
  type TensorWire,
} from '@gpumesh/protocol';
import { evidenceHash, type EvidenceBundle } from '@gpumesh/verification';
import { fundedDeveloper } from '../helpers/accounts.js';
import { CanaryService } from '../../apps/coordinator/src/verification/canary.service.js';
import { VerifierService } from '../../apps/coordinator/src/verification/verifier.service.js';
import { VerificationRepository } from '../../apps/coordinator/src/verification/verification.repository.js';
import { compareResults } from '../../apps/coordinator/src/verification/compare.js';
import { api, startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { AGENT_MAIN, assertBuilt, runProcess, startProcess, type Started } from '../helpers/processes.js';
import { startModelAgent, zeroed, type ModelAgent } from './model-agent.js';
import { asArtifact, inferenceBody, mlp, saveLayers, trainBody, type SavedModel } from './models.js';
import { isTerminal } from '../../apps/coordinator/src/jobs/job-state.js';

const CLI = join(process.cwd(), 'dist/apps/cli/src/main.js');
const PASSPHRASE = 'model-verification-passphrase';

let c: TestCoordinator;
let db: pg.Client;
let dir: string;
let honest: Started | undefined;
let honestPeer = '';
const cheaters: ModelAgent[] = [];
let classifier: SavedModel;
let regressor: SavedModel;

function gpumesh(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

async function rows<T extends pg.QueryResultRow>(text: string, params: unknown[] = []): Promise<T[]> {
  return (await db.query<T>(text, params)).rows;
}

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until)
      throw new Error(`timed out waiting for ${what}\n${honest?.output().slice(-2000) ?? ''}`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

interface JobRow {
  id: string;
  state: string;
  error: string | null;
  result: { outputs: TensorWire[] } | null;
  spec: JobSpec;
  specHash: string;
}

function finished(id: string): Promise<JobRow> {
  return waitFor(`job ${id}`, async () => {
    const [row] = await rows<JobRow>(
      'SELECT id::text, state::text, error, result, spec, "specHash" FROM "Job" WHERE id = $1',
      [id],
    );
    return row && isTerminal(row.state) ? row : undefined;
  });
}

async function submit(body: Record<string, unknown>): Promise<string> {
  const res = await api<{ id: string }>(c.url, 'POST', '/v1/jobs', { key: c.devKey, body });
  if (res.status !== 201) throw new Error(`submit: ${res.status} ${JSON.stringify(res.body)}`);
  return res.body.id;
}

async function upload(model: SavedModel): Promise<void> {
  const res = await api<{ hash: string }>(c.url, 'POST', '/v1/artifacts', {
    key: c.devKey,
    body: {
      format: 'layers',
      modelJson: model.modelJson,
      weights: Buffer.from(model.weights).toString('base64'),
    },
  });
  expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
  expect(res.body.hash).toBe(model.hash);
}

async function providersOnline(peers: string[]): Promise<void> {
  await waitFor(`providers ${peers.join(', ')} online`, async () => {
    const list = await api<{ peerId: string; status: string }[]>(c.url, 'GET', '/v1/providers');
    const online = new Set(list.body.filter((p) => p.status === 'ONLINE').map((p) => p.peerId));
    return peers.every((p) => online.has(p)) ? true : undefined;
  });
}

async function status(peerId: string): Promise<string | undefined> {
  const [row] = await rows<{ status: string }>('SELECT status::text FROM "Provider" WHERE "peerId" = $1', [
    peerId,
  ]);
  return row?.status;
}

async function evidenceOf(peerId: string): Promise<EvidenceBundle> {
  const [row] = await waitFor(`evidence against ${peerId}`, async () => {
    const found = await rows<{ bundle: string }>('SELECT bundle FROM "Evidence" WHERE "peerId" = $1', [
      peerId,
    ]);
    return found.length > 0 ? found : undefined;
  });
  return JSON.parse(row.bundle) as EvidenceBundle;
}

/** verify-evidence exits 0 on the bundle, and 1 once its accused outputs are swapped for honest ones. */
async function checkEvidenceCli(bundle: EvidenceBundle, name: string): Promise<void> {
  const file = join(dir, `${name}.json`);
  await writeFile(file, JSON.stringify(bundle, null, 2));
  const valid = await gpumesh('verify-evidence', file, '--json');
  expect(valid.stderr).toBe('');
  const verdict = JSON.parse(valid.stdout) as { valid: boolean; reasons: string[]; checks: string[] };
  expect(verdict.reasons).toEqual([]);
  expect(verdict.checks.join('\n')).toMatch(/recomputed the job on cpu/);
  expect(valid.code).toBe(0);

  const tampered = structuredClone(bundle);
  tampered.disclosed = { ...tampered.disclosed, accusedOutputs: tampered.disclosed?.referenceOutputs };
  const tamperedFile = join(dir, `${name}-tampered.json`);
  await writeFile(tamperedFile, JSON.stringify(tampered));
  const bad = await gpumesh('verify-evidence', tamperedFile);
  expect(bad.stdout).toMatch(/INVALID/);
  expect(bad.stdout).toMatch(/outputHash does not match/);
  expect(bad.code).toBe(1);

  // The model in the bundle is what the recomputation runs: altered weights are caught by its hash.
  const swapped = structuredClone(bundle);
  const w = Buffer.from(swapped.disclosed?.artifacts?.[0]?.weights ?? '', 'base64');
  w[0] ^= 0x40;
  if (swapped.disclosed?.artifacts?.[0]) swapped.disclosed.artifacts[0].weights = w.toString('base64');
  const swappedFile = join(dir, `${name}-weights.json`);
  await writeFile(swappedFile, JSON.stringify(swapped));
  const badModel = await gpumesh('verify-evidence', swappedFile);
  expect(badModel.stdout).toMatch(/disclosed\.artifacts\[0\]: content does not match its hash/);
  expect(badModel.code).toBe(1);
}

interface EvidenceBody {
  hash: string;
  bundle: string;
  access: 'full' | 'redacted';
  withheld: string[];
  jobId: string;
}

/**
 * Who sees what of the evidence against `peerId` over the API: strangers the redacted bundle (same
 * evidence hash, no private weights, inputs or outputs: verify-evidence exit 3), the job's owner and
 * an admin the full bundle (verify-evidence exit 0). Returns the full bundle from the API.
 */
async function checkEvidenceAccess(
  full: EvidenceBundle,
  name: string,
  model: SavedModel,
  accused: ModelAgent,
): Promise<EvidenceBundle> {
  const hash = evidenceHash(full);
  const stranger = await fundedDeveloper(c, 1n);
  const weights = Buffer.from(model.weights).toString('base64');
  const inputs = full.disclosed?.inputs ?? [];
  const outputs = [...(full.disclosed?.accusedOutputs ?? []), ...(full.disclosed?.referenceOutputs ?? [])];
  expect(inputs.length).toBeGreaterThan(0);
  expect(outputs.length).toBeGreaterThan(0);
  for (const key of [undefined, stranger.key]) {
    const res = await api<EvidenceBody>(c.url, 'GET', `/v1/evidence/${hash}`, { key });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.hash).toBe(hash);
    expect(res.body.access).toBe('redacted');
    expect(res.body.withheld).toEqual([
      'the job inputs',
      'the accused outputs',
      'the reference outputs',
      `the model ${model.hash}`,
    ]);
    // None of the private bytes, in any form.
    expect(res.body.bundle).not.toContain(weights.slice(0, 64));
    for (const t of [...inputs, ...outputs]) expect(res.body.bundle).not.toContain(t.data);
    const redacted = JSON.parse(res.body.bundle) as EvidenceBundle;
    expect(redacted.disclosed).toBeUndefined();
    expect(evidenceHash(redacted)).toBe(hash);
    const file = join(dir, `${name}-redacted.json`);
    await writeFile(file, res.body.bundle);
    const cli = await gpumesh('verify-evidence', file);
    expect(cli.stdout).toMatch(/CONSISTENT \(redacted\)/);
    expect(cli.stdout).toContain(`evidence hash ${hash}`);
    expect(cli.stdout).toMatch(/withheld +the model/);
    expect(cli.stdout).toMatch(/ok +accused receipt signed by 0x/);
    expect(cli.code).toBe(3);
    // A forged redacted bundle (accused digests swapped for the reference's) is caught without the data.
    const forged = { ...redacted, accused: { ...redacted.accused, outputs: redacted.reference.outputs } };
    await writeFile(file, JSON.stringify(forged));
    const bad = await gpumesh('verify-evidence', file);
    expect(bad.stdout).toMatch(/INVALID/);
    expect(bad.code).toBe(1);
  }
  const bad = await api(c.url, 'GET', `/v1/evidence/${hash}`, { key: 'gm_not-a-key' });
  expect(bad.status).toBe(401);
  // The accused provider's operator, signed in with its wallet, reads the evidence against it whole.
  const operator = await fundedDeveloper(c, 1n, accused.wallet);
  let served: EvidenceBundle | undefined;
  for (const key of [c.devKey, c.adminKey, operator.key]) {
    const res = await api<EvidenceBody>(c.url, 'GET', `/v1/evidence/${hash}`, { key });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toMatchObject({ hash, access: 'full', withheld: [] });
    expect(res.body.bundle).toContain(weights.slice(0, 64));
    served = JSON.parse(res.body.bundle) as EvidenceBundle;
    expect(served).toEqual(full);
  }
  // Once the model is public its weights are disclosed to strangers too (inputs and outputs are not).
  const share = await api(c.url, 'PATCH', `/v1/artifacts/${model.hash}`, {
    key: c.devKey,
    body: { public: true },
  });
  expect(share.status, JSON.stringify(share.body)).toBe(200);
  const open = await api<EvidenceBody>(c.url, 'GET', `/v1/evidence/${hash}`);
  const opened = JSON.parse(open.body.bundle) as EvidenceBundle;
  expect(opened.disclosed?.artifacts?.map((a) => a.hash)).toEqual([model.hash]);
  expect(opened.disclosed?.inputs).toBeUndefined();
  expect(open.body.withheld).toEqual(['the job inputs', 'the accused outputs', 'the reference outputs']);
  expect(evidenceHash(opened)).toBe(hash);
  const unshare = await api(c.url, 'PATCH', `/v1/artifacts/${model.hash}`, {
    key: c.devKey,
    body: { public: false },
  });
  expect(unshare.status).toBe(200);
  return served ?? full;
}

/** The offers of one job as stored: attempt rows, the receipts' wire ids, their providers. */
async function attemptsOf(jobId: string): Promise<
  {
    id: string;
    providerId: string;
    state: string;
    receipt: { payload: { jobId: string; attempt: number } } | null;
  }[]
> {
  return rows(
    `SELECT id::text, "providerId", state::text, receipt FROM "JobAttempt" WHERE "jobId" = $1 ORDER BY attempt`,
    [jobId],
  );
}

beforeAll(async () => {
  assertBuilt();
  c = await startTestCoordinator({
    REFERENCE_WORK_BUDGET: '50',
    DISPATCH_BACKOFF_MS: '100',
    DISPATCH_ATTEMPTS: '20',
    OFFER_ACCEPT_TIMEOUT_MS: '10000',
  });
  db = new pg.Client({ connectionString: c.databaseUrl });
  await db.connect();
  dir = await mkdtemp(join(tmpdir(), 'gpumesh-model-verification-'));
  classifier = await saveLayers(mlp(16, [32], 4, 17, true));
  regressor = await saveLayers(mlp(4, [8], 1, 29));
  await upload(classifier);
  await upload(regressor);

  const dataDir = join(dir, 'agent');
  const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE };
  await runProcess(
    AGENT_MAIN,
    [
      'init',
      '--coordinator',
      c.url,
      '--data-dir',
      dataDir,
      '--light-kdf',
      '--slots',
      '2',
      '--backend',
      'wasm',
    ],
    env,
  );
  const started = await startProcess(
    AGENT_MAIN,
    ['start', '--data-dir', dataDir, '--log-level', 'warn'],
    env,
    /gpumesh-agent ready: peer (\S+)/,
  );
  honest = started;
  honestPeer = started.match[1];
  await providersOnline([honestPeer]);
}, 120_000);

afterAll(async () => {
  for (const agent of cheaters) await agent.stop().catch(() => undefined);
  await honest?.stop();
  await db?.end().catch(() => undefined);
  await c?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('inference and train verification against the coordinator reference', () => {
  let realInference = '';

  it('answers an inference canary ahead of time; the honest agent matches it within tolerance', async () => {
    realInference = await submit(inferenceBody(classifier, 12, 16));
    const real = await finished(realInference);
    expect(real.state, real.error ?? '').toBe('COMPLETED');

    const repo = c.running.app.get(VerificationRepository);
    const job = await repo.findJob(realInference);
    if (!job) throw new Error('the real job is gone');
    const canary = await c.running.app.get(CanaryService).mirror(job, 1);
    if (!canary) throw new Error('no canary was made for an inference job');
    const spec = canary.spec as unknown as JobSpec;
    // Same kind, model and shapes as the real job, other values: an ordinary inference offer.
    expect(spec.kind).toBe('inference');
    expect(spec.kind === 'inference' && spec.model.hash).toBe(classifier.hash);
    expect(spec.inputs.map((t) => t.shape)).toEqual(real.spec.inputs.map((t) => t.shape));
    expect(canary.specHash).not.toBe(real.specHash);
    const answer = await repo.canaryAnswer(canary.id);
    const answerOutputs = answer?.outputs as unknown as TensorWire[];
    expect(answerOutputs).toHaveLength(1);

    const done = await finished(canary.id);
    expect(done.state, done.error ?? '').toBe('COMPLETED');
    const [attempt] = await attemptsOf(canary.id);
    expect(attempt).toMatchObject({ providerId: honestPeer, state: 'SUCCEEDED' });
    const delivered = done.result?.outputs ?? [];
    const agreement = compareResults(delivered, answerOutputs, { spec });
    expect(agreement.agree, agreement.reason).toBe(true);
    // Reputation is written after the completion commits.
    const kinds = await waitFor('the pass recorded', async () => {
      const events = await rows<{ kind: string }>(
        `SELECT kind FROM "ReputationEvent" WHERE "peerId" = $1 AND "jobId" = $2`,
        [honestPeer, canary.id],
      );
      return events.length > 0 ? events.map((e) => e.kind) : undefined;
    });
    expect(kinds).toContain('verified_pass');
    console.log(
      JSON.stringify({
        inferenceCanary: {
          maxRelativeL2: agreement.maxRelativeL2,
          maxAbs: agreement.maxAbs,
          bound: agreement.bound,
          bitIdentical: JSON.stringify(delivered) === JSON.stringify(answerOutputs),
        },
      }),
    );
  });

  it('breaks an inference disagreement with its own recompute: the honest side wins, copies had different wire ids', async () => {
    const cheater = await startModelAgent(c.url, { behaviour: 'wrong' });
    cheaters.push(cheater);
    await providersOnline([honestPeer, cheater.peerId]);
    const jobId = await submit(inferenceBody(classifier, 12, 16, { redundancy: 2 }, 8));
    const job = await finished(jobId);
    expect(job.state, job.error ?? '').toBe('COMPLETED');

    const attempts = await attemptsOf(jobId);
    const byPeer = new Map(attempts.map((a) => [a.providerId, a]));
    expect(byPeer.get(honestPeer)?.state).toBe('SUCCEEDED');
    expect(byPeer.get(cheater.peerId)?.state).toBe('FAILED');
    // The result is the honest one (it agrees with the coordinator's reference, not the cheat).
    const reference = await c.running.app.get(VerifierService).referenceOf(job.spec, 1n);
    if (!reference.ok) throw new Error(reference.reason);
    expect(compareResults(job.result?.outputs ?? [], reference.outputs, { spec: job.spec }).agree).toBe(true);
    const decided = await rows<{ data: { verification: { reference: string; rejected: string[] } } }>(
      `SELECT data FROM "JobEvent" WHERE "jobId" = $1 AND type = 'job.completed'`,
      [jobId],
    );
    expect(decided[0].data.verification).toMatchObject({
      reference: 'coordinator',
      rejected: [cheater.peerId],
    });
    await waitFor('the cheater banned', async () =>
      (await status(cheater.peerId)) === 'BANNED' ? true : undefined,
    );
    expect(await status(honestPeer)).toBe('ONLINE');

    // Wire ids: each copy went out under its own attempt row's id (attempt 1), not the job id.
    const [a, b] = attempts.slice(0, 2);
    expect(a.id).not.toBe(b.id);
    for (const row of [a, b]) {
      expect(row.receipt?.payload).toEqual(expect.objectContaining({ jobId: row.id, attempt: 1 }));
      expect(row.receipt?.payload.jobId).not.toBe(jobId);
    }
    const seen = cheater.offers.filter((o) => o.specHash === job.specHash);
    expect(seen).toHaveLength(1);
    expect(seen[0].offerId).toBe(byPeer.get(cheater.peerId)?.id);

    const bundle = await evidenceOf(cheater.peerId);
    expect(bundle.reference.source).toBe('coordinator');
    expect(bundle.job.id).toBe(jobId);
    expect(bundle.job.offerIds).toEqual([byPeer.get(cheater.peerId)?.id]);
    expect(bundle.artifacts?.[0]?.hash).toBe(classifier.hash);
    await checkEvidenceCli(
      await checkEvidenceAccess(bundle, 'inference-tiebreak', classifier, cheater),
      'inference-tiebreak',
    );
  });

  it('breaks a train disagreement with its own recompute: the honest side wins', async () => {
    // A cheater that does not train: its zero weights fit the data far worse than the reference's
    // (weights outside the tolerance alone prove nothing for training, see the last test).
    const cheater = await startModelAgent(c.url, { behaviour: 'zeros' });
    cheaters.push(cheater);
    await providersOnline([honestPeer, cheater.peerId]);
    const jobId = await submit(trainBody(regressor, 32, 4, { redundancy: 2 }));
    const job = await finished(jobId);
    expect(job.state, job.error ?? '').toBe('COMPLETED');
    const attempts = await attemptsOf(jobId);
    const byPeer = new Map(attempts.map((a) => [a.providerId, a]));
    expect(byPeer.get(honestPeer)?.state).toBe('SUCCEEDED');
    expect(byPeer.get(cheater.peerId)?.state).toBe('FAILED');
    const names = (job.result?.outputs ?? []).map((o) => o.name);
    expect(names).toEqual(['weights/h0/kernel', 'weights/h0/bias', 'weights/out/kernel', 'weights/out/bias']);
    await waitFor('the cheater banned', async () =>
      (await status(cheater.peerId)) === 'BANNED' ? true : undefined,
    );
    const bundle = await evidenceOf(cheater.peerId);
    expect(bundle.reference.source).toBe('coordinator');
    expect(bundle.job.spec.kind).toBe('train');
    await checkEvidenceCli(
      await checkEvidenceAccess(bundle, 'train-tiebreak', regressor, cheater),
      'train-tiebreak',
    );
    // Three agents, a reference recompute and the evidence CLI: about 30 s alone, twice that on a loaded machine.
  }, 180_000);

  it('catches a wrong inference canary result and bans the cheater', async () => {
    await honest?.stop();
    honest = undefined;
    const cheater = await startModelAgent(c.url, { behaviour: 'wrong' });
    cheaters.push(cheater);
    await providersOnline([cheater.peerId]);
    const job = await c.running.app.get(VerificationRepository).findJob(realInference);
    if (!job) throw new Error('the real job is gone');
    const canary = await c.running.app.get(CanaryService).mirror(job, 1);
    if (!canary) throw new Error('no canary was made');
    const done = await finished(canary.id);
    expect(done.state).toBe('FAILED');
    expect(done.error).toMatch(/did not match the known answer/);
    await waitFor('the cheater banned', async () =>
      (await status(cheater.peerId)) === 'BANNED' ? true : undefined,
    );
    const bundle = await evidenceOf(cheater.peerId);
    expect(bundle.reference.source).toBe('canary');
    expect(bundle.job.spec.kind).toBe('inference');
    await checkEvidenceCli(bundle, 'inference-canary');
  });

  it('refuses a reference over REFERENCE_WORK_BUDGET with the reason', async () => {
    const verifier = c.running.app.get(VerifierService);
    const big = await saveLayers(mlp(64, [128, 128], 8, 5));
    await upload(big);
    const body = inferenceBody(big, 1024, 64);
    const id = await submit(body);
    const [row] = await rows<{ workUnits: string }>('SELECT "workUnits"::text FROM "Job" WHERE id = $1', [
      id,
    ]);
    expect(BigInt(row.workUnits)).toBeGreaterThan(50n);
    const job = await c.running.app.get(VerificationRepository).findJob(id);
    if (!job) throw new Error('job not stored');
    expect(await verifier.reference(job)).toBeNull();
    const outcome = await verifier.referenceOf(job.spec as unknown as JobSpec, job.workUnits);
    expect(outcome).toMatchObject({ ok: false, code: 'OVER_BUDGET' });
    expect(!outcome.ok && outcome.reason).toMatch(
      new RegExp(`costs ${row.workUnits} work units, over the reference work budget of 50`),
    );
    const noted = await rows<{ data: { code: string; reason: string } }>(
      `SELECT data FROM "JobEvent" WHERE "jobId" = $1 AND type = 'verification.reference_unavailable'`,
      [id],
    );
    expect(noted[0]?.data.code).toBe('OVER_BUDGET');
    // The spec's own price is checked too, whatever the caller claims the job costs.
    const claimed = await verifier.referenceOf(job.spec as unknown as JobSpec, 1n);
    expect(claimed).toMatchObject({ ok: false, code: 'OVER_BUDGET' });
    await api(c.url, 'POST', `/v1/jobs/${id}/cancel`, { key: c.devKey });
  });

  it('judges train weights past the tolerance by their training loss: the same fit proves nothing, zeros are wrong', async () => {
    const verifier = c.running.app.get(VerifierService);
    const id = await submit(trainBody(regressor, 32, 4));
    await api(c.url, 'POST', `/v1/jobs/${id}/cancel`, { key: c.devKey });
    const job = await c.running.app.get(VerificationRepository).findJob(id);
    if (!job) throw new Error('job not stored');
    const spec = job.spec as unknown as JobSpec;
    const reference = await computeReference(spec, { backend: 'cpu', artifacts: [asArtifact(regressor)] });
    // The hidden units in reverse order: the very same function (the same loss), other weights, as
    // far from the reference as the drift of an ill-conditioned training on another backend.
    const permuted = reverseHiddenUnits(reference);
    expect(await verifier.agrees(job, permuted, reference)).toBe(false);
    const same = await verifier.judge(job, permuted, reference);
    expect(same).toMatchObject({ kind: 'undecided' });
    expect(same.kind === 'undecided' && same.reason).toMatch(/within the bound/);
    const wrong = await verifier.judge(job, zeroed(reference), reference);
    expect(wrong).toMatchObject({ kind: 'disagree' });
    expect(wrong.kind === 'disagree' && wrong.reason).toMatch(/training loss .* over the bound/);
    // No conviction for the permuted weights (nothing is written, the receipt is never read).
    const accused = {
      attemptId: randomUUID(),
      peerId: 'not-a-provider',
      receipt: {} as Signed<ResultReceipt>,
      outputs: permuted,
    };
    expect(
      await verifier.convict(job, accused, { source: 'coordinator', outputs: reference }, 'failed_check'),
    ).toBe(false);
    expect(await rows('SELECT 1 FROM "Evidence" WHERE "peerId" = $1', ['not-a-provider'])).toEqual([]);
    const notes = await rows<{ data: { outcome: string } }>(
      `SELECT data FROM "JobEvent" WHERE "jobId" = $1 AND type = 'verification.train_loss' ORDER BY id`,
      [id],
    );
    const outcomes = notes.map((n) => n.data.outcome);
    expect(outcomes.filter((o) => o === 'undecided').length).toBeGreaterThanOrEqual(2);
    expect(outcomes).toContain('disagree');
  });
});

/** A one-hidden-layer MLP's trained weights with its hidden units in reverse order. */
function reverseHiddenUnits(outputs: TensorWire[]): TensorWire[] {
  return outputs.map((t) => {
    const v = decodeTensor(t).values as Float32Array;
    const out = new Float32Array(v.length);
    if (t.name === 'weights/h0/kernel') {
      const [rows, cols] = t.shape; // [inputs, hidden]: reverse the columns
      for (let r = 0; r < rows; r++)
        for (let k = 0; k < cols; k++) out[r * cols + k] = v[r * cols + cols - 1 - k];
    } else if (t.name === 'weights/h0/bias' || t.name === 'weights/out/kernel') {
      for (let k = 0; k < v.length; k++) out[k] = v[v.length - 1 - k]; // [hidden] and [hidden, 1]
    } else out.set(v);
    return encodeTensor(t.name, 'float32', t.shape, out);
  });
}
