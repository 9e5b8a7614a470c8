/** Builders for valid protocol messages, shared by the specs (not exported from the library). */
import { Wallet } from 'ethers';

import { PROTOCOL_VERSION } from './constants.js';
import { hashSpec, hashTensors } from './hashing.js';
import { parseJobSpec, type JobSpec } from './job-spec.js';
import { createPeerBinding } from './peer-binding.js';
import { encodeTensor } from './tensor.js';

export const PROVIDER_WALLET = new Wallet(`0x${'11'.repeat(32)}`);
export const COORDINATOR_WALLET = new Wallet(`0x${'22'.repeat(32)}`);
export const OTHER_WALLET = new Wallet(`0x${'33'.repeat(32)}`);

export const PROVIDER_PEER_ID = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
export const COORDINATOR_PEER_ID = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK';

export const NOW = 1_750_000_000_000;
export const JOB_ID = '6f1c2a4e-8d1b-4c7e-9a3f-2b5d7e9f1a3c';

export function matmulSpecInput(m = 2, k = 3, n = 4): Record<string, unknown> {
  return {
    version: PROTOCOL_VERSION,
    kind: 'matmul',
    inputs: [
      encodeTensor(
        'a',
        'float32',
        [m, k],
        Float32Array.from({ length: m * k }, (_, i) => i / 2),
      ),
      encodeTensor(
        'b',
        'float32',
        [k, n],
        Float32Array.from({ length: k * n }, (_, i) => i - 3),
      ),
    ],
    maxPricePerUnit: '1000',
  };
}

export function inferenceSpecInput(): Record<string, unknown> {
  return {
    version: PROTOCOL_VERSION,
    kind: 'inference',
    inputs: [encodeTensor('input', 'float32', [8, 4], new Float32Array(32).fill(0.5))],
    model: { hash: 'ab'.repeat(32), format: 'layers' },
    params: { batchSize: 8 },
    outputs: ['dense_1'],
    requirements: { minVramMiB: 4096, backends: ['tensorflow-gpu'] },
    maxPricePerUnit: '25',
    redundancy: 2,
    deadlineSeconds: 120,
  };
}

export function trainSpecInput(): Record<string, unknown> {
  return {
    version: PROTOCOL_VERSION,
    kind: 'train',
    inputs: [
      encodeTensor('x', 'float32', [10, 4], new Float32Array(40).fill(1)),
      encodeTensor('y', 'float32', [10, 1], new Float32Array(10).fill(0)),
    ],
    model: { hash: 'cd'.repeat(32), format: 'layers' },
    params: { epochs: 5, batchSize: 2, learningRate: 0.01, optimizer: 'adam', loss: 'meanSquaredError' },
    maxPricePerUnit: '7',
  };
}

export async function advertInput(
  wallet: Wallet = PROVIDER_WALLET,
  now: number = NOW,
): Promise<Record<string, unknown>> {
  return {
    version: PROTOCOL_VERSION,
    peerId: PROVIDER_PEER_ID,
    address: wallet.address,
    operatorId: 'operator-1',
    seq: 7,
    issuedAt: now,
    expiresAt: now + 60_000,
    backend: 'tensorflow-gpu',
    gpus: [{ model: 'NVIDIA RTX 4090', vramMiB: 24_564, computeCapability: '8.9' }],
    gflops: 82_000.5,
    pricePerUnit: '10',
    slots: 4,
    freeSlots: 3,
    region: 'eu-west',
    binding: await createPeerBinding(wallet, PROVIDER_PEER_ID, now - 1000),
  };
}

export function offerInput(
  spec: JobSpec = parseJobSpec(matmulSpecInput()),
  now: number = NOW,
): Record<string, unknown> {
  return {
    version: PROTOCOL_VERSION,
    jobId: JOB_ID,
    attempt: 1,
    spec,
    specHash: hashSpec(spec),
    pricePerUnit: '900',
    workUnits: '1',
    deadlineAt: now + 600_000,
    coordinatorPeerId: COORDINATOR_PEER_ID,
    nonce: '0123456789abcdef0123456789abcdef',
    issuedAt: now,
  };
}

export function receiptInput(wallet: Wallet = PROVIDER_WALLET, now: number = NOW): Record<string, unknown> {
  const spec = parseJobSpec(matmulSpecInput());
  return {
    version: PROTOCOL_VERSION,
    jobId: JOB_ID,
    attempt: 1,
    providerPeerId: PROVIDER_PEER_ID,
    providerAddress: wallet.address,
    inputHash: hashTensors(spec.inputs),
    outputHash: 'ef'.repeat(32),
    backend: 'tensorflow-gpu',
    timings: { queuedMs: 5, runMs: 40, totalMs: 50 },
    finishedAt: now,
  };
}

export function epochAnnouncementInput(): Record<string, unknown> {
  return {
    version: PROTOCOL_VERSION,
    peerId: COORDINATOR_PEER_ID,
    seq: 7,
    issuedAt: NOW - 1000,
    expiresAt: NOW + 60_000,
    chainId: 31337,
    distributor: `0x${'ab'.repeat(20)}`,
    epoch: 3,
    root: `0x${'cd'.repeat(32)}`,
    fileHash: `0x${'ef'.repeat(32)}`,
    size: 1234,
  };
}
