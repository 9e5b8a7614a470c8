import { receiptId, type EpochFile } from './epoch-file.js';

/** What a provider's own journal says one job is worth to it: the net it accepted in the signed offer. */
export interface JournalPayment {
  readonly jobId: string;
  /** Base units after the platform fee signed into the offer; null for entries written before the fee was signed. */
  readonly net: bigint | null;
}

/** How one receipt of the provider's leaf compares with its journal. */
export type ReceiptMatch =
  /** The file pays exactly the journal's net. */
  | 'matched'
  /** The file pays less than the net the provider accepted: it is owed the difference. */
  | 'short'
  /** The file pays more than the journal's net. */
  | 'over'
  /** The journal has the job but no signed net (an entry from before the fee was signed). */
  | 'unsigned'
  /** The journal does not know the job (lost journal, another agent with the same key, or a made-up receipt). */
  | 'unknown';

export interface ReconciledReceipt {
  readonly jobId: string;
  readonly paid: bigint;
  readonly expected: bigint | null;
  readonly match: ReceiptMatch;
}

export interface EpochReconciliation {
  readonly epoch: number;
  /** The provider's slot in the distributor, or null when the epoch has no leaf for it. */
  readonly index: number | null;
  /** What the leaf says the provider has earned since the first epoch (0 without a leaf). */
  readonly cumulativeAmount: bigint;
  /** What this epoch adds for the provider: the sum of its receipts. */
  readonly paid: bigint;
  readonly receipts: readonly ReconciledReceipt[];
}

export interface ProviderReconciliation {
  readonly epochs: readonly EpochReconciliation[];
  /** Journal entries no file pays yet (still held, not yet settled, rejected or reversed). */
  readonly unpaid: readonly JournalPayment[];
  /** Σ over every file of the journal's nets that the files pay short. */
  readonly owedShort: bigint;
  readonly counts: Readonly<Record<ReceiptMatch, number>>;
}

/**
 * A provider's check of the epoch files against its own journal (the watcher's provider mode): each
 * receipt `jobId:<peerId>` its leaf lists is compared with the net the journal recorded for that job
 * (summed over the job's attempts), and journal entries no file pays are listed. Files are taken as
 * given: audit each against the chain (`auditEpoch`) first. Pure.
 */
export function reconcileProvider(
  files: readonly EpochFile[],
  identity: { readonly account: string; readonly peerId: string },
  journal: readonly JournalPayment[],
): ProviderReconciliation {
  const account = identity.account.toLowerCase();
  const suffix = receiptId('', identity.peerId);
  const expected = new Map<string, bigint | null>();
  for (const entry of journal) {
    const before = expected.get(entry.jobId);
    // One job may have several attempts by this provider: the ledger pays the job once, their sum.
    if (before === undefined) expected.set(entry.jobId, entry.net);
    else expected.set(entry.jobId, before === null || entry.net === null ? null : before + entry.net);
  }
  const counts: Record<ReceiptMatch, number> = { matched: 0, short: 0, over: 0, unsigned: 0, unknown: 0 };
  const seen = new Set<string>();
  let owedShort = 0n;
  const epochs: EpochReconciliation[] = [];
  for (const file of [...files].sort((a, b) => a.epoch - b.epoch)) {
    const leaf = file.leaves.find((l) => l.account === account);
    const receipts: ReconciledReceipt[] = [];
    let paid = 0n;
    for (const receipt of leaf?.receipts ?? []) {
      // A leaf of the provider's address may also hold receipts of another peer id under the same
      // address (a second agent): those are not this agent's to check.
      if (!receipt.id.endsWith(suffix)) continue;
      const jobId = receipt.id.slice(0, -suffix.length);
      const amount = BigInt(receipt.amount);
      paid += amount;
      seen.add(jobId);
      const want = expected.get(jobId);
      let match: ReceiptMatch;
      if (want === undefined) match = 'unknown';
      else if (want === null) match = 'unsigned';
      else if (amount === want) match = 'matched';
      else if (amount < want) {
        match = 'short';
        owedShort += want - amount;
      } else match = 'over';
      counts[match] += 1;
      receipts.push({ jobId, paid: amount, expected: want ?? null, match });
    }
    epochs.push({
      epoch: file.epoch,
      index: leaf?.index ?? null,
      cumulativeAmount: leaf ? BigInt(leaf.cumulativeAmount) : 0n,
      paid,
      receipts,
    });
  }
  const unpaid = [...expected].filter(([jobId]) => !seen.has(jobId)).map(([jobId, net]) => ({ jobId, net }));
  return { epochs, unpaid, owedShort, counts };
}
