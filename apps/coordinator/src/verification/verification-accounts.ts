/** Ledger accounts of verification (names beside ledger/ledger-accounts.ts). */
export const VerificationAccounts = {
  /** A provider's verified credits during the hold, before they vest into `provider:<peer>:earned`. */
  held: (peerId: string): string => `provider:${peerId}:held`,
  /** Funds canary jobs: developers' canary shares come in, canary reservations go out (may be negative). */
  canary: 'system:canary',
} as const;

/** The EVM-shaped address of the system account that owns canary jobs (no key exists for it). */
export const CANARY_ACCOUNT_ADDRESS = '0x000000000000000000000000000000000000ca11';
