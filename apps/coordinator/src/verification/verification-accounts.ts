/** Ledger accounts of verification (names beside ledger/ledger-accounts.ts). */
export const VerificationAccounts = {
  /** A provider's verified credits during the hold, before they vest into `provider:<peer>:earned`. */
  held: (peerId: string): string => `provider:${peerId}:held`,
  /**
   * The platform fee on a provider's held credits: it vests with them into `system:fees` (and so into
   * an epoch), or goes back to the developer with them.
   */
  heldFee: (peerId: string): string => `provider:${peerId}:held-fee`,
} as const;
