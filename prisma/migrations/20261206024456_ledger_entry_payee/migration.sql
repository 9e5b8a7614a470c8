-- AlterTable
ALTER TABLE "LedgerEntry" ADD COLUMN     "accountKind" TEXT,
ADD COLUMN     "payeePeerId" TEXT,
ADD COLUMN     "payoutAddress" TEXT;

-- Backfill: the payee of every entry written before this migration, from its account name, as the
-- ledger's writer fills it for new entries (apps/coordinator/src/ledger/accounts.ts payeeOf). Names
-- the ledger never wrote are left with nulls. LedgerEntry is append-only: its trigger is off for
-- this one statement (inside the migration's transaction).
ALTER TABLE "LedgerEntry" DISABLE TRIGGER "LedgerEntry_append_only";

UPDATE "LedgerEntry" e
   SET "accountKind" = p.kind, "payeePeerId" = p.peer, "payoutAddress" = p.address
  FROM (
    SELECT id,
           CASE WHEN account ~ '^acct:[^:]+:(available|reserved)$'
                  OR account ~ '^provider:[^:]+:(earned|held|held-fee)$' THEN split_part(account, ':', 3)
                WHEN settled THEN 'settled'
                WHEN account ~ '^system:(mint|fees|escrow|escrow-shortfall)$' THEN split_part(account, ':', 2)
           END AS kind,
           CASE WHEN account ~ '^provider:[^:]+:(earned|held|held-fee)$' THEN split_part(account, ':', 2) END AS peer,
           CASE WHEN settled THEN split_part(account, ':', 2) END AS address
      FROM (SELECT id, account,
                   account ~ '^provider:[^:]+:settled:(0|[1-9][0-9]*)$'
                     AND split_part(account, ':', 2) = lower(split_part(account, ':', 2)) AS settled
              FROM "LedgerEntry") named
  ) p
 WHERE e.id = p.id AND p.kind IS NOT NULL;

ALTER TABLE "LedgerEntry" ENABLE TRIGGER "LedgerEntry_append_only";
