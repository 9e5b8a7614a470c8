-- AlterEnum
ALTER TYPE "EpochState" ADD VALUE 'FUNDING';

-- AlterTable
ALTER TABLE "Epoch" ADD COLUMN     "blockedReason" TEXT,
ADD COLUMN     "funded" BIGINT,
ADD COLUMN     "vetoes" INTEGER NOT NULL DEFAULT 0;

-- Deposits become one kind of escrow event: the table is renamed, not dropped (credited deposits
-- keep their exactly-once keys).
ALTER TABLE "ChainDeposit" RENAME TO "EscrowEvent";
ALTER TABLE "EscrowEvent" RENAME CONSTRAINT "ChainDeposit_pkey" TO "EscrowEvent_pkey";
ALTER SEQUENCE "ChainDeposit_id_seq" RENAME TO "EscrowEvent_id_seq";
ALTER INDEX "ChainDeposit_accountId_idx" RENAME TO "EscrowEvent_accountId_idx";
ALTER INDEX "ChainDeposit_chainKey_txHash_logIndex_key" RENAME TO "EscrowEvent_chainKey_txHash_logIndex_key";
ALTER TABLE "EscrowEvent" ADD COLUMN "kind" TEXT NOT NULL DEFAULT 'deposit',
ADD COLUMN "unlockAt" TIMESTAMP(3),
ALTER COLUMN "amount" DROP NOT NULL,
ALTER COLUMN "ledgerTxId" DROP NOT NULL;

-- CreateTable
CREATE TABLE "EscrowUnlock" (
    "accountId" UUID NOT NULL,
    "address" TEXT NOT NULL,
    "unlockAt" TIMESTAMP(3) NOT NULL,
    "txHash" TEXT NOT NULL,
    "requestedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EscrowUnlock_pkey" PRIMARY KEY ("accountId")
);
