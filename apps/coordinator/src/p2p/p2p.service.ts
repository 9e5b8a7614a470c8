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
  startGossip,
  type GossipService,
  type GpumeshNode,
  type JobOfferOutcome,
  type SendJobOfferOptions,
} from '#p2p';
import type { JobOffer, Signed } from '#protocol';
import { signPayload } from '#protocol';
import { APP_CONFIG, type AppConfig } from '../config/config.js';
import { LOGGER } from '../logging/logger.js';
import { ArtifactsRepository } from '../artifacts/artifacts.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { loadCoordinatorIdentity, type CoordinatorIdentity } from './coordinator-identity.js';
import { NetworkDirectory } from './network-directory.js';
import { ProviderViewService } from './provider-view.service.js';

const REGISTER_EVERY_MS = 10_000;

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

  /** Signs an offer with the coordinator's key and sends it to a provider over libp2p. */
  async offer(
    peerId: string,
    offer: Omit<JobOffer, 'coordinatorPeerId'>,
    options: SendJobOfferOptions,
  ): Promise<JobOfferOutcome> {
    if (!this.node || !this.identity) throw new Error('p2p is not running in this process');
    const signed: Signed<JobOffer> = await signPayload(
      'offer',
      { ...offer, coordinatorPeerId: nodePeerId(this.node) },
      this.identity.signer,
    );
    return sendJobOffer(this.node, peerId, signed, options);
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
