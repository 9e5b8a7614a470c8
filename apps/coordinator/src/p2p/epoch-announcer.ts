import type { Logger } from 'pino';
import type { Wallet } from 'ethers';
import { PROTOCOL_VERSION, signPayload } from '@gpumesh/protocol';
import type { GossipService } from '@gpumesh/p2p';
import type { SettlementChain } from '../settlement/settlement-chain.js';
import type { SettlementRepository } from '../settlement/settlement.repository.js';

/** How often the posted epochs are read (a root posted by any worker is announced within this). */
export const EPOCH_ANNOUNCE_POLL_MS = 2_000;
/** Posted epochs read per pass: any of them not announced yet by this process is announced. */
export const EPOCHS_SCANNED = 16;
/** The newest this many posted epochs are announced again every EPOCH_REANNOUNCE_EVERY_MS, for late joiners. */
export const EPOCHS_REANNOUNCED = 4;
export const EPOCH_REANNOUNCE_EVERY_MS = 60_000;
/** An announcement is valid this long (the protocol allows up to MAX_EPOCH_ANNOUNCEMENT_TTL_MS). */
export const EPOCH_ANNOUNCEMENT_TTL_MS = 5 * 60_000;
/** File sizes remembered by file hash (a file is read from the database once, not on every pass). */
const FILE_SIZES_KEPT = 64;

/**
 * Announces each epoch root this coordinator posted on the epochs gossip topic (signed with its
 * offer key), and serves the files of posted epochs by hash to anyone who asks over the epoch-file
 * protocol: agents and watchers keep them, so the files outlive this coordinator.
 */
export class EpochAnnouncer {
  private readonly announced = new Set<string>();
  private readonly sizes = new Map<string, number>();
  private lastReannounce = 0;
  private seq = 0;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<void> | null = null;

  constructor(
    private readonly deps: {
      readonly repo: SettlementRepository;
      readonly chain: SettlementChain;
      readonly gossip: GossipService;
      readonly signer: Wallet;
      readonly peerId: string;
      readonly logger: Logger;
      readonly now?: () => number;
    },
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.tick(), EPOCH_ANNOUNCE_POLL_MS);
    this.timer.unref();
    void this.tick();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The bytes of a posted epoch's file whose keccak256 is `fileHash`. */
  async file(fileHash: string): Promise<Uint8Array | undefined> {
    const json = await this.deps.repo.postedFileByHash(fileHash);
    return json === null ? undefined : new TextEncoder().encode(json);
  }

  private async sizeOf(epoch: number, fileHash: string): Promise<number | undefined> {
    const known = this.sizes.get(fileHash);
    if (known !== undefined) return known;
    const json = await this.deps.repo.fileJson(epoch);
    if (json === null) return undefined;
    const size = Buffer.byteLength(json, 'utf8');
    this.sizes.set(fileHash, size);
    if (this.sizes.size > FILE_SIZES_KEPT) {
      const oldest = this.sizes.keys().next().value;
      if (oldest !== undefined) this.sizes.delete(oldest);
    }
    return size;
  }

  /** One pass: announce what is new, and the newest few again when it is time. */
  tick(): Promise<void> {
    this.running ??= this.announceDue().finally(() => (this.running = null));
    return this.running;
  }

  private async announceDue(): Promise<void> {
    const now = (this.deps.now ?? Date.now)();
    const reannounce = now - this.lastReannounce >= EPOCH_REANNOUNCE_EVERY_MS;
    try {
      const posted = await this.deps.repo.postedEpochs(EPOCHS_SCANNED);
      // oldest first, so a receiver learns epochs in order
      for (let rank = posted.length - 1; rank >= 0; rank--) {
        const epoch = posted[rank];
        if (epoch.root === null || epoch.fileHash === null) continue;
        const fresh = !this.announced.has(epoch.fileHash);
        if (!fresh && !(reannounce && rank < EPOCHS_REANNOUNCED)) continue;
        const size = await this.sizeOf(epoch.id, epoch.fileHash);
        if (size === undefined) continue;
        this.seq = Math.max(now, this.seq + 1);
        const signed = await signPayload(
          'epoch',
          {
            version: PROTOCOL_VERSION,
            peerId: this.deps.peerId,
            seq: this.seq,
            issuedAt: now,
            expiresAt: now + EPOCH_ANNOUNCEMENT_TTL_MS,
            chainId: this.deps.chain.chainId,
            distributor: this.deps.chain.contracts.distributor.toLowerCase(),
            epoch: epoch.id,
            root: epoch.root,
            fileHash: epoch.fileHash,
            size,
          },
          this.deps.signer,
        );
        const recipients = await this.deps.gossip.publishEpochAnnouncement(signed);
        this.announced.add(epoch.fileHash);
        if (fresh) {
          this.deps.logger.info(
            { epoch: epoch.id, fileHash: epoch.fileHash, recipients },
            'epoch file announced over p2p',
          );
        }
      }
      if (reannounce) this.lastReannounce = now;
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not announce the posted epochs');
    }
  }
}
