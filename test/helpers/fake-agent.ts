// A minimal provider built only from libs/p2p and libs/protocol: real libp2p node, real signed
// adverts and receipts, with a plain-JS matmul in place of the TensorFlow.js runtime. It stands in
// for the agent where the subject of a test is the coordinator's dispatch path.
import { Wallet, type HDNodeWallet } from 'ethers';
import {
  createGpumeshNode,
  createOfferVerifier,
  fetchTensor,
  handleJobOffers,
  putTensor,
  nodePeerId,
  startGossip,
  type GossipService,
  type GpumeshNode,
} from '@gpumesh/p2p';
import {
  MAX_REF_TENSOR_BYTES,
  REJECT_NO_CAPACITY,
  createPeerBinding,
  decodeTensor,
  encodeTensor,
  hashOutputs,
  hashTensors,
  isTensorRef,
  refTensorByteLength,
  signPayload,
  type JobInput,
  type JobSpec,
  type ResultTensor,
  type TensorWire,
} from '@gpumesh/protocol';
import { createHash } from 'node:crypto';

/**
 * honest: the right result (float64 accumulation, or float32 with `float: 'f32'`, as a different
 * honest backend would); reject; full (rejects as a provider with no free slot); hang; and cheaters: wrong (every value + 1), noise (values
 * perturbed by ~1%), zeros, inf (every value +Infinity), stale (replays its previous output when the shape matches, else zeros),
 * copy (a collusion ring: when two members are offered the same job they return one shared wrong
 * output; otherwise honest, so only pairing can reveal them); bad-input (fails every job with the
 * `BAD_INPUT` error an agent's kernel reports for inputs it cannot take: the input's fault).
 */
export type FakeBehaviour =
  | 'honest'
  | 'reject'
  | 'full'
  | 'wrong'
  | 'hang'
  | 'noise'
  | 'zeros'
  | 'inf'
  | 'stale'
  | 'copy'
  | 'bad-input';

/**
 * Colluders sharing what they were offered and one wrong output per job. Offers carry per-attempt
 * ids, so the ring recognises copies of one job by what it can still see: the spec hash.
 */
export class CollusionRing {
  private readonly offered = new Map<string, number>();
  private readonly outputs = new Map<string, TensorWire[]>();
  /** Spec hashes of the jobs on which the ring returned a shared wrong output. */
  readonly cheatedJobs = new Set<string>();

  offer(jobId: string): void {
    this.offered.set(jobId, (this.offered.get(jobId) ?? 0) + 1);
  }

  paired(jobId: string): boolean {
    return (this.offered.get(jobId) ?? 0) >= 2;
  }

  /** The shared wrong output of a job (made by the first member to ask). */
  shared(jobId: string, honest: TensorWire[]): TensorWire[] {
    let out = this.outputs.get(jobId);
    if (!out) {
      out = [mapValues(honest[0], (x) => x * 1.5 + 0.25)];
      this.outputs.set(jobId, out);
    }
    this.cheatedJobs.add(jobId);
    return out;
  }
}

function mapValues(t: TensorWire, f: (x: number, i: number) => number): TensorWire {
  const v = decodeTensor(t).values as Float32Array;
  return encodeTensor(
    t.name,
    'float32',
    t.shape,
    v.map((x, i) => f(x, i)),
  );
}

export interface FakeAgent {
  peerId: string;
  address: string;
  offers: number;
  /** The specs of the offers it received (what a provider sees of a job). */
  offeredSpecs: JobSpec[];
  /** The platform fee signed into each offer it received, in order (basis points). */
  offeredFees: (number | undefined)[];
  /** Attempts the coordinator cancelled while this agent worked on them (it stopped). */
  cancelledRuns: number;
  node: GpumeshNode;
  setBehaviour(b: FakeBehaviour): void;
  /** How long it works on each further job before returning the result. */
  setRunDelay(ms: number): void;
  stop(): Promise<void>;
}

interface NetworkBody {
  peers: { peerId: string; multiaddrs: string[]; signerAddress: string }[];
}

/**
 * Plain-JS reference matmul of a spec's inputs `a` and `b` (named `c` like the agent's kernel);
 * `f32` accumulates in float32 like a different honest backend would.
 */
export function referenceMatmul(
  spec: JobSpec,
  precision: 'f64' | 'f32' = 'f64',
  /** The fetched element bytes of inputs by ref, by name. */
  refInputs: ReadonlyMap<string, Uint8Array> = new Map(),
): TensorWire[] {
  const a = spec.inputs.find((t) => t.name === 'a');
  const b = spec.inputs.find((t) => t.name === 'b');
  if (!a || !b) throw new Error('matmul needs inputs a and b');
  const [m, k] = a.shape;
  const n = b.shape[1];
  const values = (t: JobInput): ArrayLike<number> => {
    if (!isTensorRef(t)) return decodeTensor(t).values;
    const bytes = refInputs.get(t.name);
    if (!bytes) throw new Error(`input ${t.name} is by ref and was not fetched`);
    return t.dtype === 'int32'
      ? new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
      : new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
  };
  const av = values(a);
  const bv = values(b);
  const out = new Float32Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      if (precision === 'f32') {
        for (let x = 0; x < k; x++)
          s = Math.fround(s + Math.fround(Number(av[i * k + x]) * Number(bv[x * n + j])));
      } else {
        for (let x = 0; x < k; x++) s += Number(av[i * k + x]) * Number(bv[x * n + j]);
      }
      out[i * n + j] = s;
    }
  return [encodeTensor('c', 'float32', [m, n], out)];
}

export async function startFakeAgent(
  coordinatorUrl: string,
  options: {
    operatorId?: string;
    pricePerUnit?: string;
    behaviour?: FakeBehaviour;
    slots?: number;
    /** Accumulation precision of honest results (default f64). */
    float?: 'f64' | 'f32';
    /**
     * Return outputs by ref, as the real agent does over its inline threshold: the bytes go up with
     * `put-tensor` to the coordinator that offered the job, the result names their sha256.
     */
    outputsByRef?: boolean;
    /** The ring of a `copy` agent. */
    ring?: CollusionRing;
    /** Every offer id (the attempt's wire id) this agent returned a wrong result for. */
    onCheat?: (offerId: string) => void;
    /** Every offer id this agent ran, with whether it cheated. */
    onRun?: (offerId: string, cheated: boolean) => void;
    /** How long it works on a job before returning the result (default: at once). */
    runDelayMs?: number;
    /** How often it re-advertises (default 300 ms; many agents in one process want it slower). */
    advertEveryMs?: number;
    /** The wallet that signs its adverts (its operator and staking address; default: a new one). */
    wallet?: Wallet | HDNodeWallet;
    /** What it advertises (default 1 GFLOP/s on the cpu backend, no GPU): it may lie. */
    gflops?: number;
    gpus?: { model: string; vramMiB: number }[];
    backend?: 'tensorflow-gpu' | 'tensorflow' | 'wasm' | 'cpu';
  } = {},
): Promise<FakeAgent> {
  let network: NetworkBody = { peers: [] };
  for (let i = 0; i < 50 && network.peers.length === 0; i++) {
    network = (await (await fetch(`${coordinatorUrl}/v1/network`)).json()) as NetworkBody;
    if (network.peers.length === 0) await new Promise((r) => setTimeout(r, 100));
  }
  const coordinator = network.peers[0];
  if (!coordinator) throw new Error('the coordinator has no p2p peer');
  const wallet = options.wallet ?? Wallet.createRandom();
  const address = wallet.address.toLowerCase();
  const node = await createGpumeshNode({ listen: [], bootstrap: coordinator.multiaddrs });
  const peerId = nodePeerId(node);
  const gossip: GossipService = startGossip(node, {});
  const binding = await createPeerBinding(wallet, peerId);
  let behaviour: FakeBehaviour = options.behaviour ?? 'honest';
  let runDelayMs = options.runDelayMs ?? 0;
  // The wall clock, bumped on ties, like the real agent: the replay guard keeps one seq per signer,
  // so peers sharing a wallet must not each count from 0.
  let seq = 0;
  const state = { offers: 0, cancelled: 0 };
  const offeredSpecs: JobSpec[] = [];
  const offeredFees: (number | undefined)[] = [];
  let previous: TensorWire[] | null = null;

  const advertise = async (): Promise<void> => {
    const now = Date.now();
    const advert = await signPayload(
      'advert',
      {
        version: 1,
        peerId,
        address,
        operatorId: options.operatorId ?? address,
        seq: (seq = Math.max(now, seq + 1)),
        issuedAt: now,
        expiresAt: now + 60_000,
        backend: options.backend ?? 'cpu',
        gpus: options.gpus ?? [],
        gflops: options.gflops ?? 1,
        pricePerUnit: options.pricePerUnit ?? '1',
        slots: options.slots ?? 4,
        freeSlots: options.slots ?? 4,
        binding,
      },
      wallet,
    );
    await gossip.publishAdvert(advert).catch(() => 0);
  };
  const timer = setInterval(() => void advertise(), options.advertEveryMs ?? 300);

  const stopServing = await handleJobOffers(node, {
    verifyOffer: createOfferVerifier({ coordinatorAddress: coordinator.signerAddress }),
    onOffer: async (signed, ctx) => {
      state.offers += 1;
      if (offeredSpecs.length < 1000) offeredSpecs.push(signed.payload.spec);
      if (offeredFees.length < 1000) offeredFees.push(signed.payload.feeBps);
      if (behaviour === 'reject') return { accept: false, reason: 'busy' };
      if (behaviour === 'full') return { accept: false, reason: `${REJECT_NO_CAPACITY}: no free slot` };
      // Copies of one job are offered under unrelated ids: colluders pair them by spec hash.
      if (behaviour === 'copy') options.ring?.offer(signed.payload.specHash);
      return {
        accept: true,
        run: async () => {
          if (runDelayMs > 0) {
            await new Promise<void>((r) => {
              const timer = setTimeout(r, runDelayMs);
              ctx.signal.addEventListener(
                'abort',
                () => {
                  clearTimeout(timer);
                  r();
                },
                { once: true },
              );
            });
          }
          if (ctx.signal.aborted) {
            state.cancelled += 1;
            throw new Error('stopped: the coordinator cancelled the attempt');
          }
          if (behaviour === 'hang')
            await new Promise((_r, reject) =>
              ctx.signal.addEventListener('abort', () => reject(new Error('aborted'))),
            );
          const offer = signed.payload;
          if (behaviour === 'bad-input') {
            throw Object.assign(new Error(`${offer.spec.kind} inputs cannot run here (test agent)`), {
              code: 'BAD_INPUT',
            });
          }
          // inputs by ref come from the coordinator that offered the job, like the real agent's
          const refs = offer.spec.inputs.filter(isTensorRef);
          const fetched = await Promise.all(
            refs.map((t) =>
              fetchTensor(
                node,
                ctx.remotePeer,
                { sha256: t.sha256, bytes: refTensorByteLength(t.dtype, t.shape) },
                { signal: ctx.signal, maxBytes: MAX_REF_TENSOR_BYTES },
              ),
            ),
          );
          const honest = referenceMatmul(
            offer.spec,
            options.float ?? 'f64',
            new Map(refs.map((t, i) => [t.name, fetched[i]])),
          );
          let outputs = honest;
          if (behaviour === 'wrong') outputs = [mapValues(honest[0], (x) => x + 1)];
          else if (behaviour === 'noise')
            outputs = [mapValues(honest[0], (x) => x * (1 + (Math.random() - 0.5) * 0.02))];
          else if (behaviour === 'zeros') outputs = [mapValues(honest[0], () => 0)];
          else if (behaviour === 'inf') outputs = [mapValues(honest[0], () => Infinity)];
          else if (behaviour === 'stale') {
            const same = previous && previous[0].shape.join('x') === honest[0].shape.join('x');
            outputs = same && previous ? previous : [mapValues(honest[0], () => 0)];
          } else if (behaviour === 'copy' && options.ring) {
            await new Promise((r) => setTimeout(r, 150)); // let a partner's offer of the same job arrive
            if (options.ring.paired(offer.specHash)) outputs = options.ring.shared(offer.specHash, honest);
          }
          previous = honest;
          const cheated = outputs !== honest;
          let returned: ResultTensor[] = outputs;
          if (options.outputsByRef) {
            returned = await Promise.all(
              outputs.map(async (t): Promise<ResultTensor> => {
                const bytes = new Uint8Array(Buffer.from(t.data, 'base64'));
                const sha256 = createHash('sha256').update(bytes).digest('hex');
                await putTensor(node, ctx.remotePeer, bytes, sha256, { signal: ctx.signal });
                return { name: t.name, ref: `sha256:${sha256}`, dtype: t.dtype, shape: t.shape, sha256 };
              }),
            );
          }
          if (cheated) options.onCheat?.(offer.jobId);
          options.onRun?.(offer.jobId, cheated);
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
              outputHash: hashOutputs(returned),
              backend: options.float === 'f32' ? 'wasm' : 'cpu',
              timings: { queuedMs: 0, runMs: 1, totalMs: 1 },
              finishedAt: Date.now(),
            },
            wallet,
          );
          return { outputs: returned, receipt };
        },
      };
    },
  });
  await advertise();

  return {
    peerId,
    address,
    node,
    get cancelledRuns() {
      return state.cancelled;
    },
    get offers() {
      return state.offers;
    },
    offeredSpecs,
    offeredFees,
    setBehaviour: (b) => {
      behaviour = b;
    },
    setRunDelay: (ms) => {
      runDelayMs = ms;
    },
    stop: async () => {
      clearInterval(timer);
      gossip.stop();
      await stopServing();
      await node.stop();
    },
  };
}
