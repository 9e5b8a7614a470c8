/** Builders and helpers shared by the multi-node p2p tests. */
import {
  PROTOCOL_VERSION,
  createPeerBinding,
  encodeTensor,
  hashOutputs,
  hashSpec,
  hashTensors,
  parseJobSpec,
  randomNonce,
  signPayload,
  type JobOffer,
  type ProviderAdvert,
  type ResultReceipt,
  type Signed,
  type TensorWire,
} from '@gpumesh/protocol';
import { createGpumeshNode, type GpumeshNode, type GpumeshNodeOptions } from '@gpumesh/p2p';
import { randomUUID } from 'node:crypto';

import { Wallet } from 'ethers';

export const PROVIDER_WALLET = new Wallet(`0x${'a1'.repeat(32)}`);
export const OTHER_PROVIDER_WALLET = new Wallet(`0x${'a2'.repeat(32)}`);
export const COORDINATOR_WALLET = new Wallet(`0x${'c1'.repeat(32)}`);

export async function startNodes(count: number, options: GpumeshNodeOptions = {}): Promise<GpumeshNode[]> {
  return Promise.all(Array.from({ length: count }, () => createGpumeshNode(options)));
}

export async function stopNodes(nodes: readonly (GpumeshNode | undefined)[]): Promise<void> {
  await Promise.all(nodes.map((n) => n?.stop()));
}

/** Dials `to` from `from` on its first listen address; resolves once both sides track the connection. */
export async function connect(from: GpumeshNode, to: GpumeshNode): Promise<void> {
  await from.dial(to.getMultiaddrs()[0]);
  await waitFor(() => to.getConnections(from.peerId).length > 0, 5000, 'inbound connection');
}

export async function waitFor(predicate: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

export interface AdvertOverrides {
  readonly seq?: number;
  readonly issuedAt?: number;
  readonly ttlMs?: number;
  readonly bindingPeerId?: string;
}

/** A provider advert for `peerId`, signed by `wallet`. */
export async function signedAdvert(
  wallet: Wallet,
  peerId: string,
  overrides: AdvertOverrides = {},
): Promise<Signed<ProviderAdvert>> {
  const issuedAt = overrides.issuedAt ?? Date.now();
  const boundPeer = overrides.bindingPeerId ?? peerId;
  return signPayload(
    'advert',
    {
      version: PROTOCOL_VERSION,
      peerId: boundPeer,
      address: wallet.address,
      operatorId: 'operator-1',
      seq: overrides.seq ?? 1,
      issuedAt,
      expiresAt: issuedAt + (overrides.ttlMs ?? 60_000),
      backend: 'wasm',
      gpus: [],
      gflops: 33.5,
      pricePerUnit: '10',
      slots: 2,
      freeSlots: 2,
      binding: await createPeerBinding(wallet, boundPeer, issuedAt - 1000),
    },
    wallet,
  );
}

export function matmulSpec(): ReturnType<typeof parseJobSpec> {
  return parseJobSpec({
    version: PROTOCOL_VERSION,
    kind: 'matmul',
    inputs: [
      encodeTensor('a', 'float32', [2, 2], Float32Array.from([1, 2, 3, 4])),
      encodeTensor('b', 'float32', [2, 2], Float32Array.from([5, 6, 7, 8])),
    ],
    maxPricePerUnit: '1000',
  });
}

export async function signedOffer(
  coordinatorPeerId: string,
  overrides: { readonly jobId?: string; readonly attempt?: number; readonly deadlineMs?: number } = {},
): Promise<Signed<JobOffer>> {
  const spec = matmulSpec();
  const now = Date.now();
  return signPayload(
    'offer',
    {
      version: PROTOCOL_VERSION,
      jobId: overrides.jobId ?? randomUUID(),
      attempt: overrides.attempt ?? 1,
      spec,
      specHash: hashSpec(spec),
      pricePerUnit: '900',
      workUnits: '1',
      deadlineAt: now + (overrides.deadlineMs ?? 60_000),
      coordinatorPeerId,
      nonce: randomNonce(),
      issuedAt: now,
    },
    COORDINATOR_WALLET,
  );
}

/** The matmul result of `matmulSpec()` and the provider's receipt for it. */
export async function resultFor(
  offer: JobOffer,
  providerPeerId: string,
  wallet: Wallet = PROVIDER_WALLET,
): Promise<{ outputs: TensorWire[]; receipt: Signed<ResultReceipt> }> {
  const outputs = [encodeTensor('c', 'float32', [2, 2], Float32Array.from([19, 22, 43, 50]))];
  const receipt = await signPayload(
    'receipt',
    {
      version: PROTOCOL_VERSION,
      jobId: offer.jobId,
      attempt: offer.attempt,
      providerPeerId,
      providerAddress: wallet.address,
      inputHash: hashTensors(offer.spec.inputs),
      outputHash: hashOutputs(outputs),
      backend: 'wasm',
      timings: { queuedMs: 0, runMs: 1, totalMs: 1 },
      finishedAt: Date.now(),
    },
    wallet,
  );
  return { outputs, receipt };
}
