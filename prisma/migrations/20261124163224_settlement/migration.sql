-- AlterTable
ALTER TABLE "Epoch" ADD COLUMN     "chainKey" TEXT,
ADD COLUMN     "finalizedAt" TIMESTAMP(3),
ADD COLUMN     "fundingTxHash" TEXT,
ADD COLUMN     "lastEntryId" BIGINT,
ADD COLUMN     "postedAt" TIMESTAMP(3),
ADD COLUMN     "total" BIGINT;

-- CreateTable
CREATE TABLE "EpochFile" (
    "epochId" INTEGER NOT NULL,
    "json" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "EpochFile_pkey" PRIMARY KEY ("epochId")
);

-- CreateTable
CREATE TABLE "SettlementRecord" (
    "chainKey" TEXT NOT NULL,
    "epoch" INTEGER NOT NULL,
    "root" TEXT NOT NULL,
    "fileHash" TEXT NOT NULL,
    "total" TEXT NOT NULL,
    "txHash" TEXT NOT NULL,
    "rawTransaction" TEXT NOT NULL,
    "nonce" INTEGER NOT NULL,
    "sentAt" TEXT NOT NULL,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SettlementRecord_pkey" PRIMARY KEY ("chainKey","epoch")
);

-- CreateTable
CREATE TABLE "DepositCursor" (
    "chainKey" TEXT NOT NULL,
    "blockNumber" INTEGER NOT NULL,
    "logIndex" BIGINT NOT NULL,
    "blockHash" TEXT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "DepositCursor_pkey" PRIMARY KEY ("chainKey")
);

-- CreateTable
CREATE TABLE "ChainDeposit" (
    "id" BIGSERIAL NOT NULL,
    "chainKey" TEXT NOT NULL,
    "txHash" TEXT NOT NULL,
    "logIndex" INTEGER NOT NULL,
    "blockNumber" INTEGER NOT NULL,
    "address" TEXT NOT NULL,
    "accountId" UUID NOT NULL,
    "amount" BIGINT NOT NULL,
    "ledgerTxId" UUID NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ChainDeposit_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "ChainDeposit_accountId_idx" ON "ChainDeposit"("accountId");

-- CreateIndex
CREATE UNIQUE INDEX "ChainDeposit_chainKey_txHash_logIndex_key" ON "ChainDeposit"("chainKey", "txHash", "logIndex");
