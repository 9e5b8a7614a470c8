/** Ledger accounts of settlement (beside those of ledger/ledger-accounts.ts). */
export const SettlementAccounts = {
  /** What a provider address was paid in `epoch`: the sweep of its peers' `provider:<peerId>:earned`. */
  settled: (address: string, epoch: number): string => `provider:${address.toLowerCase()}:settled:${epoch}`,
  /** Tokens held by the escrow contract on chain; its credits are developers' deposits. */
  escrow: 'system:escrow',
  /**
   * What left the escrow on chain beyond what the account had available off chain (a withdrawal the
   * coordinator did not stop in time): negative; an operator covers it when an epoch debits it.
   */
  shortfall: 'system:escrow-shortfall',
} as const;

/** `provider:<peerId>:earned` → `<peerId>`, or null for any other account. */
export function peerOfEarnedAccount(account: string): string | null {
  const m = /^provider:(.+):earned$/.exec(account);
  return m ? m[1] : null;
}

/** A settle entry's receipt id in the epoch file: the job and the peer it paid. */
export function receiptId(jobId: string, peerId: string): string {
  return `${jobId}:${peerId}`;
}
