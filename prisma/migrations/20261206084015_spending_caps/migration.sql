-- CreateTable
CREATE TABLE "SpendingCap" (
    "accountId" UUID NOT NULL,
    "address" TEXT NOT NULL,
    "chainId" INTEGER NOT NULL,
    "escrow" TEXT NOT NULL,
    "cap" DECIMAL(78,0) NOT NULL,
    "signature" TEXT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "SpendingCap_pkey" PRIMARY KEY ("accountId")
);
