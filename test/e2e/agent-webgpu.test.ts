// A real agent process started with `--backend webgpu` advertises webgpu with no GPU (here the adapter
// is Mesa's llvmpipe, a software renderer: CPU-class) and completes a matmul job offered by a real
// coordinator (PostgreSQL, Redis, libp2p), agreeing with the reference within the verification bounds.
// Without a WebGPU adapter the test fails in CI and skips with a message on a developer's machine only.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeReference } from '@gpumesh/compute';
import {
  hashSpec,
  isTensorRef,
  parseJobSpec,
  randomNonce,
  workUnitsForSpec,
  type TensorWire,
} from '@gpumesh/protocol';
import { compareOutputs } from '@gpumesh/verification';
import { P2pService } from '../../apps/coordinator/src/p2p/p2p.service.js';
import { ProvidersRepository } from '../../apps/coordinator/src/providers/providers.repository.js';
import { startTestCoordinator, type TestCoordinator } from '../helpers/coordinator.js';
import { AGENT_MAIN, assertBuilt, runProcess, startProcess, type Started } from '../helpers/processes.js';
import { matmulSpec } from '../helpers/specs.js';
import { WebgpuGate } from '../helpers/webgpu.js';

const PASSPHRASE = 'webgpu-test-passphrase';

let c: TestCoordinator | undefined;
let dir: string | undefined;
let agent: Started | undefined;
const gate = new WebgpuGate('webgpu agent test');

beforeAll(async () => {
  assertBuilt();
  if ((await gate.open()) === undefined) return;
  c = await startTestCoordinator();
  dir = await mkdtemp(join(tmpdir(), 'gpumesh-webgpu-'));
}, 120_000);

afterAll(async () => {
  await agent?.stop('SIGTERM');
  await c?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const env = () => ({ ...process.env, GPUMESH_AGENT_PASSPHRASE: PASSPHRASE });

describe('an agent on the webgpu backend', () => {
  it('advertises webgpu without a GPU and completes a matmul that agrees with the reference', async (ctx) => {
    const coordinator = gate.need(ctx, c);
    const dataDir = join(gate.need(ctx, dir), 'agent');
    await runProcess(
      AGENT_MAIN,
      ['init', '--coordinator', coordinator.url, '--data-dir', dataDir, '--light-kdf', '--backend', 'webgpu'],
      env(),
    );
    const started = await startProcess(
      AGENT_MAIN,
      ['start', '--data-dir', dataDir, '--log-level', 'warn'],
      env(),
      /gpumesh-agent ready: peer (\S+) address (\S+)/,
    );
    agent = started;
    const [peerId, address] = [started.match[1], started.match[2]];

    const providers = coordinator.running.app.get(ProvidersRepository);
    let row: Awaited<ReturnType<typeof providers.list>>[number] | undefined;
    for (let i = 0; i < 300 && row === undefined; i++) {
      row = (await providers.list({ limit: 50 })).find((p) => p.peerId === peerId);
      if (row === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(row?.backend).toBe('webgpu');
    expect(row?.gpus).toEqual([]); // a software adapter is never advertised as a GPU

    const spec = parseJobSpec(matmulSpec(24, 40, 16, '100'));
    const jobId = randomUUID();
    const outcome = await coordinator.running.app.get(P2pService).offer(
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
        deadlineAt: Date.now() + 60_000,
        nonce: randomNonce(),
        issuedAt: Date.now(),
      },
      { providerAddress: address, acceptTimeoutMs: 20_000 },
    );
    if (outcome.status !== 'completed')
      throw new Error(`offer ${outcome.status}: ${JSON.stringify(outcome)}`);
    expect(outcome.receipt.payload).toMatchObject({ jobId, attempt: 1, providerPeerId: peerId });
    const reference = await computeReference(spec, { backend: 'cpu' });
    // a small product: every output came back inline
    const outputs = outcome.outputs.filter((t): t is TensorWire => !isTensorRef(t));
    expect(outputs).toHaveLength(outcome.outputs.length);
    const agreement = compareOutputs(outputs, reference, { spec });
    expect(agreement.agree, agreement.reason).toBe(true);
    expect(agreement.margin).toBeGreaterThanOrEqual(1);
  }, 120_000);
});
