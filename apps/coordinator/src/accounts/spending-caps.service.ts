import { Inject, Injectable } from '@nestjs/common';
import { getAddress } from 'ethers';
import {
  MAX_SPENDING_CAP,
  capHeadroom,
  spendingCapSigner,
  spendingCapTypedData,
  type SpendingCapDomain,
  type SpendingCapTypedData,
} from '@gpumesh/rewards';
import { DomainError } from '../common/domain-error.js';
import { SqlService } from '../database/sql.service.js';
import { SPENDING_CAP_DOMAIN } from './spending-cap-domain.js';
import {
  SpendingCapsRepository,
  spendingBoundsIn,
  type StoredSpendingCap,
} from './spending-caps.repository.js';

/** An account's spending cap as the API shows it. */
export interface SpendingCapView {
  /** The highest cap it signed for this escrow (0: nothing may be spent from its deposit). */
  cap: bigint;
  /** What it spent, holds or has reserved for jobs, from its escrow deposits. */
  spent: bigint;
  /** What it may still commit before it must sign a higher cap. */
  authorisedRemaining: bigint;
  /** What to sign (eth_signTypedData_v4) to raise it: `message.cap` is the current cap, to replace. */
  typedData: SpendingCapTypedData;
}

const DECIMAL = /^(0|[1-9][0-9]{0,77})$/;
const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

/** The refusal of new spending beyond an account's signed spending cap. */
export function spendingCapExceededError(cap: bigint, committed: bigint, cost: bigint): DomainError {
  const remaining = capHeadroom(cap, committed);
  return new DomainError(
    'SPENDING_CAP_EXCEEDED',
    `this job costs ${cost} base units but your signed spending cap leaves ${remaining} (cap ${cap}, ${committed < 0n ? 0n : committed} spent or reserved): sign a higher cap (EIP-712 SpendingCap, see GET /v1/account) and PUT it to /v1/account/spending-cap, or run gpumesh spending-cap`,
    { cap: cap.toString(), committed: committed.toString(), required: cost.toString() },
  );
}

/**
 * Developers' spending caps: what they signed bounds what the coordinator lets them commit and what
 * the settler can debit on chain (JobEscrow.debit reverts past it). Caps only rise.
 */
@Injectable()
export class SpendingCapsService {
  constructor(
    private readonly repo: SpendingCapsRepository,
    private readonly sql: SqlService,
    @Inject(SPENDING_CAP_DOMAIN) private readonly domain: SpendingCapDomain | null,
  ) {}

  /**
   * The account's cap and what it leaves, given its `available` balance; null when this coordinator
   * settles on no chain.
   */
  async view(accountId: string, address: string, available: bigint): Promise<SpendingCapView | null> {
    const domain = this.domain;
    if (!domain) return null;
    const [stored, bounds] = await Promise.all([
      this.repo.find(accountId, domain),
      spendingBoundsIn(this.sql, [accountId], domain),
    ]);
    const cap = stored?.cap ?? 0n;
    const deposited = bounds.get(accountId)?.deposited ?? 0n;
    const committed = deposited - available;
    const spent = committed < 0n ? 0n : committed;
    return {
      cap,
      spent,
      authorisedRemaining: capHeadroom(cap, spent),
      typedData: spendingCapTypedData(domain, address, cap),
    };
  }

  /**
   * Stores a cap the account signed, after checking the signature recovers to the account's own
   * address in this escrow's domain. A cap below the stored one is refused as stale (the same one
   * again is accepted: idempotent).
   */
  async raise(accountId: string, address: string, body: unknown): Promise<StoredSpendingCap> {
    const domain = this.domain;
    if (!domain) {
      throw new DomainError(
        'BAD_REQUEST',
        'this coordinator settles on no chain: balances are not escrowed and take no spending cap',
      );
    }
    const { cap, signature } = parseSpendingCapBody(body);
    const signer = spendingCapSigner(domain, address, cap, signature);
    const account = getAddress(address);
    if (signer !== account) {
      throw new DomainError(
        'SPENDING_CAP_SIGNATURE_INVALID',
        `signature: recovers to ${signer ?? 'no address'}, not this account (${account}); sign SpendingCap(account, cap) with the domain GET /v1/account shows (chain ${domain.chainId}, escrow ${domain.verifyingContract})`,
        { signer, account, domain },
      );
    }
    const stored = await this.repo.raise({ accountId, address, cap, signature }, domain);
    if (stored.cap > cap) {
      throw new DomainError(
        'SPENDING_CAP_STALE',
        `cap: ${cap} is below the cap already signed (${stored.cap}); caps only rise`,
        { cap: cap.toString(), current: stored.cap.toString() },
      );
    }
    return stored;
  }
}

/** `{ cap: decimal string (or safe integer), signature: 0x 65-byte hex }`, else VALIDATION_FAILED. */
export function parseSpendingCapBody(body: unknown): { cap: bigint; signature: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new DomainError(
      'VALIDATION_FAILED',
      'body: expected { "cap": "<base units>", "signature": "0x…" }',
    );
  }
  const { cap, signature, ...rest } = body as Record<string, unknown>;
  const extra = Object.keys(rest);
  if (extra.length > 0) throw new DomainError('VALIDATION_FAILED', `${extra[0]}: unknown field`);
  const text = typeof cap === 'number' && Number.isSafeInteger(cap) ? String(cap) : cap;
  if (typeof text !== 'string' || !DECIMAL.test(text) || BigInt(text) > MAX_SPENDING_CAP) {
    throw new DomainError('VALIDATION_FAILED', 'cap: expected base units as a decimal string (0 to 2^256-1)');
  }
  if (typeof signature !== 'string' || !SIGNATURE.test(signature)) {
    throw new DomainError('VALIDATION_FAILED', 'signature: expected a 65-byte 0x-prefixed hex signature');
  }
  return { cap: BigInt(text), signature };
}
