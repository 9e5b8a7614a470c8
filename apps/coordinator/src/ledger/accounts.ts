/**
 * Ledger account names: the one module that builds and parses them. Everything else asks this module
 * for a name or for what a name means, never concatenates or matches the strings itself.
 *
 *   acct:<accountId>:available | acct:<accountId>:reserved   a developer's balances (never negative)
 *   provider:<peerId>:earned | :held | :held-fee             a provider's credits (see verification)
 *   provider:<address>:settled:<epoch>                       what a payout address was paid in an epoch
 *   system:mint | system:fees | system:escrow | system:escrow-shortfall
 */

export type DeveloperAccountKind = 'available' | 'reserved';
export type ProviderAccountKind = 'earned' | 'held' | 'held-fee';
export type SystemAccountKind = 'mint' | 'fees' | 'escrow' | 'escrow-shortfall';

/** What an account name means. `kind` alone tells every account apart from the others of its owner. */
export type ParsedAccount =
  | { readonly owner: 'developer'; readonly kind: DeveloperAccountKind; readonly accountId: string }
  | { readonly owner: 'provider'; readonly kind: ProviderAccountKind; readonly peerId: string }
  | { readonly owner: 'payout'; readonly kind: 'settled'; readonly address: string; readonly epoch: number }
  | { readonly owner: 'system'; readonly kind: SystemAccountKind };

/** Every account's kind; distinct across owners, so it alone says which kind of account a name is. */
export type AccountKind = ParsedAccount['kind'];

const DEVELOPER_KINDS: readonly string[] = ['available', 'reserved'] satisfies DeveloperAccountKind[];
const PROVIDER_KINDS: readonly string[] = ['earned', 'held', 'held-fee'] satisfies ProviderAccountKind[];
const SYSTEM_KINDS: readonly string[] = [
  'mint',
  'fees',
  'escrow',
  'escrow-shortfall',
] satisfies SystemAccountKind[];
const EPOCH_RE = /^(0|[1-9][0-9]*)$/;

/** A part of a name: non-empty and free of the separator. */
function segment(value: string, what: string): string {
  if (value.length === 0 || value.includes(':')) {
    throw new Error(`invalid ${what} for a ledger account name: ${JSON.stringify(value)}`);
  }
  return value;
}

/** A developer account's `available` or `reserved` balance. */
export function developerAccount(accountId: string, kind: DeveloperAccountKind): string {
  return `acct:${segment(accountId, 'account id')}:${kind}`;
}

/** A provider's `earned`, `held` or `held-fee` credits. */
export function providerAccount(peerId: string, kind: ProviderAccountKind): string {
  return `provider:${segment(peerId, 'peer id')}:${kind}`;
}

/** What a payout address (any case; the name holds it lower-cased) was paid in `epoch`. */
export function payoutAccount(address: string, epoch: number): string {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new Error(`invalid epoch ${epoch}`);
  return `provider:${segment(address.toLowerCase(), 'payout address')}:settled:${epoch}`;
}

/** One of the platform's own accounts. */
export function systemAccount(kind: SystemAccountKind): string {
  return `system:${kind}`;
}

/** The name of a parsed account (the inverse of parseAccount). */
export function accountName(account: ParsedAccount): string {
  switch (account.owner) {
    case 'developer':
      return developerAccount(account.accountId, account.kind);
    case 'provider':
      return providerAccount(account.peerId, account.kind);
    case 'payout':
      return payoutAccount(account.address, account.epoch);
    case 'system':
      return systemAccount(account.kind);
  }
}

/** What a name means, or null for a name the builders above never make. */
export function parseAccount(name: string): ParsedAccount | null {
  const parts = name.split(':');
  if (parts.some((p) => p.length === 0)) return null;
  const [owner, id, kind, epoch] = parts;
  if (owner === 'system' && parts.length === 2 && SYSTEM_KINDS.includes(id)) {
    return { owner: 'system', kind: id as SystemAccountKind };
  }
  if (owner === 'acct' && parts.length === 3 && DEVELOPER_KINDS.includes(kind)) {
    return { owner: 'developer', kind: kind as DeveloperAccountKind, accountId: id };
  }
  if (owner === 'provider' && parts.length === 3 && PROVIDER_KINDS.includes(kind)) {
    return { owner: 'provider', kind: kind as ProviderAccountKind, peerId: id };
  }
  if (
    owner === 'provider' &&
    parts.length === 4 &&
    kind === 'settled' &&
    id === id.toLowerCase() &&
    EPOCH_RE.test(epoch) &&
    Number.isSafeInteger(Number(epoch))
  ) {
    return { owner: 'payout', kind: 'settled', address: id, epoch: Number(epoch) };
  }
  return null;
}

/** The peer a provider account (`earned`, `held`, `held-fee`) belongs to, or null for any other. */
export function peerOfAccount(name: string, kind?: ProviderAccountKind): string | null {
  const parsed = parseAccount(name);
  if (parsed?.owner !== 'provider' || (kind !== undefined && parsed.kind !== kind)) return null;
  return parsed.peerId;
}

/**
 * Who a ledger entry on `name` pays, as stored beside the name in LedgerEntry (so SQL filters and
 * joins on columns instead of parsing names): the account's kind, the provider peer of its
 * `earned`/`held`/`held-fee` credits, the payout address of a `settled` account. Nulls for a name
 * parseAccount does not know.
 */
export interface EntryPayee {
  accountKind: AccountKind | null;
  payeePeerId: string | null;
  payoutAddress: string | null;
}

export function payeeOf(name: string): EntryPayee {
  const parsed = parseAccount(name);
  return {
    accountKind: parsed?.kind ?? null,
    payeePeerId: parsed?.owner === 'provider' ? parsed.peerId : null,
    payoutAddress: parsed?.owner === 'payout' ? parsed.address : null,
  };
}

/** The names every caller uses, by role. */
export const LedgerAccounts = {
  available: (accountId: string): string => developerAccount(accountId, 'available'),
  reserved: (accountId: string): string => developerAccount(accountId, 'reserved'),
  providerEarned: (peerId: string): string => providerAccount(peerId, 'earned'),
  /** A provider's verified credits during the hold, before they vest into its `earned` account. */
  held: (peerId: string): string => providerAccount(peerId, 'held'),
  /**
   * The platform fee on a provider's held credits: it vests with them into `system:fees` (and so into
   * an epoch), or goes back to the developer with them.
   */
  heldFee: (peerId: string): string => providerAccount(peerId, 'held-fee'),
  /** What a provider address was paid in `epoch`: the sweep of its peers' `earned` accounts. */
  settled: (address: string, epoch: number): string => payoutAccount(address, epoch),
  mint: systemAccount('mint'),
  fees: systemAccount('fees'),
  /** Tokens held by the escrow contract on chain; its credits are developers' deposits. */
  escrow: systemAccount('escrow'),
  /**
   * What left the escrow on chain beyond what the account had available off chain (a withdrawal the
   * coordinator did not stop in time): negative; an operator covers it when an epoch debits it.
   */
  shortfall: systemAccount('escrow-shortfall'),
} as const;
