import { Injectable } from '@nestjs/common';
import type { SpendingCapDomain } from '@gpumesh/rewards';
import { SqlService, type SqlRunner } from '../database/sql.service.js';

/** An account's highest signed spending cap for one escrow. */
export interface StoredSpendingCap {
  accountId: string;
  address: string;
  cap: bigint;
  /** The account's EIP-712 signature; null for a cap read from the chain (already authorized there). */
  signature: string | null;
}

/** What bounds an account's new spending: its cap (0 without one) and its escrow deposits. */
export interface SpendingBound {
  /** The highest cap it signed for this escrow; 0n when it signed none. */
  cap: bigint;
  /** Deposits less withdrawals, as the escrow watcher applied them. */
  deposited: bigint;
}

/**
 * The bound of each of `accountIds` (inside the caller's transaction: submissions read it under the
 * balance-row lock they take). What an account has committed (spent, held or reserved) is
 * `deposited - available`: every base unit that left its available balance is reserved, held or
 * charged, and refunds come back to it. A minted balance (dev, tests) is not escrowed and not bounded.
 */
export async function spendingBoundsIn(
  tx: SqlRunner,
  accountIds: readonly string[],
  domain: SpendingCapDomain,
): Promise<Map<string, SpendingBound>> {
  const rows = await tx.query<{ accountId: string; cap: string | null; deposited: string }>(
    `SELECT a.id::text AS "accountId", c.cap::text AS cap,
            COALESCE((SELECT SUM(CASE WHEN e.kind = 'deposit' THEN e.amount ELSE -e.amount END)
                        FROM "EscrowEvent" e
                       WHERE e."accountId" = a.id AND e.kind IN ('deposit', 'withdrawal')), 0)::text AS deposited
       FROM unnest($1::uuid[]) AS a(id)
       LEFT JOIN "SpendingCap" c ON c."accountId" = a.id AND c."chainId" = $2 AND c.escrow = $3`,
    [accountIds, domain.chainId, domain.verifyingContract],
  );
  return new Map(
    rows.map((r) => [r.accountId, { cap: BigInt(r.cap ?? '0'), deposited: BigInt(r.deposited) }]),
  );
}

/**
 * Stores `cap` for `domain`'s escrow when it is higher than the account's stored cap (or that one is
 * for another escrow), inside the caller's transaction. Nothing else writes the SpendingCap table.
 */
async function upsertSpendingCapIn(
  runner: SqlRunner,
  input: { accountId: string; address: string; cap: bigint; signature: string | null },
  domain: SpendingCapDomain,
): Promise<void> {
  await runner.query(
    `INSERT INTO "SpendingCap" ("accountId", address, "chainId", escrow, cap, signature, "updatedAt")
     VALUES ($1::uuid, $2, $3, $4, $5::numeric, $6, now())
     ON CONFLICT ("accountId") DO UPDATE
        SET address = EXCLUDED.address, "chainId" = EXCLUDED."chainId", escrow = EXCLUDED.escrow,
            cap = EXCLUDED.cap, signature = EXCLUDED.signature, "updatedAt" = now()
      WHERE "SpendingCap".cap < EXCLUDED.cap OR "SpendingCap"."chainId" <> EXCLUDED."chainId"
         OR "SpendingCap".escrow <> EXCLUDED.escrow`,
    [
      input.accountId,
      input.address.toLowerCase(),
      domain.chainId,
      domain.verifyingContract,
      input.cap.toString(),
      input.signature,
    ],
  );
}

/**
 * Records a cap the escrow emitted (`SpendingCapAuthorized`, applied by the escrow watcher in its
 * transaction): the chain holds it already, so no signature is kept.
 */
export function recordOnChainSpendingCapIn(
  runner: SqlRunner,
  input: { accountId: string; address: string; cap: bigint },
  domain: SpendingCapDomain,
): Promise<void> {
  return upsertSpendingCapIn(runner, { ...input, signature: null }, domain);
}

/** The SpendingCap table's owner (with the two writers above). */
@Injectable()
export class SpendingCapsRepository {
  constructor(private readonly sql: SqlService) {}

  /** The account's highest cap for `domain`'s escrow, or null. */
  async find(accountId: string, domain: SpendingCapDomain): Promise<StoredSpendingCap | null> {
    const [row] = await this.capsWhere(`"accountId" = $3::uuid`, domain, [accountId]);
    return row ?? null;
  }

  /** The stored caps of the accounts at `addresses` (lower case) for `domain`'s escrow. */
  forAddresses(addresses: readonly string[], domain: SpendingCapDomain): Promise<StoredSpendingCap[]> {
    return this.capsWhere(`address = ANY($3::text[])`, domain, [addresses.map((a) => a.toLowerCase())]);
  }

  /**
   * Stores `cap` when it is higher than the stored one (or the stored one is for another escrow).
   * Returns the cap stored afterwards: `cap` itself, or the higher one already there.
   */
  async raise(
    input: { accountId: string; address: string; cap: bigint; signature: string },
    domain: SpendingCapDomain,
  ): Promise<StoredSpendingCap> {
    return this.sql.transaction(async (tx) => {
      await upsertSpendingCapIn(tx, input, domain);
      const [row] = await this.capsWhere(`"accountId" = $3::uuid`, domain, [input.accountId], tx);
      return row;
    });
  }

  private async capsWhere(
    where: string,
    domain: SpendingCapDomain,
    values: unknown[],
    runner: SqlRunner = this.sql,
  ): Promise<StoredSpendingCap[]> {
    const rows = await runner.query<{
      accountId: string;
      address: string;
      cap: string;
      signature: string | null;
    }>(
      `SELECT "accountId"::text AS "accountId", address, cap::text AS cap, signature
         FROM "SpendingCap" WHERE "chainId" = $1 AND escrow = $2 AND ${where}`,
      [domain.chainId, domain.verifyingContract, ...values],
    );
    return rows.map((r) => ({ ...r, cap: BigInt(r.cap) }));
  }
}
