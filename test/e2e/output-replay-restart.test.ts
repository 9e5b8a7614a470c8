// A result with an output by ref, replayed after a coordinator restart, is taken: a real agent
// uploads its output (`put-tensor`) and reports the attempt; the coordinator restarts on the same
// database, data directory and HTTP port; the agent reconnects, and answers the same offer again from
// its journal without uploading anything. The upload record is in PostgreSQL (OutputUpload), so the
// check the attempt runner makes (TensorsService.outputsMissing) passes on the new process, where an
// in-memory record was gone (OUTPUT_NOT_UPLOADED). Real coordinator (PostgreSQL, Redis, libp2p) and
// agent process.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSpec, isTensorRef, parseJobSpec, randomNonce, workUnitsForSpec } from '@gpumesh/protocol';
import type { JobOfferOutcome } from '@gpumesh/p2p';
import { P2pService } from '../../apps/coordinator/src/p2p/p2p.service.js';
import { ProvidersRepository } from '../../apps/coordinator/src/providers/providers.repository.js';
import { TensorsService } from '../../apps/coordinator/src/tensors/tensors.service.js';
import { startCoordinatorOn, type TestCoordinator } from '../helpers/coordinator.js';
import { AGENT_MAIN, assertBuilt, initAgent, startProcess, type Started } from '../helpers/processes.js';
import { matmulSpec } from '../helpers/specs.js';
import { pollUntil, query } from '../helpers/poll.js';
import { createTestDatabase, type TestDatabase } from '../support/database.js';

const PASSPHRASE = 'replay-restart-passphrase';
/** The agent's inline threshold here: a 48×40 float32 product (7,680 bytes) goes by ref. */
const INLINE_OUTPUT_MAX_BYTES = 4096;

/** A free port below the ephemeral range, so nothing else takes it while the coordinator restarts. */
async function freePort(): Promise<number> {
  for (;;) {
    const port = 20_000 + Math.floor(Math.random() * 10_000);
    const free = await new Promise<boolean>((resolve) => {
      const server = createServer();
      server.once('error', () => resolve(false));
      server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
}

describe('e2e: a replayed result with an output by ref after a coordinator restart', () => {
  let db: TestDatabase;
  let dir: string;
  let c: TestCoordinator | undefined;
  let agent: Started | undefined;
  const env = { ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE };

  beforeAll(async () => {
    assertBuilt();
    db = await createTestDatabase();
    dir = await mkdtemp(join(tmpdir(), 'gpumesh-replay-'));
  });
  afterAll(async () => {
    await agent?.stop('SIGKILL');
    await c?.close();
    await db?.drop();
    await rm(dir, { recursive: true, force: true });
  });

  it('is taken on the restarted coordinator: the upload record survived', async () => {
    const coordinatorEnv = { PORT: String(await freePort()), DATA_DIR: join(dir, 'coordinator') };
    c = await startCoordinatorOn(db.url, coordinatorEnv);
    const dataDir = join(dir, 'agent');
    await initAgent(c.url, dataDir, env);
    const configPath = join(dataDir, 'agent.json');
    const config = JSON.parse(await readFile(configPath, 'utf8')) as Record<string, unknown>;
    await writeFile(
      configPath,
      JSON.stringify({
        ...config,
        inlineOutputMaxBytes: INLINE_OUTPUT_MAX_BYTES,
        reconnect: { initialDelayMs: 250, maxDelayMs: 1_000 },
      }),
    );
    const started = await startProcess(
      AGENT_MAIN,
      ['start', '--data-dir', dataDir, '--log-level', 'warn'],
      env,
      /gpumesh-agent ready: peer (\S+) address (\S+)/,
    );
    agent = started;
    const [, peerId, address] = started.match;

    /** Waits for an advert of the agent newer than `above` on the coordinator `on`. */
    const advertSeq = (on: TestCoordinator, above: bigint): Promise<bigint> =>
      pollUntil(
        `an advert from ${peerId} above seq ${above}`,
        async () => {
          const row = (await on.running.app.get(ProvidersRepository).list({ limit: 50 })).find(
            (p) => p.peerId === peerId,
          );
          return row && row.advertSeq > above ? row.advertSeq : undefined;
        },
        60_000,
      );
    const seqBefore = await advertSeq(c, 0n);

    const spec = parseJobSpec(matmulSpec(48, 40, 40, '100'));
    const jobId = randomUUID();
    const offer = async (on: TestCoordinator): Promise<Extract<JobOfferOutcome, { status: 'completed' }>> => {
      const outcome = await on.running.app.get(P2pService).offer(
        peerId,
        {
          version: 1,
          jobId,
          attempt: 1,
          spec,
          specHash: hashSpec(spec),
          pricePerUnit: '100',
          feeBps: 500,
          workUnits: workUnitsForSpec(spec).toString(),
          deadlineAt: Date.now() + 120_000,
          nonce: randomNonce(),
          issuedAt: Date.now(),
        },
        { providerAddress: address, acceptTimeoutMs: 20_000 },
      );
      if (outcome.status !== 'completed')
        throw new Error(`offer ${outcome.status}: ${JSON.stringify(outcome)}`);
      return outcome;
    };

    const first = await offer(c);
    const [output] = first.outputs;
    expect(isTensorRef(output)).toBe(true); // uploaded with put-tensor, named by ref
    expect(await c.running.app.get(TensorsService).outputsMissing(peerId, first.outputs)).toBeNull();

    // Restart on the same database, data directory (tensor store, identity) and HTTP port.
    await c.close();
    c = undefined;
    c = await startCoordinatorOn(db.url, coordinatorEnv);
    await advertSeq(c, seqBefore); // the agent found the restarted coordinator

    const again = await offer(c);
    // answered from the journal: the same receipt and outputs, nothing uploaded again
    expect(again.receipt).toEqual(first.receipt);
    expect(again.outputs).toEqual(first.outputs);
    const uploads = await query<{ storedAt: Date }>(
      db.url,
      'SELECT "storedAt" FROM "OutputUpload" WHERE "peerId" = $1',
      [peerId],
    );
    expect(uploads).toHaveLength(1);
    // the restarted coordinator takes the replayed result's output by ref
    expect(await c.running.app.get(TensorsService).outputsMissing(peerId, again.outputs)).toBeNull();
  }, 180_000);
});
