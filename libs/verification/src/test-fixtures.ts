// Test helpers (excluded from the build): matmul jobs, signed receipts, honest and cheating outputs
// and evidence bundles, shared by the unit specs and the CLI integration test.
import { Wallet } from 'ethers';

import { computeReference, seededValues } from '@gpumesh/compute';
import {
  decodeTensor,
  encodeTensor,
  hashOutputs,
  hashSpec,
  hashTensors,
  parseJobSpec,
  signPayload,
  type JobSpec,
  type ResultReceipt,
  type Signed,
  type TensorWire,
} from '@gpumesh/protocol';

import { buildEvidence, type EvidenceBundle } from './evidence.js';

export const JOB_ID = '0d6b6c9e-2f4a-4c1b-9b7e-5a3d1f2e4c6b';
export const ACCUSED_WALLET = new Wallet(`0x${'44'.repeat(32)}`);
export const HONEST_WALLET = new Wallet(`0x${'55'.repeat(32)}`);
export const ACCUSED_PEER = '12D3KooWD3eckifWpRn9wQpMG9R9hX3sD158z7EqHWmweQAJU5SA';
export const HONEST_PEER = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK';

/** Deterministic float32 values in [-1, 1) (xorshift32). */
export const seeded = seededValues;

export function matmulJob(m: number, k: number, n: number, seed = 7): { spec: JobSpec; specHash: string } {
  const spec = parseJobSpec({
    version: 1,
    kind: 'matmul',
    maxPricePerUnit: '1',
    inputs: [
      encodeTensor('a', 'float32', [m, k], seeded(m * k, seed)),
      encodeTensor('b', 'float32', [k, n], seeded(k * n, seed + 1)),
    ],
  });
  return { spec, specHash: hashSpec(spec) };
}

export function floats(t: TensorWire): Float32Array {
  return decodeTensor(t).values as Float32Array;
}

/** `t` with its values replaced by `f(values)`. */
export function mapValues(t: TensorWire, f: (v: Float32Array) => Float32Array): TensorWire {
  return encodeTensor(t.name, 'float32', t.shape, f(Float32Array.from(floats(t))));
}

export async function signReceipt(
  wallet: Wallet,
  peerId: string,
  spec: JobSpec,
  outputs: readonly TensorWire[],
  attempt: number,
  jobId = JOB_ID,
): Promise<Signed<ResultReceipt>> {
  return signPayload(
    'receipt',
    {
      version: 1,
      jobId,
      attempt,
      providerPeerId: peerId,
      providerAddress: wallet.address,
      inputHash: hashTensors(spec.inputs),
      outputHash: hashOutputs(outputs),
      backend: 'wasm',
      timings: { queuedMs: 1, runMs: 10, totalMs: 12 },
      finishedAt: 1_750_000_000_000,
    },
    wallet,
  );
}

export type Cheat = 'honest' | 'few-wrong' | 'noise-1e-3' | 'zeros' | 'stale';

/** Outputs a provider might return: the honest wasm result or one of the realistic cheats. */
export async function providerOutputs(spec: JobSpec, cheat: Cheat): Promise<TensorWire[]> {
  const honest = await computeReference(spec, { backend: 'wasm' });
  switch (cheat) {
    case 'honest':
      return honest;
    case 'few-wrong':
      return honest.map((t) =>
        mapValues(t, (v) => {
          for (const i of [0, Math.floor(v.length / 2), v.length - 1]) v[i] = v[i] * 1.5 + 0.25;
          return v;
        }),
      );
    case 'noise-1e-3': {
      const noise = seeded(1 << 20, 99);
      return honest.map((t) =>
        mapValues(t, (v) => v.map((x, i) => x * (1 + 1e-3 * noise[i % noise.length]))),
      );
    }
    case 'zeros':
      return honest.map((t) => mapValues(t, (v) => v.fill(0)));
    case 'stale': {
      // The result of another job of the same shape (different inputs).
      const a = spec.inputs.find((t) => t.name === 'a') as TensorWire;
      const b = spec.inputs.find((t) => t.name === 'b') as TensorWire;
      const other = matmulJob(a.shape[0], a.shape[1], b.shape[1], 1234).spec;
      return computeReference(other, { backend: 'wasm' });
    }
  }
}

/** An evidence bundle against `cheat`, with the reference from an honest second provider (cpu). */
export async function bundleAgainst(
  cheat: Cheat,
  size: [number, number, number] = [8, 64, 8],
): Promise<EvidenceBundle> {
  const { spec, specHash } = matmulJob(...size);
  const accusedOutputs = await providerOutputs(spec, cheat);
  const referenceOutputs = await computeReference(spec, { backend: 'cpu' });
  return buildEvidence({
    job: { id: JOB_ID, spec, specHash },
    accused: {
      receipt: await signReceipt(ACCUSED_WALLET, ACCUSED_PEER, spec, accusedOutputs, 1),
      outputs: accusedOutputs,
    },
    reference: {
      source: 'providers',
      outputs: referenceOutputs,
      receipts: [await signReceipt(HONEST_WALLET, HONEST_PEER, spec, referenceOutputs, 2)],
    },
    createdAt: 1_750_000_001_000,
  });
}

export const OTHER_WALLET_FOR_TESTS = new Wallet(`0x${'66'.repeat(32)}`);
