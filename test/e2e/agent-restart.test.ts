// A provider agent killed with SIGKILL and restarted on the same data directory re-advertises, and
// answers a repeated offer of an attempt it already reported from its journal: same receipt, same
// outputs, nothing computed twice. Real coordinator (PostgreSQL, Redis, libp2p) and agent process.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSpec, parseJobSpec, randomNonce, workUnitsForSpec } from '@gpumesh/protocol';
import type { JobOfferOutcome } from '@gpumesh/p2p';
import { P2pService } from '../../apps/coordinator/src/p2p/p2p.service.js';
import { ProvidersRepository } from '../../apps/coordinator/src/providers/providers.repository.js';
import { startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import {
  AGENT_MAIN,
  assertBuilt,
  initAgent,
  runProcess,
  startProcess,
  type Started,
} from '../helpers/processes.js';
import { matmulSpec } from '../helpers/specs.js';

const PASSPHRASE = 'restart-test-passphrase';

let c: TestCoordinator;
let dir: string;
let agent: Started | undefined;

beforeAll(async () => {
  assertBuilt();
  c = await startTestCoordinator();
  dir = await mkdtemp(join(tmpdir(), 'gpumesh-restart-'));
});

afterAll(async () => {
  await agent?.stop('SIGKILL');
  await c?.close();
  await rm(dir, { recursive: true, force: true });
});

const env = () => ({ ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE });

async function startAgent(dataDir: string): Promise<{ started: Started; peerId: string; address: string }> {
  const started = await startProcess(
    AGENT_MAIN,
    ['start', '--data-dir', dataDir, '--log-level', 'warn'],
    env(),
    /gpumesh-agent ready: peer (\S+) address (\S+)/,
  );
  return { started, peerId: started.match[1], address: started.match[2] };
}

async function advertSeq(peerId: string, above: bigint, timeoutMs = 30_000): Promise<bigint> {
  const providers = c.running.app.get(ProvidersRepository);
  const until = Date.now() + timeoutMs;
  for (;;) {
    const row = (await providers.list({ limit: 50 })).find((p) => p.peerId === peerId);
    if (row && row.advertSeq > above) return row.advertSeq;
    if (Date.now() > until) throw new Error(`no advert from ${peerId} with seq above ${above}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a restarted agent', () => {
  it('re-advertises and never re-runs an attempt it already reported', async () => {
    const dataDir = join(dir, 'agent');
    await initAgent(c.url, dataDir, env());
    const first = await startAgent(dataDir);
    agent = first.started;
    const seqBefore = await advertSeq(first.peerId, 0n);

    const p2p = c.running.app.get(P2pService);
    const spec = parseJobSpec(matmulSpec(3, 4, 5, '100'));
    const jobId = randomUUID();
    const offer = () =>
      p2p.offer(
        first.peerId,
        {
          version: 1,
          jobId,
          attempt: 1,
          spec,
          specHash: hashSpec(spec),
          pricePerUnit: '100',
          feeBps: 500,
          workUnits: workUnitsForSpec(spec).toString(),
          deadlineAt: Date.now() + 60_000,
          nonce: randomNonce(),
          issuedAt: Date.now(),
        },
        { providerAddress: first.address, acceptTimeoutMs: 10_000 },
      );
    const completed = (o: JobOfferOutcome) => {
      if (o.status !== 'completed') throw new Error(`offer ${o.status}: ${JSON.stringify(o)}`);
      return o;
    };

    const before = completed(await offer());
    expect(before.receipt.payload).toMatchObject({ jobId, attempt: 1, providerPeerId: first.peerId });

    // SIGKILL: no shutdown hook runs; only what reached the journal survives.
    await first.started.stop('SIGKILL');
    const second = await startAgent(dataDir);
    agent = second.started;
    expect(second.peerId).toBe(first.peerId); // same identity from the keystore
    // It comes back on the network: a fresh advert with a higher sequence number reaches the coordinator.
    expect(await advertSeq(second.peerId, seqBefore)).toBeGreaterThan(seqBefore);

    const again = completed(await offer());
    // Answered from the journal: the very receipt it signed before the crash (a re-run would carry a
    // new finishedAt and signature), and the same outputs.
    expect(again.receipt).toEqual(before.receipt);
    expect(again.outputs).toEqual(before.outputs);

    // The status file is written periodically: wait for this run's, then check nothing was computed.
    type Status = { completed: number; reportedAttempts: number; earned: string; net: string };
    let status: Status | undefined;
    for (let i = 0; i < 100 && status?.reportedAttempts !== 1; i++) {
      const out = await runProcess(AGENT_MAIN, ['status', '--data-dir', dataDir, '--json'], env());
      status = JSON.parse(out) as Status;
      if (status.reportedAttempts !== 1) await new Promise((r) => setTimeout(r, 200));
    }
    // Worth the offered price, and after the 5 % fee signed into the offer (kept in the journal).
    const gross = 100n * workUnitsForSpec(spec);
    expect(status).toMatchObject({
      completed: 0,
      reportedAttempts: 1,
      earned: gross.toString(),
      net: (gross - (gross * 500n) / 10_000n).toString(),
    });
  });
});
