import { JsonRpcProvider } from 'ethers';
import type { Logger } from 'pino';
import { fetchEpochFileFromAny, handleEpochFileRequests, type GpumeshNode } from '@gpumesh/p2p';
import type { EpochAnnouncement, Signed } from '@gpumesh/protocol';
import { attachRewardsDistributor, keccak256Hex, rpcProvider } from '@gpumesh/rewards';
import type { EpochFileStore } from './epoch-store.js';

/** Announcements waiting for their file at once (a coordinator announces a handful at a time). */
const MAX_PENDING_FETCHES = 8;
/** One attempt to fetch an announced file, from every peer in turn. */
const FETCH_TIMEOUT_MS = 30_000;
/** How long the chain may take to show a root the coordinator announced (its RPC may lag). */
const CHAIN_CHECK_ATTEMPTS = 5;
const CHAIN_CHECK_DELAY_MS = 1_000;

/** What became of one announcement. */
export type EpochKeepOutcome =
  | { kept: true; epoch: number; fileHash: string; from: string; checkedOnChain: boolean }
  | { kept: false; epoch: number; fileHash: string; reason: string };

export interface EpochKeeperOptions {
  readonly node: GpumeshNode;
  readonly store: EpochFileStore;
  readonly logger: Logger;
  /** Checks announcements against this chain before keeping their files; else the claim checks it. */
  readonly chainRpcUrl?: string;
  /** Called after each announcement was handled (status, tests). */
  readonly onOutcome?: (outcome: EpochKeepOutcome) => void;
}

/**
 * The agent's side of epoch data availability: on each announcement from its coordinator it fetches
 * the file (from the announcer, else any connected peer), keeps it only if the bytes hash to the
 * announced file hash and, when it has an RPC, that hash is the one on chain; and it serves every
 * file it holds to any peer that asks (`/gpumesh/epoch-file/1`).
 */
export class EpochKeeper {
  private readonly inFlight = new Set<string>();
  private readonly provider: JsonRpcProvider | null;
  private stopServing: (() => Promise<void>) | null = null;

  constructor(private readonly options: EpochKeeperOptions) {
    this.provider = options.chainRpcUrl === undefined ? null : rpcProvider(options.chainRpcUrl);
  }

  async start(): Promise<void> {
    const { store, logger } = this.options;
    this.stopServing = await handleEpochFileRequests(this.options.node, {
      getFile: (fileHash) => store.get(fileHash),
      logger: { debug: (c, m) => logger.debug(c, m), warn: (c, m) => logger.warn(c, m) },
    });
  }

  async stop(): Promise<void> {
    await this.stopServing?.().catch(() => undefined);
    this.provider?.destroy();
  }

  /** Gossip handler of the epochs topic (only announcements signed by the coordinator reach it). */
  async onAnnouncement(signed: Signed<EpochAnnouncement>, announcer: string): Promise<void> {
    const a = signed.payload;
    if (this.options.store.has(a.fileHash) || this.inFlight.has(a.fileHash)) return;
    if (this.inFlight.size >= MAX_PENDING_FETCHES) return; // re-announced later
    this.inFlight.add(a.fileHash);
    try {
      const outcome = await this.keep(a, announcer);
      const log = this.options.logger;
      if (outcome.kept) log.info(outcome, 'epoch file kept');
      else log.warn(outcome, 'epoch file not kept');
      this.options.onOutcome?.(outcome);
    } finally {
      this.inFlight.delete(a.fileHash);
    }
  }

  private async keep(a: EpochAnnouncement, announcer: string): Promise<EpochKeepOutcome> {
    const refused = (reason: string): EpochKeepOutcome => ({
      kept: false,
      epoch: a.epoch,
      fileHash: a.fileHash,
      reason,
    });
    let checkedOnChain = false;
    if (this.provider !== null) {
      const onChain = await this.chainFileHash(a);
      if (typeof onChain !== 'string') return refused(onChain.reason);
      if (onChain !== a.fileHash) return refused(`the chain has file hash ${onChain} for epoch ${a.epoch}`);
      checkedOnChain = true;
    }
    const node = this.options.node;
    const peers = [
      announcer,
      ...node
        .getPeers()
        .map((p) => p.toString())
        .filter((p) => p !== announcer),
    ];
    let fetched: { bytes: Uint8Array; peer: string };
    try {
      fetched = await fetchEpochFileFromAny(node, peers, a.fileHash, {
        hash: (bytes) => keccak256Hex(bytes),
        maxBytes: a.size,
        timeoutMs: FETCH_TIMEOUT_MS,
      });
    } catch (err) {
      return refused(`no peer served it: ${err instanceof Error ? err.message : String(err)}`);
    }
    await this.options.store.put(a.distributor, a.epoch, a.fileHash, fetched.bytes);
    return { kept: true, epoch: a.epoch, fileHash: a.fileHash, from: fetched.peer, checkedOnChain };
  }

  /** The file hash the chain holds for the announced epoch, or why it cannot be read. */
  private async chainFileHash(a: EpochAnnouncement): Promise<string | { reason: string }> {
    const provider = this.provider;
    if (provider === null) return { reason: 'no RPC' };
    try {
      const chainId = Number(await provider.send('eth_chainId', []));
      if (chainId !== a.chainId)
        return { reason: `the RPC is chain ${chainId}, the announcement names ${a.chainId}` };
      const distributor = attachRewardsDistributor(a.distributor, provider);
      for (let attempt = 1; ; attempt++) {
        const [, fileHash] = await distributor.epochRoot(a.epoch);
        if (!/^0x0+$/.test(fileHash) || attempt >= CHAIN_CHECK_ATTEMPTS) return fileHash.toLowerCase();
        await new Promise((r) => setTimeout(r, CHAIN_CHECK_DELAY_MS));
      }
    } catch (err) {
      return {
        reason: `cannot read the chain: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`,
      };
    }
  }
}
