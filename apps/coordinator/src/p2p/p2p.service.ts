import { Inject, Injectable, OnApplicationBootstrap, OnApplicationShutdown } from '@nestjs/common';
import type { Logger } from 'pino';
import {
  createGpumeshNode,
  dialableAddresses,
  handleArtifactRequests,
  nodePeerId,
  penalizePeer,
  PeerAction,
  sendJobOffer,
  sendJobOffers,
  startGossip,
  type GossipService,
  type GpumeshNode,
  type JobOfferOutcome,
  type SendJobOfferOptions,
} from '#p2p';
import { signPayloads, type JobOffer, type Signed } from '#protocol';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { ArtifactsRepository } from '../artifacts/artifacts.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { loadCoordinatorIdentity, type CoordinatorIdentity } from './coordinator-identity.js';
import { NetworkDirectory } from './network-directory.js';
import { ProviderViewService } from './provider-view.service.js';

const REGISTER_EVERY_MS = 10_000;
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
  return offer.spec.inputs.reduce((n, t) => n + t.data.length, 0);
}

/**
 * The coordinator's libp2p peer. Runs in worker processes (they send the offers): receives signed
 * adverts over gossipsub into the provider view, serves model artifacts, and carries job offers.
 */
@Injectable()
export class P2pService implements OnApplicationBootstrap, OnApplicationShutdown {
  private node: GpumeshNode | null = null;
  private gossip: GossipService | null = null;
  private identity: CoordinatorIdentity | null = null;
  private timer: NodeJS.Timeout | null = null;
  private stopServing: (() => Promise<void>) | null = null;
  /** Offers made in this turn of the event loop, sent together at its end. */
  private pending: PendingOffer[] = [];

  constructor(
    @Inject(APP_CONFIG) private readonly config: AppConfig,
    @Inject(LOGGER) private readonly logger: Logger,
    private readonly view: ProviderViewService,
    private readonly artifacts: ArtifactsRepository,
    private readonly directory: NetworkDirectory,
    private readonly metrics: MetricsService,
  ) {}

  get enabled(): boolean {
    return this.config.P2P_ENABLED && this.config.ROLE !== 'api';
  }

  async onApplicationBootstrap(): Promise<void> {
    if (!this.enabled) return;
    this.identity = await loadCoordinatorIdentity(this.config.coordinatorKeyFile);
    const node = await createGpumeshNode({
      privateKey: this.identity.peerKey,
      listen: this.config.P2P_LISTEN,
      announce: this.config.P2P_ANNOUNCE.length > 0 ? this.config.P2P_ANNOUNCE : undefined,
    });
    this.node = node;
    const log = this.logger.child({ component: 'p2p' });
    this.gossip = startGossip(node, {
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
      getArtifact: async (hash) => {
        const artifact = await this.artifacts.findWhole(hash);
        if (!artifact) return undefined;
        return {
          format: artifact.format as 'layers' | 'graph',
          modelJson: artifact.modelJson,
          weights: artifact.weights,
        };
      },
      onStreamError: (peer) => {
        if (this.gossip)
          penalizePeer(
            node,
            this.gossip.peerScore,
            peer,
            PeerAction.LowToleranceError,
            'bad artifact stream',
          );
      },
    });
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
    return new Promise((resolve, reject) => {
      if (this.pending.length === 0) setImmediate(() => void this.sendPending());
      this.pending.push({ peerId, offer, options, resolve, reject });
    });
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
    outcomes.forEach((outcome, k) => outcome.then(batch[group[k]].resolve, batch[group[k]].reject));
  }

  /**
   * Costs a peer p2p score for misbehaviour seen outside gossip (a forged receipt, bad or half
   * frames); a peer whose score falls low enough is disconnected and, when banned, refused.
   */
  penalize(peerId: string, action: PeerAction, reason: string): void {
    if (this.node && this.gossip) penalizePeer(this.node, this.gossip.peerScore, peerId, action, reason);
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
    if (this.node) {
      await this.directory.unregister(nodePeerId(this.node)).catch(() => undefined);
      this.gossip?.stop();
      await this.stopServing?.().catch(() => undefined);
      await this.node.stop();
      this.node = null;
    }
  }
}
