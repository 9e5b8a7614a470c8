import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import {
  ConnectionGuard,
  createGpumeshNode,
  dialableAddresses,
  guardConnections,
  handleArtifactRequests,
  handleEpochFileRequests,
  nodePeerId,
  penalizePeer,
  PeerAction,
  PeerScoreStore,
  ResultByteBudget,
  type ConnectionGuardStats,
  type GuardedConnections,
  sendJobOffer,
  sendJobOffers,
  startGossip,
  type GossipService,
  type GpumeshNode,
  type JobOfferOutcome,
  type SendJobOfferOptions,
} from '@gpumesh/p2p';
import { isTensorRef, signPayloads, type JobOffer, type Signed } from '@gpumesh/protocol';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { ArtifactsService } from '../artifacts/artifacts.service.js';
import { OfferedArtifacts } from '../artifacts/offered-artifacts.js';
import { TensorsService } from '../tensors/tensors.service.js';
import {
  ByteRate,
  P2P_TENSOR_BURST_BYTES,
  p2pTensorBytesPerSecond,
  pacedChunks,
} from '../tensors/tensor-pacing.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ProvidersRepository } from '../providers/providers.repository.js';
import { SETTLEMENT_CHAIN, type SettlementChain } from '../settlement/settlement-chain.js';
import { SettlementRepository } from '../settlement/settlement.repository.js';
import { EpochAnnouncer } from './epoch-announcer.js';
import { loadCoordinatorIdentity, type CoordinatorIdentity } from './coordinator-identity.js';
import { NetworkDirectory } from './network-directory.js';
import { ProviderViewService } from './provider-view.service.js';

const REGISTER_EVERY_MS = 10_000;
/** How often connected peers are checked against bans (admin bans reach the view within 3 s). */
const BAN_SWEEP_EVERY_MS = 1_000;
/** How often the known peers (other coordinators, recently seen providers) are re-read. */
const KNOWN_PEERS_REFRESH_MS = 30_000;
/** A provider seen within this long is known: it may use the connection slots reserved for known peers. */
const KNOWN_PROVIDER_SEEN_WITHIN_MS = 7 * 24 * 3600 * 1000;
/** Most known providers remembered (the most recently seen first). */
const KNOWN_PROVIDERS_LIMIT = 10_000;
/** Offers to one provider travel together (one stream) up to this many. */
const OFFERS_PER_BATCH = 64;
/** An offer whose inputs are larger than this travels alone: batches are for small jobs. */
const BATCHED_INPUT_BYTES = 64 * 1024;

interface PendingOffer {
  readonly peerId: string;
  readonly offer: Omit<JobOffer, 'coordinatorPeerId'>;
  readonly options: SendJobOfferOptions;
  readonly resolve: (outcome: JobOfferOutcome) => void;
  readonly reject: (err: unknown) => void;
}

function inputBytes(offer: Omit<JobOffer, 'coordinatorPeerId'>): number {
  return offer.spec.inputs.reduce((n, t) => n + (isTensorRef(t) ? 0 : t.data.length), 0);
}

/**
 * The coordinator's libp2p peer. Runs in worker processes (they send the offers): receives signed
 * adverts over gossipsub into the provider view, serves model artifacts, and carries job offers.
 */
@Injectable()
export class P2pService implements OnApplicationBootstrap, OnApplicationShutdown {
  private node: GpumeshNode | null = null;
  private gossip: GossipService | null = null;
  private guarded: GuardedConnections | null = null;
  private identity: CoordinatorIdentity | null = null;
  private timer: NodeJS.Timeout | null = null;
  private banSweep: NodeJS.Timeout | null = null;
  private knownTimer: NodeJS.Timeout | null = null;
  /** p2p penalties of this node (gossip, artifact streams, receipts, frames). */
  readonly peerScore = new PeerScoreStore();
  /** Other coordinator processes: exempt from binding and connection caps. */
  private coordinatorPeers = new Set<string>();
  /** Providers seen recently (the Provider table) or bound here: they may use the reserved slots. */
  private knownProviders = new Set<string>();
  private stopServing: (() => Promise<void>) | null = null;
  private stopServingEpochFiles: (() => Promise<void>) | null = null;
  private epochAnnouncer: EpochAnnouncer | null = null;
  /**
   * Which provider may fetch which job input by ref (by sha256) from this worker: one holding an
   * open offer of a job that uses it, a few fetches per offer (as for model artifacts).
   */
  private readonly offeredTensors = new OfferedArtifacts();
  /** Offers made in this turn of the event loop, sent together at its end. */
  private pending: PendingOffer[] = [];
  /** Result bytes all job streams of this process may buffer (see SendJobOfferOptions.resultBudget). */
  private readonly resultBudget: ResultByteBudget;
  /** The pace of job inputs served and outputs received over libp2p (P2P_TENSOR_BYTES_PER_SECOND). */
  private readonly tensorServeRate: ByteRate | undefined;
  private readonly tensorReceiveRate: ByteRate | undefined;

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly view: ProviderViewService,
    private readonly artifacts: ArtifactsService,
    private readonly tensors: TensorsService,
    private readonly directory: NetworkDirectory,
    private readonly metrics: MetricsService,
    private readonly providers: ProvidersRepository,
    private readonly settlementRepo: SettlementRepository,
    @Inject(SETTLEMENT_CHAIN) private readonly chain: SettlementChain | null,
  ) {
    this.resultBudget = new ResultByteBudget({
      perPeerBytes: config.RESULT_BYTES_PER_PEER,
      totalBytes: config.RESULT_BYTES_TOTAL,
    });
    // Job inputs served and outputs received over libp2p, each direction paced on its own.
    const pace = p2pTensorBytesPerSecond(config.ROLE, config.P2P_TENSOR_BYTES_PER_SECOND);
    const bucket = (): ByteRate | undefined =>
      pace > 0 ? new ByteRate(pace, P2P_TENSOR_BURST_BYTES, performance.now()) : undefined;
    this.tensorServeRate = bucket();
    this.tensorReceiveRate = bucket();
  }

  get enabled(): boolean {
    return this.config.P2P_ENABLED && this.config.ROLE !== 'api';
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    this.identity = await loadCoordinatorIdentity(this.config.coordinatorKeyFile);
    const log = this.logger.child({ component: 'p2p' });
    // Fails fast on inconsistent limits (reserved slots must leave room for strangers).
    const guard = new ConnectionGuard({
      maxConnections: this.config.P2P_MAX_CONNECTIONS,
      reservedForKnown: this.config.P2P_RESERVED_KNOWN_SLOTS,
      maxUnbound: this.config.P2P_MAX_UNBOUND,
      maxUnboundPerIp: this.config.P2P_MAX_UNBOUND_PER_IP,
      unboundTimeoutMs: this.config.P2P_UNBOUND_TIMEOUT_MS,
      strangerGraceMs: this.config.P2P_STRANGER_GRACE_MS,
    });
    await this.refreshKnownPeers().catch((err: unknown) =>
      log.warn({ err }, 'could not read the known peers; every peer starts as a stranger'),
    );
    const node = await createGpumeshNode({
      privateKey: this.identity.peerKey,
      listen: this.config.P2P_LISTEN,
      announce: this.config.P2P_ANNOUNCE.length > 0 ? this.config.P2P_ANNOUNCE : undefined,
      maxConnections: this.config.P2P_MAX_CONNECTIONS,
      isPeerDenied: (peerId) => {
        const denied = this.isDenied(peerId);
        if (denied) this.metrics.p2pConnectionsRefused.inc({ reason: 'PEER_DENIED' });
        return denied;
      },
    });
    this.node = node;
    this.guarded = guardConnections(node, guard, {
      isTrustedPeer: (peerId) => this.coordinatorPeers.has(peerId),
      isKnownPeer: (peerId) => this.knownProviders.has(peerId),
      onRefused: (reason, peerId) => {
        this.metrics.p2pConnectionsRefused.inc({ reason });
        log.debug({ peerId, reason }, 'p2p connection refused');
      },
      onClosed: (reason, peerId) => {
        this.metrics.p2pConnectionsClosed.inc({ reason });
        log.debug({ peerId, reason }, 'p2p connection closed');
      },
    });
    this.gossip = startGossip(node, {
      peerScore: this.peerScore,
      isPeerDenied: (peerId) => this.isDenied(peerId),
      requireConnectedOrigin: true,
      onPeerBound: (peerId) => {
        this.knownProviders.add(peerId);
        this.guarded?.bind(peerId);
      },
      handlers: {
        advert: async (signed) => {
          await this.view.onAdvert(signed.payload);
        },
      },
      metrics: {
        onValidation: (labels) =>
          this.metrics.gossipMessages.inc({
            topic: labels.topic,
            verdict: labels.verdict,
            code: labels.code,
          }),
      },
      logger: { debug: (ctx, msg) => log.debug(ctx, msg), warn: (ctx, msg) => log.warn(ctx, msg) },
    });
    this.stopServing = await handleArtifactRequests(node, {
      // only a provider holding an open offer of a job that uses the model (from this worker)
      mayFetch: (hash, { remotePeer }) => this.artifacts.mayFetch(remotePeer, hash),
      getArtifact: (hash) => this.artifacts.content(hash),
      // job inputs by ref: the same rule, per tensor
      mayFetchTensor: (sha256, { remotePeer }) => this.offeredTensors.take(remotePeer, sha256),
      openTensor: async (sha256) => {
        const source = await this.tensors.source(sha256);
        if (source === undefined) return undefined;
        this.metrics.p2pTensorsServed.inc();
        this.metrics.p2pTensorBytesServed.inc(source.bytes);
        return { bytes: source.bytes, chunks: pacedChunks(source.chunks, this.tensorServeRate) };
      },
      // job outputs by ref: uploaded by a provider holding an open offer, within its job's size
      mayPutTensor: (upload, { remotePeer }) => this.tensors.mayStoreOutput(remotePeer, upload),
      storeTensor: (upload, chunks, { remotePeer }) =>
        this.tensors.storeOutput(remotePeer, upload, pacedChunks(chunks, this.tensorReceiveRate)),
      onRefused: (peer) =>
        this.penalize(peer, PeerAction.MidToleranceError, 'artifact fetch without an open offer'),
      onStreamError: (peer) => {
        penalizePeer(node, this.peerScore, peer, PeerAction.LowToleranceError, 'bad artifact stream');
      },
    });
    // Each posted epoch's file is announced and served by hash, so peers keep it (docs/settlement.md).
    if (this.chain !== null) {
      const announcer = new EpochAnnouncer({
        repo: this.settlementRepo,
        chain: this.chain,
        gossip: this.gossip,
        signer: this.identity.signer,
        peerId: nodePeerId(node),
        logger: log,
      });
      this.epochAnnouncer = announcer;
      this.stopServingEpochFiles = await handleEpochFileRequests(node, {
        getFile: (fileHash) => announcer.file(fileHash),
        onStreamError: (peer) => {
          penalizePeer(node, this.peerScore, peer, PeerAction.LowToleranceError, 'bad epoch file stream');
        },
        logger: { debug: (ctx, msg) => log.debug(ctx, msg), warn: (ctx, msg) => log.warn(ctx, msg) },
      });
      announcer.start();
    }
    // Only directly connected peers are placeable (ProviderViewService.onConnect).
    node.addEventListener('peer:connect', (evt) => {
      void this.view
        .onConnect(evt.detail.toString())
        .catch((err: unknown) => log.warn({ err }, 'could not admit a connected provider'));
    });
    for (const peer of node.getPeers()) void this.view.onConnect(peer.toString()).catch(() => undefined);
    node.addEventListener('peer:disconnect', (evt) => {
      void this.view
        .onDisconnect(evt.detail.toString())
        .catch((err: unknown) => log.warn({ err }, 'could not mark a provider offline'));
    });
    await this.register();
    this.timer = setInterval(() => void this.register().catch(() => undefined), REGISTER_EVERY_MS);
    this.timer.unref();
    this.banSweep = setInterval(() => this.hangUpDenied(), BAN_SWEEP_EVERY_MS);
    this.banSweep.unref();
    this.knownTimer = setInterval(
      () =>
        void this.refreshKnownPeers().catch((err: unknown) =>
          log.warn({ err }, 'could not refresh the known peers'),
        ),
      KNOWN_PEERS_REFRESH_MS,
    );
    this.knownTimer.unref();
    log.info(
      { peerId: nodePeerId(node), multiaddrs: dialableAddresses(node), signer: this.identity.address },
      'p2p node started',
    );
  }

  get peerId(): string {
    if (!this.node) throw new Error('p2p is not running in this process');
    return nodePeerId(this.node);
  }

  /**
   * Signs an offer with the coordinator's key and sends it to a provider. Offers made in the same
   * turn of the event loop share one signature (a Merkle batch), and small ones to the same provider
   * share one stream (`sendJobOffers`); each settles on its own.
   */
  offer(
    peerId: string,
    offer: Omit<JobOffer, 'coordinatorPeerId'>,
    options: SendJobOfferOptions,
  ): Promise<JobOfferOutcome> {
    if (!this.node || !this.identity) return Promise.reject(new Error('p2p is not running in this process'));
    // the provider may fetch the job's model from this worker while the offer is open
    const releaseModel = this.artifacts.openOffer(peerId, offer.spec.model?.hash);
    // ... and its inputs by ref
    const releaseTensors = offer.spec.inputs
      .filter(isTensorRef)
      .map((input) => this.offeredTensors.grant(peerId, input.sha256));
    // ... and it may upload the job's large outputs to this worker
    const releaseOutputs = this.tensors.grantOutputs(peerId, offer.spec);
    const release = (): void => {
      releaseModel();
      releaseOutputs();
      for (const r of releaseTensors) r();
    };
    return new Promise<JobOfferOutcome>((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => void this.sendPending());
      const streamOptions: SendJobOfferOptions = {
        resultBudget: this.resultBudget,
        silenceTimeoutMs: this.config.RESULT_SILENCE_TIMEOUT_MS,
        ...options,
      };
      this.pending.push({ peerId, offer, options: streamOptions, resolve, reject });
    }).finally(release);
  }

  private async sendPending(): Promise<void> {
    const batch = this.pending;
    this.pending = [];
    const node = this.node;
    const identity = this.identity;
    if (!node || !identity) {
      for (const p of batch) p.reject(new Error('p2p is not running in this process'));
      return;
    }
    let signed: Signed<JobOffer>[];
    try {
      const coordinatorPeerId = nodePeerId(node);
      signed = await signPayloads(
        'offer',
        batch.map((p) => ({ ...p.offer, coordinatorPeerId })),
        identity.signer,
      );
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    const byPeer = new Map<string, number[]>();
    batch.forEach((p, i) => {
      if (inputBytes(p.offer) > BATCHED_INPUT_BYTES) this.sendGroup(node, p.peerId, [i], batch, signed);
      else if (byPeer.has(p.peerId)) byPeer.get(p.peerId)?.push(i);
      else byPeer.set(p.peerId, [i]);
    });
    for (const [peerId, offers] of byPeer) {
      for (let k = 0; k < offers.length; k += OFFERS_PER_BATCH) {
        this.sendGroup(node, peerId, offers.slice(k, k + OFFERS_PER_BATCH), batch, signed);
      }
    }
  }

  private sendGroup(
    node: GpumeshNode,
    peerId: string,
    group: number[],
    batch: PendingOffer[],
    signed: Signed<JobOffer>[],
  ): void {
    if (group.length === 1) {
      const p = batch[group[0]];
      sendJobOffer(node, peerId, signed[group[0]], p.options).then(p.resolve, p.reject);
      return;
    }
    this.metrics.offerBatchSize.observe(group.length);
    const outcomes = sendJobOffers(
      node,
      peerId,
      group.map((i) => ({ offer: signed[i], options: batch[i].options })),
    );
    outcomes.forEach((outcome, k) => void outcome.then(batch[group[k]].resolve, batch[group[k]].reject));
  }

  /**
   * Costs a peer p2p score for misbehaviour seen outside gossip (a forged receipt, bad or half
   * frames); a peer whose score falls low enough is disconnected and refused for a while
   * (DENY_AFTER_DISCONNECT_MS), and when banned until its score decays.
   */
  penalize(peerId: string, action: PeerAction, reason: string): void {
    if (this.node) penalizePeer(this.node, this.peerScore, peerId, action, reason);
    else this.peerScore.applyAction(peerId, action, reason);
  }

  /** Refused by the connection gater and ignored in gossip: banned or recently penalised here, or banned by an admin. */
  isDenied(peerId: string): boolean {
    return this.peerScore.isDenied(peerId) || this.view.isBanned(peerId);
  }

  /** Has the peer presented a valid peer binding (an accepted advert) over an open connection? */
  isBound(peerId: string): boolean {
    return this.guarded?.isBound(peerId) ?? false;
  }

  /** Connections as the guard counts them (bound: presented a peer binding, or outbound/trusted). */
  connectionStats(): ConnectionGuardStats {
    return this.guarded?.stats() ?? { connections: 0, unbound: 0, bound: 0 };
  }

  /** Hangs up on connected peers that became denied (an admin ban, a ban made by another path). */
  private hangUpDenied(): void {
    const node = this.node;
    if (!node) return;
    for (const peer of node.getPeers()) {
      if (!this.isDenied(peer.toString())) continue;
      this.metrics.p2pConnectionsClosed.inc({ reason: 'PEER_DENIED' });
      node.hangUp(peer).catch(() => undefined);
    }
  }

  private async refreshKnownPeers(now = Date.now()): Promise<void> {
    const [coordinators, providers] = await Promise.all([
      this.directory.peers(now),
      this.providers.seenSince(new Date(now - KNOWN_PROVIDER_SEEN_WITHIN_MS), KNOWN_PROVIDERS_LIMIT),
    ]);
    this.coordinatorPeers = new Set(coordinators.map((p) => p.peerId));
    const known = new Set(providers);
    // peers bound since the last read whose advert is not stored yet stay known
    if (this.guarded)
      for (const peerId of this.knownProviders) if (this.guarded.isBound(peerId)) known.add(peerId);
    this.knownProviders = known;
  }

  /** Whether this process's p2p node is started. */
  get running(): boolean {
    return this.node !== null;
  }

  /** Connected agent peer ids. */
  connectedPeers(): string[] {
    return this.node ? this.node.getPeers().map((p) => p.toString()) : [];
  }

  private async register(): Promise<void> {
    if (!this.node || !this.identity) return;
    await this.directory.register({
      peerId: nodePeerId(this.node),
      multiaddrs: dialableAddresses(this.node),
      signerAddress: this.identity.address,
    });
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.banSweep) clearInterval(this.banSweep);
    if (this.knownTimer) clearInterval(this.knownTimer);
    this.guarded?.stop();
    if (this.node) {
      await this.directory.unregister(nodePeerId(this.node)).catch(() => undefined);
      this.epochAnnouncer?.stop();
      this.gossip?.stop();
      await this.stopServing?.().catch(() => undefined);
      await this.stopServingEpochFiles?.().catch(() => undefined);
      await this.node.stop();
      this.node = null;
    }
  }
}
