-- AlterEnum
-- This migration adds more than one value to an enum.
-- With PostgreSQL versions 11 and earlier, this is not possible
-- in a single migration. This can be worked around by creating
-- multiple migrations, each migration adding only one value to
-- the enum.


ALTER TYPE "SlashState" ADD VALUE 'FROZEN';
ALTER TYPE "SlashState" ADD VALUE 'CANCELLING';
ALTER TYPE "SlashState" ADD VALUE 'EXPIRED';

-- AlterTable
ALTER TABLE "SlashProposal" ADD COLUMN     "beneficiaries" JSONB NOT NULL DEFAULT '[]',
ADD COLUMN     "burnt" BIGINT,
ADD COLUMN     "cancelNonce" INTEGER,
ADD COLUMN     "cancelRawTransaction" TEXT,
ADD COLUMN     "cancelTxHash" TEXT,
ADD COLUMN     "cancelledAt" TIMESTAMP(3),
ADD COLUMN     "chainExecutableAt" TIMESTAMP(3),
ADD COLUMN     "compensated" BIGINT,
ADD COLUMN     "frozenAt" TIMESTAMP(3),
ADD COLUMN     "proposeNonce" INTEGER,
ADD COLUMN     "proposeRawTransaction" TEXT,
ADD COLUMN     "proposeTxHash" TEXT;
