// A provider for model jobs built from libs/p2p, libs/protocol and @gpumesh/compute: real libp2p node, real
// signed adverts and receipts, the model fetched from the coordinator over the artifact protocol and
// run with the agent's kernels in this thread; `wrong` then alters a few output values (a cheat that
// a comparison must catch), `reject` declines every offer. It records every offer it receives.
import { Wallet, type HDNodeWallet } from 'ethers';
import { computeReference } from '@gpumesh/compute';
import {
  createGpumeshNode,
  createOfferVerifier,
  fetchArtifact,
  handleJobOffers,
  nodePeerId,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';
import {
  createPeerBinding,
  decodeTensor,
  encodeTensor,
  hashOutputs,
  hashTensors,
  signPayload,
  type TensorWire,
} from '@gpumesh/protocol';

/**
 * honest: the job run on cpu; wrong: that result with three values of its first output altered
 * (`tamper`); zeros: outputs of the right names and shapes, all zero (no training done); reject:
 * refuses every offer.
 */
export type ModelAgentBehaviour = 'honest' | 'wrong' | 'zeros' | 'reject';

export interface OfferSeen {
  /** The offer's `jobId`: the opaque id it was sent under. */
  offerId: string;
  attempt: number;
  specHash: string;
  kind: string;
}

export interface ModelAgent {
  peerId: string;
  address: string;
  /** The operator wallet that signs its receipts (signs in as the operator's account too). */
  wallet: HDNodeWallet;
  node: GpumeshNode;
  offers: OfferSeen[];
  setBehaviour(b: ModelAgentBehaviour): void;
  stop(): Promise<void>;
}

/** A few values of the first float output changed: small enough to look plausible, beyond any bound. */
/** The same tensors, every value zero. */
export function zeroed(outputs: TensorWire[]): TensorWire[] {
  return outputs.map((t) => {
    const size = t.shape.reduce((n, d) => n * d, 1);
    return t.dtype === 'float32' ? encodeTensor(t.name, 'float32', t.shape, new Float32Array(size)) : t;
  });
}

export function tamper(outputs: TensorWire[]): TensorWire[] {
  return outputs.map((t, k) => {
    if (k !== 0 || t.dtype !== 'float32') return t;
    const v = Float32Array.from(decodeTensor(t).values as Float32Array);
    for (const i of [0, Math.floor(v.length / 2), v.length - 1]) v[i] = v[i] * 1.5 + 0.25;
    return encodeTensor(t.name, 'float32', t.shape, v);
  });
}

export async function startModelAgent(
  coordinatorUrl: string,
  options: { behaviour?: ModelAgentBehaviour; pricePerUnit?: string; slots?: number } = {},
): Promise<ModelAgent> {
  const network = (await (await fetch(`${coordinatorUrl}/v1/network`)).json()) as {
    peers: { peerId: string; multiaddrs: string[]; signerAddress: string }[];
  };
  const coordinator = network.peers[0];
  if (!coordinator) throw new Error('the coordinator has no p2p peer');
  const wallet = Wallet.createRandom();
  const address = wallet.address.toLowerCase();
  const node = await createGpumeshNode({ listen: [], bootstrap: coordinator.multiaddrs });
  const peerId = nodePeerId(node);
  const gossip: GossipService = startGossip(node, {});
  const binding = await createPeerBinding(wallet, peerId);
  let behaviour: ModelAgentBehaviour = options.behaviour ?? 'honest';
  const offers: OfferSeen[] = [];
  let seq = 0;

  const advertise = async (): Promise<void> => {
    const now = Date.now();
    const advert = await signPayload(
      'advert',
      {
        version: 1,
        peerId,
        address,
        operatorId: address,
        seq: seq++,
        issuedAt: now,
        expiresAt: now + 60_000,
        backend: 'cpu',
        gpus: [],
        gflops: 1,
        pricePerUnit: options.pricePerUnit ?? '1',
        slots: options.slots ?? 2,
        freeSlots: options.slots ?? 2,
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
      const offer = signed.payload;
      offers.push({
        offerId: offer.jobId,
        attempt: offer.attempt,
        specHash: offer.specHash,
        kind: offer.spec.kind,
      });
      if (behaviour === 'reject') return { accept: false, reason: 'busy' };
      return {
        accept: true,
        run: async () => {
          const spec = offer.spec;
          const artifacts =
            spec.kind === 'matmul'
              ? []
              : [await fetchArtifact(node, ctx.remotePeer, spec.model.hash, { signal: ctx.signal })];
          const honest = await computeReference(spec, {
            backend: 'cpu',
            artifacts: artifacts.map((a) => ({
              format: a.format,
              modelJson: a.modelJson as Record<string, unknown>,
              weights: a.weights,
            })),
          });
          const outputs =
            behaviour === 'wrong' ? tamper(honest) : behaviour === 'zeros' ? zeroed(honest) : honest;
          const receipt = await signPayload(
            'receipt',
            {
              version: 1,
              jobId: offer.jobId,
              attempt: offer.attempt,
              providerPeerId: peerId,
              providerAddress: address,
              inputHash: hashTensors(spec.inputs),
              outputHash: hashOutputs(outputs),
              backend: 'cpu',
              timings: { queuedMs: 0, runMs: 5, totalMs: 5 },
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
    wallet,
    node,
    offers,
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
