import { TypedDataEncoder, getAddress, verifyTypedData, type Signer, type TypedDataField } from 'ethers';
import { RewardsError } from './errors.js';

/**
 * Spending caps: the EIP-712 message a developer signs to bound everything that may ever be debited
 * from its JobEscrow deposit (JobEscrow.authorize / setSpendingCap), and the arithmetic the
 * coordinator and the settler apply to it. The domain and type here match the contract byte for byte.
 */

/** JobEscrow's EIP-712 domain name and version. */
export const SPENDING_CAP_DOMAIN_NAME = 'gpumesh JobEscrow';
export const SPENDING_CAP_DOMAIN_VERSION = '1';

/** The EIP-712 types of a spending cap (`SpendingCap(address account,uint256 cap)`). */
export const SPENDING_CAP_TYPES: Record<string, TypedDataField[]> = {
  SpendingCap: [
    { name: 'account', type: 'address' },
    { name: 'cap', type: 'uint256' },
  ],
};

/** The largest cap the contract records (a signed cap above it is stored as this). */
export const MAX_STORED_SPENDING_CAP = 2n ** 128n - 1n;
/** The largest cap a signature may carry (uint256). */
export const MAX_SPENDING_CAP = 2n ** 256n - 1n;

/** The EIP-712 domain of one escrow. */
export interface SpendingCapDomain {
  readonly name: string;
  readonly version: string;
  readonly chainId: number;
  readonly verifyingContract: string;
}

/** The domain of the JobEscrow at `escrow` on chain `chainId`. */
export function spendingCapDomain(chainId: number, escrow: string): SpendingCapDomain {
  return {
    name: SPENDING_CAP_DOMAIN_NAME,
    version: SPENDING_CAP_DOMAIN_VERSION,
    chainId,
    verifyingContract: getAddress(escrow),
  };
}

/** Everything a client needs to sign a cap with `eth_signTypedData_v4` (cap as a decimal string). */
export interface SpendingCapTypedData {
  readonly domain: SpendingCapDomain;
  readonly types: Record<string, TypedDataField[]>;
  readonly primaryType: 'SpendingCap';
  readonly message: { readonly account: string; readonly cap: string };
}

export function spendingCapTypedData(
  domain: SpendingCapDomain,
  account: string,
  cap: bigint,
): SpendingCapTypedData {
  return {
    domain,
    types: SPENDING_CAP_TYPES,
    primaryType: 'SpendingCap',
    message: { account: getAddress(account), cap: cap.toString() },
  };
}

/** The EIP-712 digest JobEscrow checks the signature of `(account, cap)` against. */
export function spendingCapDigest(domain: SpendingCapDomain, account: string, cap: bigint): string {
  return TypedDataEncoder.hash(domain, SPENDING_CAP_TYPES, { account: getAddress(account), cap });
}

/** `signer` signs a cap on its own account. */
export async function signSpendingCap(
  signer: Signer,
  domain: SpendingCapDomain,
  cap: bigint,
): Promise<{ account: string; cap: bigint; signature: string }> {
  checkSpendingCap(cap);
  const account = getAddress(await signer.getAddress());
  const signature = await signer.signTypedData(domain, SPENDING_CAP_TYPES, { account, cap });
  return { account, cap, signature };
}

/**
 * The address that signed `(account, cap)` with an EOA key (ECDSA), or null for a signature that is
 * not one. A contract account's (ERC-1271) approval can only be checked on chain.
 */
export function spendingCapSigner(
  domain: SpendingCapDomain,
  account: string,
  cap: bigint,
  signature: string,
): string | null {
  try {
    return getAddress(
      verifyTypedData(domain, SPENDING_CAP_TYPES, { account: getAddress(account), cap }, signature),
    );
  } catch {
    return null;
  }
}

/** Throws unless `cap` fits a uint256. */
export function checkSpendingCap(cap: bigint): void {
  if (cap < 0n || cap > MAX_SPENDING_CAP) {
    throw new RewardsError('INVALID_AMOUNT', `spending cap ${cap} is outside 0..2^256-1`);
  }
}

/** The cap the contract records for a signed `cap`. */
export function storedSpendingCap(cap: bigint): bigint {
  return cap > MAX_STORED_SPENDING_CAP ? MAX_STORED_SPENDING_CAP : cap;
}

/** What may still be committed under `cap` once `committed` is (never negative). */
export function capHeadroom(cap: bigint, committed: bigint): bigint {
  return committed >= cap ? 0n : cap - committed;
}

/**
 * Whether new spending of `amount` fits under `cap` when `committed` is already spent or reserved
 * (the coordinator's admission check; JobEscrow.debit applies the same bound to `spent`).
 */
export function fitsSpendingCap(cap: bigint, committed: bigint, amount: bigint): boolean {
  return committed + amount <= cap;
}

/**
 * What the settler debits of `amount` from an account with `balance` in escrow and `spent` of its
 * `cap` debited: the amount, or the balance when that is less; null when that would pass the cap
 * (JobEscrow.debit would revert the whole batch with CapExceeded).
 */
export function debitableWithinCap(
  amount: bigint,
  balance: bigint,
  spent: bigint,
  cap: bigint,
): bigint | null {
  const payable = amount < balance ? amount : balance;
  return payable > capHeadroom(cap, spent) ? null : payable;
}
