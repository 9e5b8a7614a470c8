import { writeFile, rename } from 'node:fs/promises';
import { totalmem } from 'node:os';
import type { Logger } from 'pino';
import {
  createGpumeshNode,
  fetchArtifact,
  fetchTensor,
  handleJobOffers,
  nodePeerId,
  startGossip,
  type GpumeshNode,
  type JobRunResult,
  type OfferDecision,
} from '@gpumesh/p2p';
import {
  BatchSigner,
  MAX_REF_TENSOR_BYTES,
  REJECT_NO_CAPACITY,
  createPeerBinding,
  hashOutputs,
  hashTensors,
  isTensorRef,
  jobErrorFault,
  refTensorByteLength,
  signPayload,
  type JobOffer,
  type JobSpec,
  type PeerBinding,
  type Signed,
} from '@gpumesh/protocol';
import type { AgentConfig, AgentPaths } from '../agent-config.js';
import type { UnlockedIdentity } from '../keystore.js';
import {
  advertisedGpus,
  createExecutorPool,
  describeWebgpuAdapter,
  detectGpus,
  gpuUseVerdict,
  listGpus,
  toAdvertGpuInfo,
  type ExecutorPool,
} from '../runtime/index.js';
import { AttemptJournal } from './journal.js';
import { coordinatorOfferPolicy } from './offer-policy.js';
import { ArtifactCache, type ArtifactCacheStats, type ArtifactLease } from './artifact-cache.js';
import { TensorCache, type TensorCacheStats } from './tensor-cache.js';
import { fetchCoordinatorNetwork, trustedMultiaddrs } from './coordinator-directory.js';
import { coordinatorPeerIds, keepCoordinatorLink, type CoordinatorLinkState } from './coordinator-link.js';
import { EpochKeeper } from './epoch-keeper.js';
import { EpochFileStore } from './epoch-store.js';
import { outputsForResult } from './result-outputs.js';

export interface AgentStatus {
  peerId: string;
  address: string;
  backend: string;
  gflops: number;
  slots: number;
  running: number;
  completed: number;
  failed: number;
  reportedAttempts: number;
  /** Base units earned by reported attempts (credited by the coordinator once verified). */
  earned: string;
  /** The same after the platform fee signed into each offer. */
  net?: string;
  peers: string[];
  coordinatorConnected: boolean;
  /** The link to the coordinator: connected or not, since when, redial rounds, when the agent exits. */
  coordinator: CoordinatorLinkState;
  /** The agent's listen addresses ([] = dial-only). */
  listening: string[];
  /** Epoch files kept (checked by hash) and served to peers. */
  epochFiles: { distributor: string; epoch: number; fileHash: string }[];
  /** Job inputs by ref kept on disk: hits, misses, fetches shared between jobs, bytes saved, evictions. */
  tensorCache: TensorCacheStats;
  /** Model artifacts kept on disk: hits, misses, bytes kept, evictions. */
  artifactCache: ArtifactCacheStats;
  pid: number;
  version: string;
  startedAt: number;
  updatedAt: number;
}

export interface RunningAgent {
  peerId: string;
  address: string;
  backend: string;
  node: GpumeshNode;
  status(): AgentStatus;
  stop(): Promise<void>;
}

/** Connections an agent keeps at most: its coordinator's workers and nothing else. */
export const AGENT_MAX_CONNECTIONS = 32;
/** After a coordinator peer connects, how often the agent checks whether it subscribed to adverts. */
const ADVERT_SUBSCRIPTION_POLL_MS = 50;
/** ... and how long it waits for that before advertising anyway. */
const ADVERT_SUBSCRIPTION_WAIT_MS = 5_000;

const ADVERT_TTL_MS = 60_000;
const STATUS_EVERY_MS = 2_000;
const CHANGE_ADVERT_COALESCE_MS = 1_000;
const RECEIPT_LINGER_MS = 10;

/** Starts the provider daemon: executors, libp2p, adverts, and the job protocol. */
export async function startAgent(options: {
  config: AgentConfig;
  identity: UnlockedIdentity;
  paths: AgentPaths;
  logger: Logger;
  /** Pre-built executor pool (tests); default: one from the config. */
  pool?: ExecutorPool;
  /** The agent's version (shown by `status`). */
  version?: string;
  /** Called once the agent has had no coordinator for `config.maxDisconnectedSeconds`. */
  onGiveUp?: (disconnectedMs: number) => void;
  /** Called when the coordinator's addresses changed (from `/v1/network`): persist them. */
  onBootstrapChanged?: (addresses: string[]) => void;
}): Promise<RunningAgent> {
  const { config, identity, paths, logger } = options;
  const pool =
    options.pool ??
    (await createExecutorPool({
      slots: config.slots,
      backend: config.backend,
      memoryLimitMb: config.memoryLimitMb,
      defaultTimeoutMs: config.jobTimeoutMs,
      inlineOutputMaxBytes: config.inlineOutputMaxBytes,
    }));
  const backend = pool.backend.name;
  // A saved benchmark counts only for the backend it measured (a wasm figure is not a GPU's).
  const benchmarked =
    config.benchmarkGflops !== undefined &&
    (config.benchmarkBackend === undefined || config.benchmarkBackend === backend)
      ? config.benchmarkGflops
      : undefined;
  const gflops = benchmarked ?? Math.max(pool.backend.gflops, 0.001);
  const detection = await detectGpus();
  // GPUs are advertised only when jobs really run on them: the CUDA devices on tensorflow-gpu, the
  // hardware adapters of the executors on webgpu (a software adapter is CPU-class).
  const hardwareAdapters = pool.webgpuAdapters.filter((a) => !a.software);
  const advertGpus = advertisedGpus({
    backend,
    cuda: detection,
    webgpuAdapters: hardwareAdapters,
    listed: hardwareAdapters.length > 0 ? (await listGpus()).gpus : [],
    hostMemoryBytes: totalmem(),
  });
  const gpus = toAdvertGpuInfo(advertGpus);
  if (backend === 'webgpu') {
    logger.info(
      { adapters: pool.webgpuAdapters.map(describeWebgpuAdapter), gpus: advertGpus, gflops },
      gpus.length > 0
        ? 'advertising the WebGPU adapter(s) as GPUs'
        : 'WebGPU on a software adapter: advertised as CPU-class',
    );
  }
  // GPUs that jobs will not use (a failed optional install, missing CUDA libraries) are said loudly.
  const gpuUse = gpuUseVerdict(detection, pool.backend, config.backend);
  if (pool.backend.fallbacks.length > 0) {
    logger.info({ backend, skipped: pool.backend.fallbacks }, 'better backends were skipped');
  }
  if (!gpuUse.ok) {
    logger.error({ code: gpuUse.code, fix: gpuUse.fix }, `${gpuUse.message}; run \`gpumesh-agent doctor\``);
  }
  const journal = await AttemptJournal.open(paths.journal);
  const tensorCache = await TensorCache.open({
    dir: paths.tensors,
    budgetBytes: config.tensorCacheBytes,
    logger: logger.child({ component: 'tensor-cache' }),
  });
  const tensorCacheStats = tensorCache.stats();
  const artifacts = await ArtifactCache.open({
    dir: paths.artifacts,
    budgetBytes: config.artifactCacheBytes,
    // the room the tensor cache may still fill is not free for artifacts (both are in the data dir)
    reservedBytes: tensorCacheStats.budgetBytes - tensorCacheStats.bytes,
    logger: logger.child({ component: 'artifact-cache' }),
  });
  // Coordinator peers: those of the bootstrap list, plus those /v1/network names later, plus workers
  // that sent a verified offer (see coordinatorOfferPolicy). Nobody else may connect, in or out: an
  // agent serves one coordinator, so a stranger's connection only costs memory.
  const coordinatorPeers = new Set(coordinatorPeerIds(config.bootstrap));
  // Epoch peers (the owner's list) may connect too, to exchange epoch files and their announcements.
  const epochPeers = new Set(coordinatorPeerIds(config.epochPeers));
  const node = await createGpumeshNode({
    privateKey: identity.peerKey,
    listen: config.listen,
    bootstrap: [...config.bootstrap, ...config.epochPeers],
    mdns: config.mdns,
    maxConnections: AGENT_MAX_CONNECTIONS,
    isPeerDenied: (peer) => !coordinatorPeers.has(peer) && !epochPeers.has(peer),
  });
  const peerId = nodePeerId(node);
  const epochStore = await EpochFileStore.open(paths.epochs, identity.address, config.keepOtherEpochFiles);
  const epochKeeper = new EpochKeeper({
    node,
    store: epochStore,
    logger: logger.child({ component: 'epochs' }),
    ...(config.chainRpcUrl !== undefined ? { chainRpcUrl: config.chainRpcUrl } : {}),
  });
  await epochKeeper.start();
  const gossip = startGossip(node, {
    // Announcements of the coordinator this agent serves, relayed by anyone: each names a file to keep.
    isTrustedEpochAnnouncer: (signer) => signer === config.coordinatorAddress,
    handlers: { epoch: (signed, meta) => epochKeeper.onAnnouncement(signed, meta.from) },
  });
  const binding: PeerBinding = await createPeerBinding(identity.wallet, peerId);
  const listening = node.getMultiaddrs().map((a) => a.toString());
  if (listening.length > 0) {
    logger.warn(
      { listening },
      'listening for connections: only coordinator peers and epoch peers are accepted (set "listen": [] in the config to only dial out)',
    );
  }
  const counters = { running: 0, completed: 0, failed: 0 };
  // Receipts of jobs that finish close together share one signature: while other jobs are still
  // running, a receipt waits up to RECEIPT_LINGER_MS for theirs (a lone job never waits).
  const receiptSigner = new BatchSigner('receipt', identity.wallet, {
    expected: () => counters.running,
    lingerMs: RECEIPT_LINGER_MS,
  });
  const startedAt = Date.now();
  // Adverts carry a strictly increasing seq that survives restarts (the wall clock, bumped on ties).
  let lastSeq = 0;
  let lastAdvertFree = -1;

  const capacity = pool.slots * config.jobsPerSlot;
  const freeSlots = (): number => Math.max(0, capacity - counters.running);

  const advertise = async (): Promise<void> => {
    const now = Date.now();
    lastSeq = Math.max(now, lastSeq + 1);
    lastAdvertFree = freeSlots();
    const signed = await signPayload(
      'advert',
      {
        version: 1,
        peerId,
        address: identity.address,
        operatorId: config.operatorId ?? identity.address,
        seq: lastSeq,
        issuedAt: now,
        expiresAt: now + ADVERT_TTL_MS,
        backend,
        gpus,
        gflops,
        pricePerUnit: config.pricePerUnit,
        slots: capacity,
        freeSlots: lastAdvertFree,
        ...(config.region ? { region: config.region } : {}),
        binding,
      },
      identity.wallet,
    );
    await gossip
      .publishAdvert(signed)
      .catch((err: unknown) => logger.debug({ err }, 'advert not published (no peers yet)'));
  };

  // A change of free slots is re-advertised, coalesced to at most one advert per interval: the
  // coordinator counts its own reservations, adverts only reconcile it.
  let pendingAdvert: NodeJS.Timeout | null = null;
  const advertiseSoon = (): void => {
    if (pendingAdvert) return;
    pendingAdvert = setTimeout(() => {
      pendingAdvert = null;
      if (freeSlots() !== lastAdvertFree) void advertise();
    }, CHANGE_ADVERT_COALESCE_MS);
  };

  const status = (): AgentStatus => ({
    peerId,
    address: identity.address,
    backend,
    gflops,
    slots: pool.slots,
    ...counters,
    reportedAttempts: journal.reported,
    earned: journal.earned.toString(),
    net: journal.net.toString(),
    peers: node.getPeers().map((p) => p.toString()),
    coordinatorConnected: link.state().connected,
    coordinator: link.state(),
    listening,
    epochFiles: epochStore
      .list()
      .map((f) => ({ distributor: f.distributor, epoch: f.epoch, fileHash: f.fileHash })),
    tensorCache: tensorCache.stats(),
    artifactCache: artifacts.stats(),
    pid: process.pid,
    version: options.version ?? 'unknown',
    startedAt,
    updatedAt: Date.now(),
  });

  const writeStatus = async (): Promise<void> => {
    const tmp = `${paths.status}.tmp`;
    await writeFile(tmp, `${JSON.stringify(status(), null, 2)}\n`, { mode: 0o600 });
    await rename(tmp, paths.status);
  };

  const run = async (
    signed: Signed<JobOffer>,
    reportProgress: (f: number, m?: string) => void,
    signal: AbortSignal,
    remotePeer: string,
  ): Promise<JobRunResult> => {
    const offer = signed.payload;
    counters.running += 1;
    advertiseSoon();
    // The model's cache entry stays until the job ended (released in `finally`, whenever it came).
    let leased: Promise<ArtifactLease> | undefined;
    try {
      const ref = offer.spec.model;
      // The model and the inputs by ref come from the coordinator that sent the offer, while the
      // offer is open (it serves them to no one else), or from the agent's caches; each is checked
      // against the hash the signed offer names.
      leased = ref
        ? artifacts.acquire(ref.hash, () => fetchArtifact(node, remotePeer, ref.hash, { signal }))
        : undefined;
      const [lease, refInputs] = await Promise.all([
        leased,
        fetchRefInputs(node, remotePeer, offer.spec, signal, tensorCache),
      ]);
      const model = lease
        ? {
            format: lease.artifact.format,
            modelJson: lease.artifact.modelJson as Record<string, unknown>,
            weights: lease.artifact.weights,
          }
        : undefined;
      const result = await pool.run(
        { jobId: offer.jobId, attempt: offer.attempt, spec: offer.spec, model, refInputs },
        {
          signal,
          onProgress: (p) =>
            reportProgress(
              p.epoch / p.epochs,
              `epoch ${p.epoch}/${p.epochs}${p.loss === undefined ? '' : ` loss ${p.loss}`}`,
            ),
        },
      );
      // Cancelled by the coordinator while it ran (the developer cancelled the job): nothing is
      // reported, journaled or counted as earned for it.
      if (signal.aborted) throw new Error('the coordinator cancelled the attempt');
      // Large outputs go to the coordinator as binary chunks first; the result names them by ref.
      const outputs = await outputsForResult(
        node,
        remotePeer,
        [...result.outputs, ...result.largeOutputs],
        signal,
      );
      const receipt = await receiptSigner.sign({
        version: 1,
        jobId: offer.jobId,
        attempt: offer.attempt,
        providerPeerId: peerId,
        providerAddress: identity.address,
        inputHash: hashTensors(offer.spec.inputs),
        outputHash: hashOutputs(outputs),
        backend: result.backend,
        timings: result.timings,
        finishedAt: Date.now(),
      });
      // The fee is signed into the offer: what this attempt pays is fixed at acceptance.
      const gross = BigInt(offer.pricePerUnit) * BigInt(offer.workUnits);
      await journal.record({
        jobId: offer.jobId,
        attempt: offer.attempt,
        outputs,
        receipt,
        earned: gross.toString(),
        net: (gross - (gross * BigInt(offer.feeBps ?? 0)) / 10_000n).toString(),
        at: Date.now(),
      });
      counters.completed += 1;
      logger.info(
        { jobId: offer.jobId, attempt: offer.attempt, kind: offer.spec.kind, ms: result.timings.totalMs },
        'job done',
      );
      return { outputs, receipt };
    } catch (err) {
      counters.failed += 1;
      // The code goes to the coordinator as the error frame's; it says whose fault the failure is.
      const code = (err as { code?: unknown } | null)?.code;
      logger.warn(
        {
          jobId: offer.jobId,
          attempt: offer.attempt,
          code,
          fault: typeof code === 'string' ? jobErrorFault(code) : 'provider',
          err: err instanceof Error ? err.message : String(err),
        },
        'job failed',
      );
      throw err;
    } finally {
      void leased?.then(
        (lease) => lease.release(),
        () => undefined,
      );
      counters.running -= 1;
      advertiseSoon();
    }
  };

  const stopServing = await handleJobOffers(node, {
    // Large offers only from coordinator peers; see coordinatorOfferPolicy.
    ...coordinatorOfferPolicy({ coordinatorAddress: config.coordinatorAddress, coordinatorPeers }),
    onOffer: async (signed, ctx): Promise<OfferDecision> => {
      const offer = signed.payload;
      const reported = journal.find(offer.jobId, offer.attempt);
      if (reported) {
        // Already computed and reported before a restart: answer from the journal, never run twice.
        return { accept: true, run: async () => ({ outputs: reported.outputs, receipt: reported.receipt }) };
      }
      if (BigInt(offer.pricePerUnit) < BigInt(config.pricePerUnit)) {
        return {
          accept: false,
          reason: `price ${offer.pricePerUnit} is below this provider's ${config.pricePerUnit}`,
        };
      }
      if (freeSlots() === 0) return { accept: false, reason: `${REJECT_NO_CAPACITY}: no free slot` };
      return { accept: true, run: () => run(signed, ctx.reportProgress, ctx.signal, ctx.remotePeer) };
    },
    logger: { debug: (c, m) => logger.debug(c, m), warn: (c, m) => logger.warn(c, m) },
  });

  // Advertise as soon as a coordinator peer (re)connects and its advert subscription is known (the
  // coordinator drops connections that present no advert within seconds).
  const advertWaits = new Set<NodeJS.Timeout>();
  const advertiseTo = (coordinator: string): void => {
    const until = Date.now() + ADVERT_SUBSCRIPTION_WAIT_MS;
    const check = (): void => {
      if (gossip.topicPeers('advert').includes(coordinator) || Date.now() >= until) {
        void advertise();
        return;
      }
      const t = setTimeout(() => {
        advertWaits.delete(t);
        check();
      }, ADVERT_SUBSCRIPTION_POLL_MS);
      advertWaits.add(t);
    };
    check();
  };
  const link = keepCoordinatorLink({
    node,
    addresses: config.bootstrap,
    coordinatorPeers,
    refreshAddresses: async () => {
      const network = await fetchCoordinatorNetwork(config.coordinatorUrl);
      const trusted = trustedMultiaddrs(network, config.coordinatorAddress);
      if (trusted.length === 0) {
        logger.error(
          { coordinatorUrl: config.coordinatorUrl, trusted: config.coordinatorAddress },
          'the coordinator lists no peer signing offers as the trusted address; keeping the known addresses',
        );
        return null;
      }
      return trusted;
    },
    onAddressesChanged: (addresses) => options.onBootstrapChanged?.(addresses),
    backoff: config.reconnect,
    maxDisconnectedMs: config.maxDisconnectedSeconds * 1000,
    onGiveUp: (ms) => options.onGiveUp?.(ms),
    onCoordinatorConnected: advertiseTo,
    logger,
  });

  await advertise();
  for (const coordinator of link.state().connectedPeers) advertiseTo(coordinator);
  const advertTimer = setInterval(() => void advertise(), config.advertIntervalMs);
  const statusTimer = setInterval(() => void writeStatus().catch(() => undefined), STATUS_EVERY_MS);
  await writeStatus();
  logger.info(
    { peerId, address: identity.address, backend, gflops, slots: pool.slots, adapters: pool.adapters },
    'agent started',
  );

  return {
    peerId,
    address: identity.address,
    backend,
    node,
    status,
    stop: async () => {
      clearInterval(advertTimer);
      if (pendingAdvert) clearTimeout(pendingAdvert);
      clearInterval(statusTimer);
      link.stop();
      for (const t of advertWaits) clearTimeout(t);
      gossip.stop();
      await stopServing();
      await epochKeeper.stop();
      await node.stop();
      await pool.close();
      await tensorCache.settled();
      await artifacts.settled();
      await journal.close();
      await writeStatus().catch(() => undefined);
    },
  };
}

/**
 * The element bytes of every input of `spec` given by ref, by input name: from the tensor cache
 * (hashed as they are read), else fetched from `coordinator` over the artifact protocol (in parallel;
 * each checked for its length and sha256 while it arrives) and kept. The sha256 comes from the signed
 * offer, so a cached tensor is only ever used for a job that names its hash. Empty when every input
 * is inline.
 */
async function fetchRefInputs(
  node: GpumeshNode,
  coordinator: string,
  spec: JobSpec,
  signal: AbortSignal,
  cache: TensorCache,
): Promise<Map<string, Uint8Array>> {
  const refs = spec.inputs.filter(isTensorRef);
  const fetched = await Promise.all(
    refs.map((input) => {
      const want = { sha256: input.sha256, bytes: refTensorByteLength(input.dtype, input.shape) };
      return cache.getOrFetch(
        want,
        (fetchSignal) =>
          fetchTensor(node, coordinator, want, { signal: fetchSignal, maxBytes: MAX_REF_TENSOR_BYTES }),
        signal,
      );
    }),
  );
  return new Map(refs.map((input, i) => [input.name, fetched[i]]));
}
