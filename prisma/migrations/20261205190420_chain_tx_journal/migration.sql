-- The per-epoch settlement journal gives way to one transaction journal for every journaled send
-- (libs/rewards sendJournaled). A postRoot left pending in the old table is not carried over: the
-- next post signs a new one, and the contract accepts each epoch's root once (the other reverts).
-- DropTable
DROP TABLE "SettlementRecord";

-- CreateTable
CREATE TABLE "ChainTx" (
    "chainKey" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "from" TEXT NOT NULL,
    "nonce" INTEGER NOT NULL,
    "to" TEXT NOT NULL,
    "data" TEXT NOT NULL,
    "attempts" JSONB NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "ChainTx_pkey" PRIMARY KEY ("chainKey","key")
);
