-- CreateEnum
CREATE TYPE "SlashState" AS ENUM ('PROPOSED', 'SENT', 'EXECUTED', 'CANCELLED', 'FAILED');

-- AlterTable
ALTER TABLE "Account" ADD COLUMN     "verificationDefault" JSONB;

-- AlterTable
ALTER TABLE "Job" ADD COLUMN     "canary" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "verification" JSONB;

-- AlterTable
ALTER TABLE "Provider" ADD COLUMN     "banReason" TEXT,
ADD COLUMN     "bannedAt" TIMESTAMP(3);

-- CreateTable
CREATE TABLE "CanaryAnswer" (
    "jobId" UUID NOT NULL,
    "outputs" JSONB NOT NULL,
    "outputHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "CanaryAnswer_pkey" PRIMARY KEY ("jobId")
);

-- CreateTable
CREATE TABLE "ReputationEvent" (
    "id" BIGSERIAL NOT NULL,
    "peerId" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "delta" DOUBLE PRECISION NOT NULL,
    "score" DOUBLE PRECISION NOT NULL,
    "jobId" UUID,
    "detail" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ReputationEvent_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Evidence" (
    "id" UUID NOT NULL,
    "jobId" UUID NOT NULL,
    "attemptId" UUID NOT NULL,
    "peerId" TEXT NOT NULL,
    "bundle" TEXT NOT NULL,
    "bundleHash" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Evidence_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "SlashProposal" (
    "id" UUID NOT NULL,
    "peerId" TEXT NOT NULL,
    "operatorAddress" TEXT NOT NULL,
    "evidenceId" UUID NOT NULL,
    "evidenceHash" TEXT NOT NULL,
    "amount" BIGINT NOT NULL,
    "reason" TEXT NOT NULL,
    "state" "SlashState" NOT NULL DEFAULT 'PROPOSED',
    "executeAfter" TIMESTAMP(3) NOT NULL,
    "chainKey" TEXT,
    "txHash" TEXT,
    "rawTransaction" TEXT,
    "nonce" INTEGER,
    "error" TEXT,
    "reviewedBy" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    "executedAt" TIMESTAMP(3),

    CONSTRAINT "SlashProposal_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Setting" (
    "key" TEXT NOT NULL,
    "value" JSONB NOT NULL,
    "updatedBy" TEXT,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Setting_pkey" PRIMARY KEY ("key")
);

-- CreateIndex
CREATE INDEX "ReputationEvent_peerId_id_idx" ON "ReputationEvent"("peerId", "id");

-- CreateIndex
CREATE INDEX "ReputationEvent_createdAt_idx" ON "ReputationEvent"("createdAt");

-- CreateIndex
CREATE UNIQUE INDEX "Evidence_bundleHash_key" ON "Evidence"("bundleHash");

-- CreateIndex
CREATE INDEX "Evidence_peerId_idx" ON "Evidence"("peerId");

-- CreateIndex
CREATE INDEX "Evidence_jobId_idx" ON "Evidence"("jobId");

-- CreateIndex
CREATE UNIQUE INDEX "SlashProposal_evidenceId_key" ON "SlashProposal"("evidenceId");

-- CreateIndex
CREATE INDEX "SlashProposal_state_executeAfter_idx" ON "SlashProposal"("state", "executeAfter");

-- CreateIndex
CREATE INDEX "SlashProposal_peerId_idx" ON "SlashProposal"("peerId");

-- CreateIndex
CREATE INDEX "Job_finishedAt_idx" ON "Job"("finishedAt");

-- CreateIndex
CREATE INDEX "LedgerEntry_createdAt_idx" ON "LedgerEntry"("createdAt");

-- Reputation history is append-only, like job events and ledger entries.
CREATE TRIGGER "ReputationEvent_append_only"
    BEFORE UPDATE OR DELETE ON "ReputationEvent"
    FOR EACH ROW EXECUTE FUNCTION "gpumesh_reject_append_only_change"();
