// One offer on its own stream (JOB_PROTOCOL_ID, `sendJobOffer`) against the same offer as a batch of
// one (JOB_BATCH_PROTOCOL_ID, `sendJobOffers([item])`): could the single-offer transport go?
//   npm run bench -- --only job-offer
// Two real libp2p nodes in this process (TCP on loopback, noise, yamux), the agent connected to the
// coordinator as agents are. Offers and receipts are signed before the clock starts and the agent
// answers at once with a pre-made result, so what is timed is the transport: dial a stream, frames
// both ways, schema checks, and the coordinator's receipt check (the same in both). The two
// transports alternate in rounds so that drift (JIT, GC, other load on the machine) hits both alike.
import {
  PROTOCOL_VERSION,
  encodeTensor,
  hashOutputs,
  hashSpec,
  hashTensors,
  parseJobSpec,
  randomNonce,
  signPayload,
  type JobOffer,
  type ResultReceipt,
  type Signed,
  type TensorWire,
} from '@gpumesh/protocol';
import {
  createGpumeshNode,
  handleJobOffers,
  sendJobOffer,
  sendJobOffers,
  type GpumeshNode,
  type JobOfferOutcome,
  type SendJobOfferOptions,
} from '@gpumesh/p2p';
import { randomUUID } from 'node:crypto';
import { Wallet } from 'ethers';

import { percentile, round } from './support.js';

const COORDINATOR = new Wallet(`0x${'c1'.repeat(32)}`);
const PROVIDER = new Wallet(`0x${'a1'.repeat(32)}`);

/** Offers per transport one after another (each waits for the last to complete). */
const SEQUENTIAL = 400;
/** Rounds the sequential offers are split into, alternating the transports. */
const ROUNDS = 8;
/** Offers in flight at once in the concurrent phase, each on its own stream. */
const IN_FLIGHT = 32;
/** Offers per transport in the concurrent phase. */
const CONCURRENT = 1_600;

interface Prepared {
  readonly offer: Signed<JobOffer>;
  readonly result: { outputs: TensorWire[]; receipt: Signed<ResultReceipt> };
}

type Transport = 'single' | 'batchOfOne';

async function prepare(count: number, coordinatorPeerId: string, agentPeerId: string): Promise<Prepared[]> {
  const spec = parseJobSpec({
    version: PROTOCOL_VERSION,
    kind: 'matmul',
    inputs: [
      encodeTensor('a', 'float32', [2, 2], Float32Array.from([1, 2, 3, 4])),
      encodeTensor('b', 'float32', [2, 2], Float32Array.from([5, 6, 7, 8])),
    ],
    maxPricePerUnit: '1000',
  });
  const outputs = [encodeTensor('c', 'float32', [2, 2], Float32Array.from([19, 22, 43, 50]))];
  const now = Date.now();
  const prepared: Prepared[] = [];
  for (let i = 0; i < count; i++) {
    const offer = await signPayload(
      'offer',
      {
        version: PROTOCOL_VERSION,
        jobId: randomUUID(),
        attempt: 1,
        spec,
        specHash: hashSpec(spec),
        pricePerUnit: '900',
        workUnits: '1',
        deadlineAt: now + 3_600_000,
        coordinatorPeerId,
        nonce: randomNonce(),
        issuedAt: now,
      },
      COORDINATOR,
    );
    const receipt = await signPayload(
      'receipt',
      {
        version: PROTOCOL_VERSION,
        jobId: offer.payload.jobId,
        attempt: 1,
        providerPeerId: agentPeerId,
        providerAddress: PROVIDER.address,
        inputHash: hashTensors(spec.inputs),
        outputHash: hashOutputs(outputs),
        backend: 'wasm',
        timings: { queuedMs: 0, runMs: 0, totalMs: 0 },
        finishedAt: now,
      },
      PROVIDER,
    );
    prepared.push({ offer, result: { outputs, receipt } });
  }
  return prepared;
}

function send(
  transport: Transport,
  node: GpumeshNode,
  peer: string,
  item: Prepared,
  options: SendJobOfferOptions,
): Promise<JobOfferOutcome> {
  if (transport === 'single') return sendJobOffer(node, peer, item.offer, options);
  return sendJobOffers(node, peer, [{ offer: item.offer, options }])[0];
}

function summary(latenciesMs: number[], elapsedMs: number): Record<string, number> {
  const sorted = [...latenciesMs].sort((a, b) => a - b);
  return {
    offers: sorted.length,
    offersPerSecond: round((sorted.length / elapsedMs) * 1000, 0),
    meanMs: round(sorted.reduce((n, v) => n + v, 0) / sorted.length, 3),
    p50Ms: round(percentile(sorted, 50), 3),
    p99Ms: round(percentile(sorted, 99), 3),
  };
}

export async function run(): Promise<Record<string, unknown>> {
  const coordinator = await createGpumeshNode();
  const agent = await createGpumeshNode();
  try {
    await agent.dial(coordinator.getMultiaddrs()[0]);
    // Offers go over the connection the agent opened: wait until the coordinator has it too.
    const connectedBy = Date.now() + 5_000;
    while (coordinator.getConnections(agent.peerId).length === 0) {
      if (Date.now() > connectedBy) throw new Error('the agent did not connect');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    const agentId = agent.peerId.toString();
    const total = 2 * (SEQUENTIAL + CONCURRENT) + 2 * IN_FLIGHT;
    const prepared = await prepare(total, coordinator.peerId.toString(), agentId);
    const results = new Map(prepared.map((p) => [p.offer.payload.jobId, p.result]));
    await handleJobOffers(agent, {
      // The signature checks are the same on both transports: left out so the transport shows.
      verifyOffer: (offer) => offer as Signed<JobOffer>,
      onOffer: async (offer) => {
        const result = results.get(offer.payload.jobId);
        if (result === undefined) return { accept: false, reason: 'UNKNOWN_JOB' };
        return { accept: true, run: async () => result };
      },
      maxInboundStreams: 1024,
    });
    const options: SendJobOfferOptions = { providerAddress: PROVIDER.address };
    let next = 0;
    const take = (): Prepared => prepared[next++];
    const expectCompleted = (outcome: JobOfferOutcome): void => {
      if (outcome.status !== 'completed') throw new Error(`offer not completed: ${outcome.reason}`);
    };

    // Warm-up: both transports, concurrently, so that neither is measured cold.
    await Promise.all(
      Array.from({ length: IN_FLIGHT }, async (_, i) =>
        expectCompleted(
          await send(i % 2 === 0 ? 'single' : 'batchOfOne', coordinator, agentId, take(), options),
        ),
      ),
    );

    const sequential: Record<Transport, { latencies: number[]; elapsedMs: number }> = {
      single: { latencies: [], elapsedMs: 0 },
      batchOfOne: { latencies: [], elapsedMs: 0 },
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order: Transport[] = round % 2 === 0 ? ['single', 'batchOfOne'] : ['batchOfOne', 'single'];
      for (const transport of order) {
        const started = performance.now();
        for (let i = 0; i < SEQUENTIAL / ROUNDS; i++) {
          const t0 = performance.now();
          expectCompleted(await send(transport, coordinator, agentId, take(), options));
          sequential[transport].latencies.push(performance.now() - t0);
        }
        sequential[transport].elapsedMs += performance.now() - started;
      }
    }

    const concurrent: Record<Transport, { latencies: number[]; elapsedMs: number }> = {
      single: { latencies: [], elapsedMs: 0 },
      batchOfOne: { latencies: [], elapsedMs: 0 },
    };
    for (let round = 0; round < ROUNDS; round++) {
      const order: Transport[] = round % 2 === 0 ? ['single', 'batchOfOne'] : ['batchOfOne', 'single'];
      for (const transport of order) {
        let left = CONCURRENT / ROUNDS;
        const started = performance.now();
        await Promise.all(
          Array.from({ length: IN_FLIGHT }, async () => {
            while (left > 0) {
              left--;
              const t0 = performance.now();
              expectCompleted(await send(transport, coordinator, agentId, take(), options));
              concurrent[transport].latencies.push(performance.now() - t0);
            }
          }),
        );
        concurrent[transport].elapsedMs += performance.now() - started;
      }
    }

    const seq = {
      single: summary(sequential.single.latencies, sequential.single.elapsedMs),
      batchOfOne: summary(sequential.batchOfOne.latencies, sequential.batchOfOne.elapsedMs),
    };
    const conc = {
      single: summary(concurrent.single.latencies, concurrent.single.elapsedMs),
      batchOfOne: summary(concurrent.batchOfOne.latencies, concurrent.batchOfOne.elapsedMs),
    };
    return {
      transport: 'two libp2p nodes in one process, TCP loopback, noise, yamux',
      sequential: seq,
      concurrent: { inFlight: IN_FLIGHT, ...conc },
      /** Batch of one over single: above 1 means the batch of one is slower. */
      sequentialP50Ratio: round(seq.batchOfOne.p50Ms / seq.single.p50Ms, 3),
      concurrentThroughputRatio: round(conc.single.offersPerSecond / conc.batchOfOne.offersPerSecond, 3),
    };
  } finally {
    await Promise.all([coordinator.stop(), agent.stop()]);
  }
}
