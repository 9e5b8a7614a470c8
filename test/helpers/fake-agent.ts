// A minimal provider built only from libs/p2p and libs/protocol: real libp2p node, real signed
// adverts and receipts, with a plain-JS matmul in place of the TensorFlow.js runtime. It stands in
// for the agent where the subject of a test is the coordinator's dispatch path.
import { Wallet } from 'ethers';
import {
  createGpumeshNode,
  createOfferVerifier,
  handleJobOffers,
  nodePeerId,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '#p2p';
import {
  createPeerBinding,
  decodeTensor,
  encodeTensor,
  hashOutputs,
  hashTensors,
  signPayload,
  type JobSpec,
  type TensorWire,
} from '#protocol';

export type FakeBehaviour = 'honest' | 'reject' | 'wrong' | 'hang';

export interface FakeAgent {
  peerId: string;
  address: string;
  offers: number;
  node: GpumeshNode;
  setBehaviour(b: FakeBehaviour): void;
  stop(): Promise<void>;
}

interface NetworkBody {
  peers: { peerId: string; multiaddrs: string[]; signerAddress: string }[];
}

/** Plain-JS reference matmul of a spec's inputs `a` and `b`. */
export function referenceMatmul(spec: JobSpec): TensorWire[] {
  const a = spec.inputs.find((t) => t.name === 'a');
  const b = spec.inputs.find((t) => t.name === 'b');
  if (!a || !b) throw new Error('matmul needs inputs a and b');
  const [m, k] = a.shape;
  const n = b.shape[1];
  const av = decodeTensor(a).values;
  const bv = decodeTensor(b).values;
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let x = 0; x < k; x++) s += Number(av[i * k + x]) * Number(bv[x * n + j]);
      out[i * n + j] = s;
    }
  return [encodeTensor('output', 'float32', [m, n], out)];
}

export async function startFakeAgent(
  coordinatorUrl: string,
  options: { operatorId?: string; pricePerUnit?: string; behaviour?: FakeBehaviour; slots?: number } = {},
): Promise<FakeAgent> {
  let network: NetworkBody = { peers: [] };
  for (let i = 0; i < 50 && network.peers.length === 0; i++) {
    network = (await (await fetch(`${coordinatorUrl}/v1/network`)).json()) as NetworkBody;
    if (network.peers.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  const coordinator = network.peers[0];
  if (!coordinator) throw new Error('the coordinator has no p2p peer');
  const wallet = Wallet.createRandom();
  const address = wallet.address.toLowerCase();
  const node = await createGpumeshNode({ listen: [], bootstrap: coordinator.multiaddrs });
  const peerId = nodePeerId(node);
  const gossip: GossipService = startGossip(node, {});
  const binding = await createPeerBinding(wallet, peerId);
  let behaviour: FakeBehaviour = options.behaviour ?? 'honest';
  let seq = 0;
  const state = { offers: 0 };

  const advertise = async (): Promise<void> => {
    const now = Date.now();
    const advert = await signPayload(
      'advert',
      {
        version: 1,
        peerId,
        address,
        operatorId: options.operatorId ?? address,
        seq: seq++,
        issuedAt: now,
        expiresAt: now + 60_000,
        backend: 'cpu',
        gpus: [],
        gflops: 1,
        pricePerUnit: options.pricePerUnit ?? '1',
        slots: options.slots ?? 4,
        freeSlots: options.slots ?? 4,
        binding,
      },
      wallet,
    );
    await gossip.publishAdvert(advert).catch(() => 0);
  };
  const timer = setInterval(() => void advertise(), 300);

  const stopServing = await handleJobOffers(node, {
    verifyOffer: createOfferVerifier({ coordinatorAddress: coordinator.signerAddress }),
    onOffer: async (signed, ctx) => {
      state.offers += 1;
      if (behaviour === 'reject') return { accept: false, reason: 'busy' };
      return {
        accept: true,
        run: async () => {
          if (behaviour === 'hang')
            await new Promise((_r, reject) =>
              ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
            );
          const offer = signed.payload;
          let outputs = referenceMatmul(offer.spec);
          if (behaviour === 'wrong') {
            const v = decodeTensor(outputs[0]).values as Float32Array;
            outputs = [
              encodeTensor(
                'output',
                'float32',
                outputs[0].shape,
                v.map((x) => x + 1),
              ),
            ];
          }
          ctx.reportProgress(1, 'done');
          const receipt = await signPayload(
            'receipt',
            {
              version: 1,
              jobId: offer.jobId,
              attempt: offer.attempt,
              providerPeerId: peerId,
              providerAddress: address,
              inputHash: hashTensors(offer.spec.inputs),
              outputHash: hashOutputs(outputs),
              backend: 'cpu',
              timings: { queuedMs: 0, runMs: 1, totalMs: 1 },
              finishedAt: Date.now(),
            },
            wallet,
          );
          return { outputs, receipt };
        },
      };
    },
  });
  await advertise();

  return {
    peerId,
    address,
    node,
    get offers() {
      return state.offers;
    },
    setBehaviour: (b) => {
      behaviour = b;
    },
    stop: async () => {
      clearInterval(timer);
      gossip.stop();
      await stopServing();
      await node.stop();
    },
  };
}
