// The epoch watcher behind `gpumesh watch`: the optimistic part of settlement only protects anyone
// if someone checks each root inside its challenge window. It follows the roots the distributor
// holds, fetches each epoch's file, audits it against the chain (auditEpoch: leaf arithmetic,
// receipts used once, continuity with the previous epoch, the Merkle root, the file hash) and, with
// a guardian key, vetoes a wrong root by itself while its window is open, giving the hash of its
// findings as the reason.
import { setTimeout as sleep } from 'node:timers/promises';

import { type Provider, type Signer } from 'ethers';

import type { AuditProblem, PreviousEpoch } from './audit.js';
import { attachRewardsDistributor } from './contracts/rewards-distributor.js';
import { EpochAuditor } from './epoch-auditor.js';
import { keccak256Hex } from './keccak.js';

/** What the watcher found out about one posted root (or about itself). */
export type WatchEvent =
  | {
      readonly kind: 'ok';
      readonly epoch: number;
      readonly root: string;
      readonly leaves: number;
      readonly total: string;
    }
  | {
      readonly kind: 'wrong';
      readonly epoch: number;
      readonly root: string;
      readonly problems: readonly AuditProblem[];
      /** keccak256 of the findings: the veto's reason. */
      readonly reason: string;
      /** The veto: sent (its tx), not possible (why), or not tried (no guardian key). */
      readonly veto:
        { readonly sent: true; readonly txHash: string } | { readonly sent: false; readonly why: string };
    }
  | {
      /** The file is not available (withheld, or the server is down): nobody can build a proof. */
      readonly kind: 'unavailable';
      readonly epoch: number;
      readonly root: string;
      readonly why: string;
      /** Unix seconds when the root becomes final, veto or not. */
      readonly claimableAt: number;
    }
  | { readonly kind: 'error'; readonly why: string };

export interface EpochWatcherOptions {
  readonly distributor: string;
  /** The JobEscrow that funds the distributor: each file's funding must name it (when known). */
  readonly escrow?: string;
  /** Reads the chain. */
  readonly provider: Provider;
  /** Holds GUARDIAN_ROLE: wrong roots are vetoed with it. Without it the watcher only reports. */
  readonly guardian?: Signer;
  /**
   * The exact bytes (or text) of epoch `epoch`'s file, whose keccak256 the chain holds as `fileHash`,
   * or null when it cannot be had.
   */
  readonly fetchFile: (epoch: number, fileHash: string) => Promise<Uint8Array | string | null>;
  readonly onEvent: (event: WatchEvent) => void;
  /**
   * Given each file that checked out, to keep (`gpumesh watch --save-dir`): with it a provider can
   * claim (`gpumesh-agent claim --file`) after the coordinator is gone. A failure is reported, and
   * the file is offered again on the next pass.
   */
  readonly keep?: (epoch: number, file: Uint8Array | string) => Promise<void>;
  /** First epoch to check (default 1). */
  readonly fromEpoch?: number;
}

const ZERO_ROOT = /^0x0{64}$/;

/** Checks every posted root once (again when it changes after a veto and a re-post). */
export class EpochWatcher {
  /** epoch → `root:claimableAt` checked (a re-post, even of the same root, is checked again). */
  private readonly checked = new Map<number, string>();
  /** The leaves of files that passed (without receipts), for the continuity check of the next epoch. */
  private readonly good = new Map<number, PreviousEpoch>();
  /** Audits on two threads; its worker lives as long as the watcher (idle, it keeps no process up). */
  private readonly auditor = new EpochAuditor();

  constructor(private readonly options: EpochWatcherOptions) {}

  /** One pass over the roots on chain; resolves with what it found (also given to onEvent). */
  async checkOnce(): Promise<WatchEvent[]> {
    const events: WatchEvent[] = [];
    const emit = (event: WatchEvent): void => {
      events.push(event);
      this.options.onEvent(event);
    };
    const distributor = attachRewardsDistributor(this.options.distributor, this.options.provider);
    const { chainId } = await this.options.provider.getNetwork();
    const domain = { chainId: Number(chainId), distributor: this.options.distributor };
    const last = Number(await distributor.lastEpoch());
    for (let epoch = this.options.fromEpoch ?? 1; epoch <= last; epoch++) {
      const [rootRaw, fileHash, claimableAt, total] = await distributor.epochRoot(epoch);
      const root = rootRaw.toLowerCase();
      const posting = `${root}:${claimableAt}`;
      if (ZERO_ROOT.test(root) || this.checked.get(epoch) === posting) continue;
      let text: Uint8Array | string | null;
      try {
        text = await this.options.fetchFile(epoch, fileHash.toLowerCase());
      } catch (err) {
        emit({
          kind: 'unavailable',
          epoch,
          root,
          why: err instanceof Error ? err.message : String(err),
          claimableAt: Number(claimableAt),
        });
        continue;
      }
      if (text === null) {
        emit({
          kind: 'unavailable',
          epoch,
          root,
          why: 'no file is served',
          claimableAt: Number(claimableAt),
        });
        continue;
      }
      const report = await this.auditor.audit(text, root, fileHash, {
        previous: this.good.get(epoch - 1),
        domain,
        escrow: this.options.escrow,
        chainFundingRoot: await distributor.fundingRoot(epoch),
      });
      const problems = [...report.problems];
      if (report.ok && report.epoch !== epoch) {
        problems.push({ code: 'INVALID_FILE', message: `the file is of epoch ${report.epoch}` });
      }
      if (problems.length === 0 && this.options.keep) {
        try {
          await this.options.keep(epoch, text);
        } catch (err) {
          emit({ kind: 'error', why: `could not keep epoch ${epoch}'s file: ${(err as Error).message}` });
          continue;
        }
      }
      this.checked.set(epoch, posting);
      if (problems.length === 0) {
        this.good.set(epoch, { epoch, leaves: report.positions });
        this.good.delete(epoch - 2);
        emit({ kind: 'ok', epoch, root, leaves: report.leafCount, total: total.toString() });
        continue;
      }
      const reason = keccak256Hex(JSON.stringify({ epoch, root, problems }));
      emit({ kind: 'wrong', epoch, root, problems, reason, veto: await this.veto(epoch, reason) });
      // Later roots were dropped with this one; their re-posts are checked on the next pass.
      if (this.options.guardian) break;
    }
    return events;
  }

  /** Checks every `pollMs` until `signal` aborts; a failed pass is reported and retried. */
  async run(signal: AbortSignal, pollMs = 2_000): Promise<void> {
    while (!signal.aborted) {
      await this.checkOnce().catch((err: unknown) =>
        this.options.onEvent({ kind: 'error', why: err instanceof Error ? err.message : String(err) }),
      );
      // Ends early on abort and leaves no listener on the signal behind (one a pass would pile up).
      await sleep(pollMs, undefined, { signal }).catch(() => undefined);
    }
    await this.auditor.close();
  }

  private async veto(
    epoch: number,
    reason: string,
  ): Promise<{ sent: true; txHash: string } | { sent: false; why: string }> {
    const guardian = this.options.guardian;
    if (!guardian) return { sent: false, why: 'no guardian key: report only' };
    try {
      const distributor = attachRewardsDistributor(this.options.distributor, guardian);
      const tx = await distributor.vetoRoot(epoch, reason);
      await tx.wait(1);
      return { sent: true, txHash: tx.hash };
    } catch (err) {
      return { sent: false, why: err instanceof Error ? err.message.slice(0, 300) : String(err) };
    }
  }
}
